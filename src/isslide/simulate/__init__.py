"""The embedded default's input: a seeded, physically grounded simulated Sentinel-1 world.

Three Snakemake entries (``(params, wildcards, inputs, outputs)``, params = the rule's
``simulation_params``: the ``simulation`` and ``insar`` config sections, ``seed``, the stack's
config, its dates ``YYYYMMDD`` and the delays):

* :func:`simulate_scene`: terrain (real DEM or fractal relief), radar geometry, land cover,
  moving areas, decoys and per-date draws -> ``dem.tif``, ``geometry.json``, ``scene.npz``,
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
    "build_scene",
    "params_for",
    "simulate_acquisition",
    "simulate_annotations",
    "simulate_scene",
    "simulate_slc",
    "write_acquisition",
    "write_pair_truth",
    "write_scene",
]


def params_for(config: dict, stack: str) -> dict:
    """The rules' ``simulation_params`` for a (defaults-filled) config, outside Snakemake."""
    from ..plan import expected_dates, fmt

    return {
        "simulation": config["simulation"],
        "insar": config["insar"],
        "seed": config["seed"],
        "stack": config["stacks"][stack],
        "dates": [fmt(d) for d in expected_dates(config)],
        "delays": config["delays"],
    }
