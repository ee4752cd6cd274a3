"""The eight InSAR steps with SNAP (``backend: snap``), as :mod:`isslide.insar` calls them.

Every intermediate product is a folder ``X.snap/`` written by one gpt graph (see
:mod:`isslide.snap.chain`):

* ``calibrated/{date}.snap``, ``orbit/{date}.snap``, ``{pair}/coregistered.snap``: one
  BEAM-DIMAP product per subswath, ``IW1.dim`` + ``IW1.data/`` (and IW2, IW3);
* ``{pair}/interferogram.snap``, ``topo_removed.snap``, ``goldstein.snap``, ``multilooked.snap``:
  the merged product, ``product.dim`` + ``product.data/`` (``snap.recipe: esa``), or again one
  product per subswath (``snap.recipe: isslide``, which has no ``topo_removed.snap``).

Each folder is written as ``X.snap.tmp-<pid>`` (with the graph it ran, ``graph.xml``) and renamed
to ``X.snap`` once gpt succeeded and every product has data, so a failed job leaves nothing that
looks complete. ``terrain_correct`` writes its SNAP product in a temporary folder next to the
GeoTIFFs and removes it after the export. With ``snap.fuse`` the Snakemake rules wire
``terrain_correct`` to the two orbit-corrected acquisitions and it runs the fused per-pair graph.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import tempfile

from ..errors import IsslideError
from . import chain, dimap, export, gpt, install, orbits, snappy

log = logging.getLogger("isslide.snap")


def settings_of(params: dict) -> chain.SnapSettings:
    """The job's settings; the SNAP version detected at planning (``params["snap_install"]``),
    else the configured one, else asked of gpt now (a job planned elsewhere)."""
    s = chain.SnapSettings.from_params(params)
    if s.version is None:
        found = install.probe(s.gpt)
        version, warnings = install.resolve_version(None, found)
        for line in warnings:
            log.warning("%s", line)
        s = dataclasses.replace(s, version=version)
    log.info("SNAP %d, recipe %s", s.version, s.recipe)
    return s


def product_file(folder: str, part: str) -> str:
    return os.path.join(folder, f"{part}.dim")


def input_parts(folder: str, s: chain.SnapSettings, step: str) -> list[str]:
    """The products a step reads from an input folder; a one-line error when one is missing."""
    parts = chain.product_part(step, s)
    for part in parts:
        path = product_file(folder, part)
        if not os.path.isfile(path):
            raise IsslideError(
                f"{path}: missing in {folder} (made with other subswaths than "
                f"{list(s.subswaths)}?); delete {folder} and rerun"
            )
    return parts


@contextlib.contextmanager
def staged(final: str):
    """A temporary sibling folder renamed to ``final`` when the block succeeds."""
    final = os.path.normpath(final)
    tmp = f"{final}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        yield tmp
        if os.path.isdir(final) and final.endswith(".snap"):
            shutil.rmtree(final)  # a stale product of ours (Snakemake removes it before a job)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def execute(
    graph: chain.Graph, bindings: dict, s: chain.SnapSettings, workdir: str, threads, resources
):
    properties = {
        **orbits.system_properties(s.orbit_type, s.orbit_directory),
        **s.system_properties,
    }
    if s.runner == "esa_snappy":
        from .xmlgraph import check_bindings, to_xml

        check_bindings(to_xml(graph), bindings)
        written = snappy.run_graph(graph, bindings)
        gpt.check_products(written)
        return written
    return gpt.run_gpt(
        graph,
        bindings,
        gpt=s.gpt,
        workdir=workdir,
        threads=threads,
        resources=resources,
        cache_fraction=s.cache_fraction,
        heap_fraction=s.heap_fraction,
        properties=properties,
        version=s.version,
    )


def _dem_binding(inputs: dict, s: chain.SnapSettings) -> dict:
    if not s.external_dem:
        return {}
    dem = inputs.get("dem") or s.dem_file
    if not dem or not os.path.isfile(dem):
        raise IsslideError(
            f"snap.dem.external_file: {dem} does not exist; point it at a GeoTIFF DEM"
        )
    return {"dem": os.path.abspath(dem)}


def _as_list(value) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _staged_step(step, graph, bindings, outputs, s, threads, resources):
    with staged(outputs["product"]) as tmp:
        for part in chain.product_part(step, s):
            bindings[chain.out_name(part)] = os.path.abspath(product_file(tmp, part))
        execute(graph, bindings, s, tmp, threads, resources)


def calibrate(*, inputs, outputs, params, threads=1, resources=None):
    s = settings_of(params)
    products = _as_list(inputs["products"])
    for p in products:
        if not os.path.exists(p):
            raise IsslideError(f"{p}: Sentinel-1 product not found")
    graph = chain.step_graph("calibrate", s, n_slices=len(products))
    bindings = {f"slice{k + 1}": os.path.abspath(p) for k, p in enumerate(products)}
    _staged_step("calibrate", graph, bindings, outputs, s, threads, resources)


def apply_orbit(*, inputs, outputs, params, threads=1, resources=None):
    s = settings_of(params)
    folder = inputs["product"]
    parts = input_parts(folder, s, "calibrate")
    orbits.check_orbit_files(
        [product_file(folder, p) for p in parts],
        s.orbit_type,
        s.orbit_directory,
        s.continue_on_fail,
    )
    bindings = {f"in_{p}": os.path.abspath(product_file(folder, p)) for p in parts}
    graph = chain.step_graph("apply_orbit", s)
    _staged_step("apply_orbit", graph, bindings, outputs, s, threads, resources)


def _pair_bindings(inputs: dict, s: chain.SnapSettings) -> dict:
    bindings = {}
    for role, key in (("ref", "reference"), ("sec", "secondary")):
        for p in input_parts(inputs[key], s, "apply_orbit"):
            bindings[f"{role}_{p}"] = os.path.abspath(product_file(inputs[key], p))
    return bindings


def coregister(*, inputs, outputs, params, threads=1, resources=None):
    s = settings_of(params)
    bindings = {**_pair_bindings(inputs, s), **_dem_binding(inputs, s)}
    graph = chain.step_graph("coregister", s)
    _staged_step("coregister", graph, bindings, outputs, s, threads, resources)


def interferogram(*, inputs, outputs, params, threads=1, resources=None):
    s = settings_of(params)
    folder = inputs["product"]
    bindings = {
        f"in_{p}": os.path.abspath(product_file(folder, p))
        for p in input_parts(folder, s, "coregister")
    }
    graph = chain.step_graph("interferogram", s)
    bindings.update({k: v for k, v in _dem_binding(inputs, s).items() if k in graph.placeholders})
    _staged_step("interferogram", graph, bindings, outputs, s, threads, resources)


def _pair_step(step: str):
    """A per-pair step reading the previous step's product (merged or per subswath)."""

    def run(*, inputs, outputs, params, threads=1, resources=None):
        s = settings_of(params)
        folder = inputs["product"]
        previous = chain.previous_step(step, s.chain)
        bindings = {
            chain.in_name(p): os.path.abspath(product_file(folder, p))
            for p in input_parts(folder, s, previous)
        }
        graph = chain.step_graph(step, s)
        bindings.update(
            {k: v for k, v in _dem_binding(inputs, s).items() if k in graph.placeholders}
        )
        _staged_step(step, graph, bindings, outputs, s, threads, resources)

    run.__name__ = step
    return run


