"""Time and peak memory of each embedded InSAR step on an N x N complex pair (2 threads).

    python benchmarks/bench_insar.py                 # 2048 and 4096, writes benchmarks/results_insar.json
    python benchmarks/bench_insar.py --sizes 1024

Each step runs in its own subprocess (``isslide.insar.run_step``) so its peak resident memory
(``VmHWM`` of the child) is its own; the baseline RSS of a child that only imports the
backend is reported and subtracted. Inputs: a radar grid of N lines x N samples over a procedural
DEM, two int16 SLCs of random speckle (content does not change the cost), precise orbits with a
130 m baseline. One SLC is N*N complex64 values (8 bytes each). Timings on a shared machine are
noisy.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

from isslide.insar import STEPS as INSAR_STEPS

REPO = Path(__file__).resolve().parents[1]
STEPS = list(INSAR_STEPS)
# peak memory: VmHWM of the child's own address space (ru_maxrss would carry the parent's
# high-water mark across fork + exec on Linux)
CHILD = r"""
import json, sys, time
from isslide.insar import run_step
import isslide.insar.embedded  # noqa
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
spec = json.loads(sys.argv[1])
t = time.perf_counter()
if spec["step"] != "baseline":
    run_step(spec["step"], "embedded", spec["inputs"], spec["outputs"], {"insar": {}, "backend": "embedded"}, threads=2)
