"""The embedded default's input: a seeded, physically grounded simulated Sentinel-1 world.

Three Snakemake entries (``(params, wildcards, inputs, outputs)``; params: :func:`params_for`,
the same as the rules' ``simulation_{scene,acquisition,annotations}_params``). The scene and
every acquisition depend on the time axis (``dates.start``, ``revisit_days``) but never on
``dates.end``: all per-date draws come from generators keyed by (seed, stack, date), so
extending a stack leaves every existing output bit-identical and its job un-replanned.

* :func:`simulate_scene`: terrain (real DEM or fractal relief), radar geometry, land cover,
  moving areas and decoys -> ``dem.tif``, ``geometry.json``, ``scene.npz``,
  ``truth/areas.gpkg``;
* :func:`simulate_acquisition`: one SLC as int16 I/Q digital numbers + JSON metadata;
* :func:`simulate_annotations`: one pair's annotators' shapefile and its truth rasters.

The stack format is documented in ``docs/stack-format.md``.
"""

from __future__ import annotations

from .acquisition import simulate_acquisition, simulate_slc, write_acquisition
from .scene import Scene, build_scene, simulate_scene, write_scene
from .truth import OutputGrid, simulate_annotations, write_pair_truth

__all__ = [
    "OutputGrid",
    "Scene",
    "RULES",
    "build_scene",
    "canonical",
    "params_for",
    "simulate_acquisition",
    "simulate_annotations",
    "simulate_scene",
    "simulate_slc",
    "write_acquisition",
    "write_pair_truth",
    "write_scene",
]


RULES = ("scene", "acquisition", "annotations")


def canonical(obj):
    """Mappings with sorted keys, recursively (as the rules' params: see common.smk)."""
    if isinstance(obj, dict):
        return {k: canonical(obj[k]) for k in sorted(obj)}
    if isinstance(obj, (list, tuple)):
        return [canonical(v) for v in obj]
    return obj


def params_for(config: dict, stack: str, rule: str | None = None) -> dict:
    """The rules' params for a (defaults-filled) config, outside Snakemake.

    ``rule`` "scene" / "acquisition" / "annotations" gives exactly that rule's params (the
    functions ``simulation_{rule}_params`` in ``workflow/rules/common.smk``); None gives the
    annotation params, a superset the library entries all accept. Only the annotation params
    hold ``dates.end`` (the planned dates and the delays): adding a later acquisition changes
    neither the scene's nor any existing acquisition's params.
    """
    from ..plan import expected_dates, fmt

    time_axis = {
        "start": config["dates"]["start"],
        "revisit_days": int(config.get("revisit_days", 6)),
    }
    scene = {
        "simulation": config["simulation"],
        "insar": config["insar"],
        "seed": config["seed"],
        "stack": config["stacks"][stack],
        **time_axis,
    }
    if rule == "scene":
        return canonical(scene)
    if rule == "acquisition":
        return canonical(time_axis)
    if rule not in (None, "annotations"):
        raise ValueError(f"rule {rule!r}: one of {RULES}")
    return canonical(
        {**scene, "dates": [fmt(d) for d in expected_dates(config)], "delays": config["delays"]}
    )
