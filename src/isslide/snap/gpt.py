"""Running a graph with SNAP's gpt, and turning its failures into advice.

The command is an argument list (never a shell string)::

    gpt [-J-Xmx<heap>M] <graph.xml> -P<name>=<value>... -c <cache>M -q <threads> -e [-D<p>=<v>...]

Memory (:func:`memory_plan`): the Java heap is ``snap.heap_fraction`` of the job's
``resources.mem_mb``, passed as ``-J-Xmx`` (install4j's pass-through, checked at planning);
with ``heap_fraction: null`` it is whatever ``gpt.vmoptions`` sets, read from ``gpt --diag``. The
tile cache ``-c`` is ``snap.cache_fraction`` of that heap, so it always stays below it. ``-q`` is
the job's threads, ``-e`` prints full error messages. No ``-x``: gpt applies it only to a Write
node it appends itself, and isslide's graphs have their own (their Write parameters say
``writeEntireTileRows``/``clearCacheAfterRowWrite``). ``-P`` values are XML-escaped (gpt pastes
them into the graph text before parsing it). gpt's output goes to the rule's log.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
from collections import deque
from dataclasses import dataclass

from ..errors import IsslideError
from .chain import Graph
from .xmlgraph import check_bindings, escape_binding, to_xml

log = logging.getLogger("isslide.snap")

INSTALL_HINT = (
    "install ESA SNAP 10 to 14 (https://step.esa.int/main/download/snap-download/; headless: "
    "run the installer with -q) and set snap.gpt to its bin/gpt, e.g. /opt/esa-snap/bin/gpt"
)
KILLED = {-signal.SIGKILL, 128 + signal.SIGKILL}  # -9 from Python, 137 from a shell wrapper
_UNKNOWN = re.compile(r"Unknown element '?\"?([A-Za-z0-9_.]+)")


MIN_CACHE_MB = 256
MIN_HEAP_MB = 2 * MIN_CACHE_MB
DEFAULT_CACHE_MB = 1024  # when neither the job's memory nor gpt's heap is known


@dataclass(frozen=True)
class MemoryPlan:
    heap_mb: int | None  # -J-Xmx, None: gpt.vmoptions' heap
    cache_mb: int  # -c
    note: str  # one line for the log

    @property
    def cache(self) -> str:
        return f"{self.cache_mb}M"


def memory_plan(
    resources: dict | None,
    heap_fraction: float | None,
    cache_fraction: float,
    vm_heap_mb: float | None = None,
) -> MemoryPlan:
    """Java heap and tile cache of one gpt run (pure function; see the module docstring)."""
    mem = (resources or {}).get("mem_mb")
    try:
        mem = int(mem)
    except (TypeError, ValueError):
        mem = None
    if heap_fraction is not None and mem:
        heap = int(mem * heap_fraction)
        if heap < MIN_HEAP_MB:
            raise IsslideError(
                f"resources.mem_mb: {mem} MB gives a Java heap of {heap} MB (snap.heap_fraction "
                f"{heap_fraction}); gpt needs at least {MIN_HEAP_MB} MB, give the rule more mem_mb"
            )
        cache = max(MIN_CACHE_MB, int(heap * cache_fraction))
        note = (
            f"Java heap -J-Xmx{heap}M (snap.heap_fraction {heap_fraction} of mem_mb {mem}), tile "
            f"cache -c {cache}M (snap.cache_fraction {cache_fraction} of the heap)"
        )
        return MemoryPlan(heap, cache, note)
    if vm_heap_mb:
        cache = max(MIN_CACHE_MB, int(vm_heap_mb * cache_fraction))
        if cache >= vm_heap_mb:
            raise IsslideError(
                f"gpt.vmoptions: the Java heap ({vm_heap_mb:.0f} MB, gpt --diag) leaves no room "
                f"for a {cache} MB tile cache; raise -Xmx in <SNAP>/bin/gpt.vmoptions"
            )
        note = (
            f"Java heap {vm_heap_mb:.0f} MB from gpt.vmoptions (gpt --diag), tile cache -c "
            f"{cache}M (snap.cache_fraction {cache_fraction} of the heap)"
        )
        if mem and vm_heap_mb > mem:
            note += (
                f"; WARNING: that heap exceeds the job's mem_mb {mem}, the JVM may be killed "
                "(set snap.heap_fraction, or lower -Xmx)"
            )
        return MemoryPlan(None, cache, note)
    note = f"Java heap unknown (gpt.vmoptions), tile cache -c {DEFAULT_CACHE_MB}M (default)"
    return MemoryPlan(None, DEFAULT_CACHE_MB, note)


def gpt_command(
    gpt: str,
    graph_file: str,
    bindings: dict,
    *,
    cache: str,
    threads: int,
    heap_mb: int | None = None,
    properties: dict | None = None,
) -> list[str]:
    args = [gpt, *([f"-J-Xmx{heap_mb}M"] if heap_mb else []), str(graph_file)]
    args += [f"-P{key}={escape_binding(bindings[key])}" for key in sorted(bindings)]
    args += ["-c", str(cache), "-q", str(max(1, int(threads))), "-e"]
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
            f"gpt was killed (exit {returncode}) running {graph}, most likely out of memory: give "
            f"the rule more mem_mb, or lower snap.heap_fraction / snap.cache_fraction (now -c "
            f"{cache}; with heap_fraction null: -Xmx in <SNAP>/bin/gpt.vmoptions)"
        )
    m = _UNKNOWN.search(output)
    if m or "Unknown element" in output:
        element = m.group(1) if m else "?"
        return IsslideError(
            f"gpt rejected the graph element '{element}' of {graph} (Unknown element): SNAP version "
            f"mismatch, the graph was written for SNAP {version}; set snap.version null (detect it "
            "with 'gpt --diag') or to your SNAP's major version"
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
    heap_fraction: float | None = 0.75,
    properties: dict | None = None,
    version: int | None = None,
) -> list[str]:
    """Write the graph to ``workdir/graph.xml``, run gpt, check its Write targets; return them."""
    xml = to_xml(graph)
    check_bindings(xml, bindings)
    executable = resolve_gpt(gpt)
    graph_file = os.path.join(workdir, "graph.xml")
    with open(graph_file, "w") as fh:
        fh.write(xml)
    vm_heap = None
    if heap_fraction is None:
        from .install import probe

        vm_heap = probe(gpt).max_memory_mb
    plan = memory_plan(resources, heap_fraction, cache_fraction, vm_heap)
    log.info("gpt memory: %s", plan.note)
    args = gpt_command(
        executable,
        graph_file,
        bindings,
        cache=plan.cache,
        threads=threads,
        heap_mb=plan.heap_mb,
        properties=properties,
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
        raise failure(
            returncode, "".join(tail), graph=graph.name, cache=plan.cache, version=version
        )
    targets = [bindings[name] for name in graph.targets]
    check_products(targets)
    return targets
