"""The embedded default's input: a seeded, physically grounded simulated Sentinel-1 world.

Three Snakemake entries (``(params, wildcards, inputs, outputs)``; params:
:func:`isslide.workflow.simulation_params`, which the rules call). The scene and
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
    "build_scene",
    "simulate_acquisition",
    "simulate_annotations",
    "simulate_scene",
    "simulate_slc",
    "write_acquisition",
    "write_pair_truth",
    "write_scene",
]