def _isslide_terrain_correct(inputs, s, tmp) -> tuple[chain.Graph, dict, list[dict]]:
    """isslide recipe: per subswath, BandMaths on the multilooked product's own i/q bands."""
    graph = chain.step_graph("terrain_correct", s)
    bindings, parts = {}, []
    for part in input_parts(inputs["product"], s, "multilook"):
        dim = product_file(inputs["product"], part)
        i_band, q_band, _ = export.interferogram_bands(dimap.bands(dim), dim)
        bindings.update(
            {
                f"in_{part}": os.path.abspath(dim),
                f"i_{part}": i_band.name,
                f"q_{part}": q_band.name,
                f"out_coh_{part}": os.path.join(tmp, f"coherence_{part}.dim"),
                f"out_phase_{part}": os.path.join(tmp, f"phase_{part}.dim"),
            }
        )
        parts.append(
            {"coherence": bindings[f"out_coh_{part}"], "phase": bindings[f"out_phase_{part}"]}
        )
    return graph, bindings, parts


def terrain_correct(*, inputs, outputs, params, threads=1, resources=None):
    s = settings_of(params)
    out_dir = os.path.dirname(os.path.abspath(outputs["coherence"]))
    os.makedirs(out_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".snap-terrain-correct-", dir=out_dir)
    try:
        parts = None  # esa: one complex product, bound to ``out``
        if "reference" in inputs and "secondary" in inputs:
            graph = chain.fused_graph(s)
            bindings = _pair_bindings(inputs, s)
        elif "product" in inputs and s.chain.phase_by_bandmaths:
            graph, bindings, parts = _isslide_terrain_correct(inputs, s, tmp)
        elif "product" in inputs:
            graph = chain.step_graph("terrain_correct", s)
            (part,) = input_parts(inputs["product"], s, "multilook")
            bindings = {"in": os.path.abspath(product_file(inputs["product"], part))}
        else:
            raise IsslideError(
                "terrain_correct: expected a multilooked product or, with snap.fuse, the "
                "reference and secondary orbit products as inputs"
            )
        bindings.update(_dem_binding(inputs, s))
        if parts is None:
            bindings["out"] = os.path.join(tmp, "product.dim")
            parts = [{"complex": bindings["out"]}]
        execute(graph, bindings, s, tmp, threads, resources)
        export.export_parts(
            parts, outputs, spacing_deg=s.spacing_deg, bounds=export.aoi_bounds(s.aoi)
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


STEP_FUNCTIONS = {
    "calibrate": calibrate,
    "apply_orbit": apply_orbit,
    "coregister": coregister,
    "interferogram": interferogram,
    "remove_topographic_phase": _pair_step("remove_topographic_phase"),
    "goldstein": _pair_step("goldstein"),
    "multilook": _pair_step("multilook"),
    "terrain_correct": terrain_correct,
}
