"""Running a graph with SNAP's gpt, and turning its failures into advice.

The command is an argument list (never a shell string)::

    gpt <graph.xml> -P<name>=<value>... -c <cache> -q <threads> -x -e [-D<property>=<value>...]

``-c`` (tile cache) comes from the job's ``resources.mem_mb`` times ``snap.cache_fraction``,
``-q`` (parallelism) from the job's threads; ``-x`` clears the tile cache after each row of tiles
(lower memory), ``-e`` prints full error messages. gpt's output goes to the rule's log.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
from collections import deque

from ..errors import IsslideError
from .chain import Graph
from .xmlgraph import check_bindings, to_xml

log = logging.getLogger("isslide.snap")

INSTALL_HINT = (
    "install ESA SNAP 10 to 14 (https://step.esa.int/main/download/snap-download/; headless: "
    "run the installer with -q) and set snap.gpt to its bin/gpt, e.g. /opt/esa-snap/bin/gpt"
)
KILLED = {-signal.SIGKILL, 128 + signal.SIGKILL}  # -9 from Python, 137 from a shell wrapper
_UNKNOWN = re.compile(r"Unknown element '?\"?([A-Za-z0-9_.]+)")


def cache_size(resources: dict | None, fraction: float) -> str:
    """gpt ``-c``: a fraction of the job's memory (MiB), at least 256M; 1024M without mem_mb."""
    mem = (resources or {}).get("mem_mb")
    try:
        mem = int(mem)
    except (TypeError, ValueError):
        return "1024M"
    return f"{max(256, int(mem * fraction))}M"


def gpt_command(
    gpt: str,
    graph_file: str,
    bindings: dict,
    *,
    cache: str,
    threads: int,
    properties: dict | None = None,
) -> list[str]:
    args = [gpt, str(graph_file)]
    args += [f"-P{key}={bindings[key]}" for key in sorted(bindings)]
    args += ["-c", str(cache), "-q", str(max(1, int(threads))), "-x", "-e"]
    args += [f"-D{key}={value}" for key, value in sorted((properties or {}).items())]
    return args


def resolve_gpt(gpt: str) -> str:
    """The gpt executable, or a one-line error on how to install SNAP."""
    if os.sep in gpt or (os.altsep and os.altsep in gpt):
        if os.path.isfile(gpt) and os.access(gpt, os.X_OK):
            return gpt
        raise IsslideError(f"snap.gpt: {gpt} is not an executable file; {INSTALL_HINT}")
    found = shutil.which(gpt)
    if not found:
        raise IsslideError(f"snap.gpt: '{gpt}' not found on PATH; {INSTALL_HINT}")
    return found


def failure(returncode: int, output: str, *, graph: str, cache: str, version: int) -> IsslideError:
    """The advice for a failed gpt run (pure function of its exit status and output)."""
    if returncode in KILLED:
        return IsslideError(
            f"gpt was killed (exit {returncode}) running {graph}, most likely out of memory: raise "
            "-Xmx in <SNAP>/bin/gpt.vmoptions, or lower snap.cache_fraction (now -c "
            f"{cache}), or give the rule more mem_mb"
        )
    m = _UNKNOWN.search(output)
    if m or "Unknown element" in output:
        element = m.group(1) if m else "?"
        return IsslideError(
            f"gpt rejected the graph element '{element}' of {graph} (Unknown element): SNAP version "
            f"mismatch; set snap.version to your SNAP's major version (now {version}; "
            "'gpt --diag' prints it) or update SNAP"
        )
    low = output.lower()
    if "no valid orbit file found" in low or ("orbit file" in low and "not found" in low):
        return IsslideError(
            f"gpt found no orbit file ({graph}): put the POEORB files under snap.orbit.directory "
            "(SNAP layout S1A/YYYY/MM/), allow SNAP to download them, or set "
            "snap.orbit.continue_on_fail true"
        )
    if "wktAOI does not overlap any burst" in output or "wktAoi does not overlap" in output:
        return IsslideError(
            f"stacks.<name>.aoi does not overlap any burst of one of the subswaths ({graph}); remove "
            "that subswath from stacks.<name>.subswaths"
        )
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower() or "exception" in ln.lower()]
    detail = (errors or lines or ["no output"])[-1][:300]
    return IsslideError(
        f"gpt failed (exit {returncode}) on {graph}: {detail}; the rule's log has gpt's output"
    )


def check_products(dim_paths) -> None:
    """Every written product exists with a header and at least one non-empty raster."""
    for dim_path in dim_paths:
        data = os.path.splitext(dim_path)[0] + ".data"
        if not os.path.isfile(dim_path) or os.path.getsize(dim_path) == 0:
            raise IsslideError(
                f"{dim_path}: SNAP wrote no product header (missing or empty output)"
            )
        images = [
            f for f in (os.listdir(data) if os.path.isdir(data) else []) if f.endswith(".img")
        ]
        if not images or all(os.path.getsize(os.path.join(data, f)) == 0 for f in images):
            raise IsslideError(f"{data}: SNAP wrote no raster data (missing or empty output)")


def run_gpt(
    graph: Graph,
    bindings: dict,
    *,
    gpt: str,
    workdir: str,
    threads: int,
    resources: dict | None,
    cache_fraction: float = 0.5,
    properties: dict | None = None,
    version: int = 10,
) -> list[str]:
    """Write the graph to ``workdir/graph.xml``, run gpt, check its Write targets; return them."""
    xml = to_xml(graph)
    check_bindings(xml, bindings)
    executable = resolve_gpt(gpt)
    graph_file = os.path.join(workdir, "graph.xml")
    with open(graph_file, "w") as fh:
        fh.write(xml)
    cache = cache_size(resources, cache_fraction)
    args = gpt_command(
        executable, graph_file, bindings, cache=cache, threads=threads, properties=properties
    )
    log.info("running: %s", " ".join(args))
    tail: deque[str] = deque(maxlen=400)
    try:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except OSError as exc:
        raise IsslideError(
            f"snap.gpt: cannot run {executable} ({exc.strerror}); {INSTALL_HINT}"
        ) from None
    assert proc.stdout is not None
    for line in proc.stdout:
        log.info("gpt: %s", line.rstrip())
        tail.append(line)
    returncode = proc.wait()
    if returncode != 0:
        raise failure(returncode, "".join(tail), graph=graph.name, cache=cache, version=version)
    targets = [bindings[name] for name in graph.targets]
    check_products(targets)
    return targets
