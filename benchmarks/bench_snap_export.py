"""Benchmark: export of a SNAP Terrain-Correction product to the interferogram GeoTIFFs.

The export runs after gpt inside ``terrain_correct`` (mem_mb 4000). It works block by block, so
its memory must not grow with the AOI. This script writes a synthetic BEAM-DIMAP product of
``--width`` x ``--height`` pixels (i, q, coherence float32, layoverShadowMask int8; the paper's
Alps AOI is about 10266 x 8365 at 1.315e-4 deg), exports it in a child process and reports wall
time and the exporting process's peak resident memory; results go to benchmarks/results_snap_export.json.

    python benchmarks/bench_snap_export.py --width 6000 --height 4000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))


def make_product(dim_path: str, width: int, height: int, spacing: float = 1.315e-4):
    import numpy as np
    from affine import Affine
    from fake_gpt import write_dimap

    west, north = 6.0, 45.5
    t = Affine(spacing, 0, west, 0, -spacing, north)
    rng = np.random.default_rng(0)
    phase = rng.uniform(-np.pi, np.pi, (height, width)).astype(np.float32)
    bands = [
        ("i_ifg_VV", "real", np.cos(phase), 0.0),
        ("q_ifg_VV", "imaginary", np.sin(phase), 0.0),
    ]
    del phase
    bands.append(
        ("coh_VV", "coherence", rng.uniform(0, 1, (height, width)).astype(np.float32), 0.0)
    )
    bands.append(
        ("layoverShadowMask", "bit", rng.integers(0, 4, (height, width)).astype(np.int8), None)
    )
    write_dimap(dim_path, bands, transform=t)
    return (west, north - height * spacing, west + width * spacing, north)


CHILD = """
import sys, json, time, resource
from isslide.snap.export import export_interferogram
dim, out, bounds = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
t0 = time.perf_counter()
export_interferogram(dim, {k: f"{out}/{k}.tif" for k in ("coherence", "phase", "layover_shadow")},
                     spacing_deg=1.315e-4, bounds=bounds)
print(json.dumps([time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--width", type=int, default=6000)
    ap.add_argument("--height", type=int, default=4000)
    ap.add_argument("--make", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.make:
        print(json.dumps(make_product(args.make, args.width, args.height)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        dim = os.path.join(tmp, "tc", "product.dim")
        # In child processes: Linux carries a process's peak RSS across fork/exec, so the parent
        # stays small (no numpy) and the export's peak is its own.
        made = subprocess.run(
            [
                sys.executable,
                __file__,
                "--make",
                dim,
                "--width",
                str(args.width),
                "--height",
                str(args.height),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        bounds = json.loads(made.stdout)
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, dim, tmp, json.dumps(bounds)],
            capture_output=True,
            text=True,
            check=True,
        )
        wall = time.perf_counter() - t0
        seconds, peak_mb = json.loads(proc.stdout.strip().splitlines()[-1])
        sizes = {
            k: os.path.getsize(os.path.join(tmp, f"{k}.tif"))
            for k in ("coherence", "phase", "layover_shadow")
        }
    result = {
        "pixels": args.width * args.height,
        "width": args.width,
        "height": args.height,
        "export_seconds": round(seconds, 2),
        "child_wall_seconds": round(wall, 2),
        "export_peak_rss_mb": round(peak_mb, 1),  # the exporting process itself (RUSAGE_SELF)
        "output_bytes": sizes,
        "note": "shared 2-core machine, noisy timings",
    }
    print(json.dumps(result, indent=2))
    with open(os.path.join(HERE, "results_snap_export.json"), "w") as fh:
        json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
