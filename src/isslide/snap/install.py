"""What the installed SNAP is, asked of gpt itself (``gpt --diag``), before any job runs.

``gpt --diag`` (snap-engine ``CommandLineTool.printDiagnostics``, 10.0.0-14.0.0) prints, among
others::

    SNAP Release version 10.0.0          <- first line of ${SNAP_HOME}/VERSION.txt
    Max memory: 23.9 GB                  <- the JVM's heap (-Xmx of gpt.vmoptions or -J-Xmx)

(``[no version info, missing ${SNAP_HOME}/VERSION.txt]`` when that file is missing). gpt is an
install4j launcher: arguments prefixed ``-J`` go to the JVM (install4j's documented pass-through,
not disabled in SNAP's ``snap.install4j``), so ``gpt -J-Xmx1536M --diag`` reports about 1.5 GB
when the pass-through works. :func:`planning_check` runs this once when the workflow is planned
(backend snap): the detected major version decides the version-dependent parameters, a configured
``snap.version`` that disagrees is refused, and with ``snap.heap_fraction`` set the pass-through of
``-J-Xmx`` is verified.
"""

from __future__ import annotations

import functools
import re
import subprocess
from dataclasses import dataclass

from ..errors import IsslideError

DIAG_TIMEOUT_S = 300
HEAP_PROBE_MB = 1536  # an unusual heap, to see that gpt passed -J-Xmx on to Java
OLDEST = 10
_VERSION = re.compile(r"SNAP Release version\s+(\S+)")
_MEMORY = re.compile(r"Max memory:\s*([0-9]+(?:[.,][0-9]+)?)\s*(GB|MB|KB|B)\b")
_UNITS = {"GB": 1024.0, "MB": 1.0, "KB": 1.0 / 1024, "B": 1.0 / 1024**2}


@dataclass(frozen=True)
class SnapInstall:
    gpt: str
    release: str | None  # e.g. "10.0.0"; None when VERSION.txt is missing
    major: int | None
    max_memory_mb: float | None  # the JVM heap gpt --diag reported


def parse_diag(text: str) -> tuple[str | None, int | None, float | None]:
    """(release, major version, max memory in MiB) from gpt --diag output."""
    release = major = memory = None
    m = _VERSION.search(text)
    if m and not m.group(1).startswith("["):
        release = m.group(1)
        digits = re.match(r"(\d+)", release)
        major = int(digits.group(1)) if digits else None
    m = _MEMORY.search(text)
    if m:
        memory = float(m.group(1).replace(",", ".")) * _UNITS[m.group(2)]
    return release, major, memory


