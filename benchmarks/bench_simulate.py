"""Simulator throughput (Mpx/s) and peak memory at two scene sizes.

    python benchmarks/bench_simulate.py            # writes benchmarks/results_simulate.json

For each size: build the scene (procedural relief, default land cover, areas and atmosphere),
then simulate one acquisition (the 4th date, so the temporal-decorrelation recursion runs)
twice: once timed, once under tracemalloc for the peak of Python/numpy allocations. Memory is
reported as multiples of one complex64 SLC of the radar grid. Timings are wall-clock on a
shared machine: noisy, compare like with like.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from isslide.config import load_config  # noqa: E402
from isslide.simulate import build_scene, simulate_slc  # noqa: E402
from isslide.simulate.acquisition import GroundGrid, to_digital_numbers  # noqa: E402
from isslide.workflow import simulation_params  # noqa: E402


def run(size_km: float, areas: int) -> dict:
    overrides = {
        "simulation": {"dem": None, "size_km": [size_km, size_km], "areas": {"count": areas}},
    }
    cfg = load_config(REPO / "tests/configs/tiny.yaml", overrides=overrides)
    params = simulation_params(cfg, "tiny")  # the tiny stack's zones lie inside any scene >= 3 km
    t0 = time.perf_counter()
    scene = build_scene(params, "tiny")
    t_scene = time.perf_counter() - t0
    date = params["dates"][min(3, len(params["dates"]) - 1)]
    g = scene.geometry
    pixels = g.lines * g.samples
    ground = GroundGrid(scene).cells
    t0 = time.perf_counter()
    slc, _ = simulate_slc(scene, date)
    to_digital_numbers(scene, scene.date_index(date), slc)
    t_slc = time.perf_counter() - t0
    del slc
    tracemalloc.start()
    slc, _ = simulate_slc(scene, date)
    to_digital_numbers(scene, scene.date_index(date), slc)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    slc_bytes = pixels * 8
    return {
        "size_km": size_km,
        "areas": scene.n_areas,
        "radar_grid": [g.lines, g.samples],
        "radar_mpx": pixels / 1e6,
        "ground_cells_m": ground / 1e6,
        "scene_s": round(t_scene, 3),
        "acquisition_s": round(t_slc, 3),
        "throughput_mpx_per_s": round(pixels / 1e6 / t_slc, 3),
        "ground_throughput_mcells_per_s": round(ground / 1e6 / t_slc, 3),
        "peak_traced_mb": round(peak / 2**20, 1),
        "slc_complex64_mb": round(slc_bytes / 2**20, 1),
        "peak_in_slc_copies": round(peak / slc_bytes, 2),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=[3.0, 12.0], help="scene sizes (km)")
    ap.add_argument("--output", default=str(REPO / "benchmarks/results_simulate.json"))
    args = ap.parse_args(argv)
    results = []
    for size in args.sizes:
        r = run(size, areas=max(2, int(size * size / 3)))
        print(json.dumps(r))
        results.append(r)
    out = {
        "benchmark": "simulate",
        "machine": {
            "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(),
        },
        "note": "wall-clock on a shared 2-core machine: noisy",
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "results": results,
    }
    Path(args.output).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