print(json.dumps({"seconds": time.perf_counter() - t, "peak_kb": hwm()}))
"""


def make_stack(root: Path, n: int, seed: int = 0):
    from isslide.geometry import Orbit, SarGeometry

    lon0, lat0 = 6.9, 45.9
    geom = SarGeometry(lon0=lon0, lat0=lat0)
    ground_range = n * geom.range_spacing / math.sin(math.radians(geom.incidence_deg))
    along = n * geom.azimuth_spacing
    deg_lat = 1 / 111_195.0
    deg_lon = deg_lat / math.cos(math.radians(lat0))
    half = 0.5 * max(ground_range, along) * 1.05
    west, east = lon0 - half * deg_lon, lon0 + half * deg_lon
    south, north = lat0 - half * deg_lat, lat0 + half * deg_lat
    spacing = 2.5e-4
    margin = 0.02
    transform = Affine(spacing, 0, west - margin, 0, -spacing, north + margin)
    w = int((east - west + 2 * margin) / spacing) + 1
    h = int((north - south + 2 * margin) / spacing) + 1
    rows, cols = np.indices((h, w))
    dem = (800 + 400 * np.sin(rows / 37.0) * np.cos(cols / 53.0)).astype(np.float32)
    with rasterio.open(
        root / "dem.tif",
        "w",
        driver="GTiff",
        height=h,
        width=w,
        count=1,
        dtype="float32",
        crs="EPSG:4326",
        transform=transform,
        nodata=-9999,
    ) as ds:
        ds.write(dem, 1)
    # radar grid: n x n centred on the scene
    s_c = 0.0
    x_c = 0.0
    r_c = math.hypot(x_c - geom.x_sat, geom.altitude - 800)
    d = geom.to_dict()
    d.update(
        first_line_s=s_c - n / 2 * geom.azimuth_spacing,
        near_range=r_c - n / 2 * geom.range_spacing,
        lines=n,
        samples=n,
    )
    # the output box: the ground footprint's inner part
    d["extra"] = {
        "bounds": [
            lon0 - 0.3 * half * deg_lon,
            lat0 - 0.3 * half * deg_lat,
            lon0 + 0.3 * half * deg_lon,
            lat0 + 0.3 * half * deg_lat,
        ]
    }
    geom = SarGeometry.from_dict(d)
    rng = np.random.default_rng(seed)
    (root / "slc").mkdir(exist_ok=True)
    for k, (date, orbit) in enumerate(
        [("20180702", Orbit()), ("20180708", Orbit(cross=100.0, vertical=80.0))]
    ):
        with rasterio.open(
            root / f"slc/{date}.tif", "w", driver="GTiff", height=n, width=n, count=2, dtype="int16"
        ) as ds:
            for r0 in range(0, n, 512):
                r1 = min(n, r0 + 512)
                ds.write(
                    rng.normal(0, 300, (2, r1 - r0, n)).astype(np.int16), window=((r0, r1), (0, n))
                )
        meta = {
            "format": "isslide-slc/1",
            "date": f"2018-07-0{2 + 6 * k}",
            "mission": "S1A",
            "polarisation": "VV",
            "geometry": geom.to_dict(),
            "orbit": {"annotated": orbit.to_dict(), "precise": orbit.to_dict()},
            "calibration": {
                "lines": [0, n - 1],
                "samples": [0, n - 1],
                "sigma0": [[400.0, 500.0], [410.0, 510.0]],
            },
        }
        (root / f"slc/{date}.json").write_text(json.dumps(meta))


def run_child(spec: dict) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="2", OPENBLAS_NUM_THREADS="2", MKL_NUM_THREADS="2")
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(spec)], capture_output=True, text=True, env=env
    )
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench(n: int, root: Path, repeat: int = 2) -> dict:
    make_stack(root, n)
    S, W = root, root / "work"
    ref, sec = "20180702", "20180708"
    specs = []
    for d in (ref, sec):
        specs.append(
            (
                "calibrate",
                {"slc": f"{S}/slc/{d}.tif", "metadata": f"{S}/slc/{d}.json"},
                {"product": f"{W}/cal/{d}.tif"},
            )
        )
        specs.append(
            ("apply_orbit", {"product": f"{W}/cal/{d}.tif"}, {"product": f"{W}/orbit/{d}.tif"})
        )
    dem = f"{S}/dem.tif"
    specs += [
        (
            "coregister",
            {"reference": f"{W}/orbit/{ref}.tif", "secondary": f"{W}/orbit/{sec}.tif", "dem": dem},
            {"product": f"{W}/co.tif"},
        ),
        ("interferogram", {"product": f"{W}/co.tif"}, {"product": f"{W}/ifg.tif"}),
        (
            "remove_topographic_phase",
            {"product": f"{W}/ifg.tif", "dem": dem},
            {"product": f"{W}/topo.tif"},
        ),
        ("goldstein", {"product": f"{W}/topo.tif"}, {"product": f"{W}/gold.tif"}),
        ("multilook", {"product": f"{W}/gold.tif"}, {"product": f"{W}/ml.tif"}),
        (
            "terrain_correct",
            {"product": f"{W}/ml.tif", "dem": dem},
            {
                "coherence": f"{W}/out/coh.tif",
                "phase": f"{W}/out/phase.tif",
                "layover_shadow": f"{W}/out/ls.tif",
            },
        ),
    ]
    base = run_child({"step": "baseline"})
    result = {
        "size": n,
        "slc_mb": n * n * 8 / 2**20,
        "baseline_rss_mb": base["peak_kb"] / 1024,
        "steps": {},
    }
    seen = set()
    for name, inputs, outputs in specs:
        # the minimum over repetitions: the machine is shared, the minimum is the least disturbed run
        runs = [
            run_child({"step": name, "inputs": inputs, "outputs": outputs}) for _ in range(repeat)
        ]
        r = {"seconds": min(x["seconds"] for x in runs), "peak_kb": max(x["peak_kb"] for x in runs)}
        key = name if name not in seen else name + "_secondary"
        seen.add(name)
        peak = r["peak_kb"] / 1024
        result["steps"][key] = {
            "seconds": round(r["seconds"], 3),
            "peak_rss_mb": round(peak, 1),
            "peak_above_baseline_mb": round(peak - result["baseline_rss_mb"], 1),
        }
        print(
            f"{n:5d} {key:26s} {r['seconds']:8.2f} s  peak {peak:7.1f} MB (+{peak - result['baseline_rss_mb']:.1f})",
            flush=True,
        )
    result["total_seconds"] = round(sum(v["seconds"] for v in result["steps"].values()), 2)
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096])
    ap.add_argument("--out", default=str(REPO / "benchmarks/results_insar.json"))
    ap.add_argument("--repeat", type=int, default=2, help="runs per step; the fastest is reported")
    args = ap.parse_args(argv)
    results = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory(prefix=f"bench_insar_{n}_") as tmp:
            t = time.perf_counter()
            results.append(bench(n, Path(tmp), args.repeat))
            print(
                f"{n}: total {results[-1]['total_seconds']} s (wall incl. setup {time.perf_counter() - t:.1f} s)"
            )
    summary = {
        "results": results,
        "repeat": args.repeat,
        "note": f"2 threads; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the end; time = fastest of `repeat` runs; "
        "peak = VmHWM of the step's process; peak_above_baseline = minus an import-only process",
    }
    if len(results) >= 2:
        a, b = results[-2], results[-1]
        ratio_px = (b["size"] / a["size"]) ** 2
        summary["scaling"] = {
            step: round(b["steps"][step]["seconds"] / max(a["steps"][step]["seconds"], 1e-9), 2)
            for step in b["steps"]
        }
        summary["scaling"]["total"] = round(b["total_seconds"] / a["total_seconds"], 2)
        summary["pixel_ratio"] = ratio_px
        summary["max_peak_over_slc"] = round(
            max(v["peak_above_baseline_mb"] for v in b["steps"].values()) / b["slc_mb"], 2
        )
    Path(args.out).write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "results"}, indent=2))


if __name__ == "__main__":
    main()