def _diag(executable: str, heap_mb: int | None) -> tuple[int, str]:
    args = [executable, *([f"-J-Xmx{heap_mb}M"] if heap_mb else []), "--diag"]
    try:
        proc = subprocess.run(
            args, capture_output=True, text=True, timeout=DIAG_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise IsslideError(
            f"snap.gpt: '{' '.join(args)}' did not answer within {DIAG_TIMEOUT_S} s; check the "
            "SNAP installation (run it by hand)"
        ) from None
    except OSError as exc:
        raise IsslideError(f"snap.gpt: cannot run {executable} ({exc.strerror})") from None
    return proc.returncode, proc.stdout + proc.stderr


@functools.lru_cache(maxsize=16)
def probe(gpt: str, heap_mb: int | None = None) -> SnapInstall:
    """Run ``gpt [-J-Xmx<heap_mb>M] --diag`` (once per process) and parse it."""
    from .gpt import resolve_gpt

    executable = resolve_gpt(gpt)
    rc, out = _diag(executable, heap_mb)
    if rc != 0:
        last = [ln for ln in out.splitlines() if ln.strip()][-1:] or ["no output"]
        raise IsslideError(
            f"snap.gpt: '{executable} --diag' failed (exit {rc}: {last[0][:200]}); check the SNAP "
            "installation"
        )
    release, major, memory = parse_diag(out)
    return SnapInstall(executable, release, major, memory)


def check_heap_passthrough(gpt: str) -> SnapInstall:
    """Probe with ``-J-Xmx``; a one-line error when this gpt does not pass it on to Java."""
    advice = (
        "set snap.heap_fraction null and set -Xmx in <SNAP>/bin/gpt.vmoptions (keep "
        "snap.cache_fraction of it for the tile cache)"
    )
    try:
        install = probe(gpt, HEAP_PROBE_MB)
    except IsslideError as exc:
        plain = probe(gpt)  # gpt itself works: it is the -J option it rejects
        raise IsslideError(
            f"snap.heap_fraction: {plain.gpt} rejects -J-Xmx{HEAP_PROBE_MB}M ({exc}); {advice}"
        ) from None
    mem = install.max_memory_mb
    if mem is None or not 0.75 * HEAP_PROBE_MB <= mem <= 1.05 * HEAP_PROBE_MB:
        raise IsslideError(
            f"snap.heap_fraction: {install.gpt} ignored -J-Xmx{HEAP_PROBE_MB}M ('gpt --diag' "
            f"reports max memory {mem} MB); {advice}"
        )
    return install


def resolve_version(configured: int | None, install: SnapInstall) -> tuple[int, list[str]]:
    """The SNAP major version the graphs are written for, and warnings; refuse a mismatch."""
    warnings = []
    major = install.major
    if major is None:
        if configured is None:
            raise IsslideError(
                f"snap.version: '{install.gpt} --diag' prints no SNAP release version "
                "(${SNAP_HOME}/VERSION.txt missing?); set snap.version to your SNAP's major "
                "version (10..14)"
            )
        warnings.append(
            f"snap.version: '{install.gpt} --diag' prints no release version; using the "
            f"configured {configured}"
        )
        return int(configured), warnings
    if major < OLDEST:
        raise IsslideError(
            f"snap.gpt: {install.gpt} is SNAP {install.release}; isslide's graphs need SNAP "
            f"{OLDEST} or later (install SNAP 10-14 and point snap.gpt at it)"
        )
    if configured is not None and int(configured) != major:
        raise IsslideError(
            f"snap.version: configured {configured} but {install.gpt} is SNAP {install.release} "
            f"(gpt --diag); set snap.version to {major} or null, or point snap.gpt at a SNAP "
            f"{configured} installation"
        )
    from .chain import NEWEST_CHECKED

    if major > NEWEST_CHECKED:
        warnings.append(
            f"snap.gpt: {install.gpt} is SNAP {install.release}, newer than the SNAP "
            f"{NEWEST_CHECKED} whose operator sources the graphs were checked against; its "
            f"graphs get the SNAP {NEWEST_CHECKED} parameters"
        )
    return major, warnings


@dataclass(frozen=True)
class PlanningResult:
    params: dict | None  # ``snap_install`` for the InSAR rules' params; None: gpt not found
    summary: str | None  # what was found, for the log
    warnings: tuple[str, ...]


def planning_check(config: dict) -> PlanningResult:
    """At workflow planning, backend snap: validate the SNAP settings of every stack of real
    products and ask gpt what it is. Raises :class:`IsslideError` on a bad setting or a
    configured ``snap.version`` that disagrees with gpt."""
    from .chain import SnapSettings

    snap = config["snap"]
    for name, stack in config["stacks"].items():
        if stack.get("source") != "products":
            continue
        params = {
            "insar": config["insar"],
            "snap": {**snap, "version": snap.get("version") or 10},
            "stack": {k: stack.get(k) for k in ("subswaths", "aoi", "track", "pass")},
        }
        try:
            SnapSettings.from_params(params)
        except IsslideError as exc:
            raise IsslideError(str(exc).replace("stacks.<name>", f"stacks.{name}")) from None
    try:
        install = probe(snap["gpt"])
    except IsslideError as exc:
        if "not found" in str(exc) or "not an executable" in str(exc):
            return PlanningResult(
                None, None, (f"{exc} (every SNAP job will fail until it is installed)",)
            )
        raise
    version, warnings = resolve_version(snap.get("version"), install)
    if snap.get("heap_fraction") is not None:
        check_heap_passthrough(snap["gpt"])
    memory = f", max Java heap {install.max_memory_mb:.0f} MB" if install.max_memory_mb else ""
    summary = f"SNAP {install.release or version} at {install.gpt}{memory}"
    return PlanningResult({"version": version}, summary, tuple(warnings))
