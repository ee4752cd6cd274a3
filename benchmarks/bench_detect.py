"""Benchmark of detection on whole interferograms (isslide.detect); writes results_detect.json.

Three measures, each skipped (with the reason in the JSON) when its input is missing:

1. throughput: Mpx/s of sliding-window inference (``predict_probability``, stride 50 by
   default, Hann blending, all pixels valid) for each shallow net (random weights: the speed does
   not depend on them), on the CPU with ``--threads`` threads, and on CUDA when one is visible.
   Target: >= 1 Mpx/s on 2 CPU cores.
2. real: the share of valid pixels flagged on the real 12-day Sentinel-1 interferogram
   (resources/real/, no landslide) by the best model of a run (``--models``: its
   results/models folder; best F1 and threshold as the workflow picks them), and the flagged
   pixels within ``--border`` pixels of nodata or of the image edge. Targets: <= 0.5 %, none
   within the border.
3. simulated: on the held-out interferograms of a default run (``--results``: its results folder;
   held out = the pairs with evaluation samples in results/dataset/ready/index.csv), the
   object-level recall of the visible true areas (resources/synthetic/{stack}/truth/{delay}d/
   {ref}_{sec}_areas.gpkg, visible = 1: those an annotator would draw) and the precision of the
   candidates (a candidate is right when it overlaps a true moving area, visible or not), over
   the whole interferograms and over the evaluation zones only.

    python benchmarks/bench_detect.py --models results/models --results results --threads 2

The machine load (1-minute load average before and after) is recorded: on a shared machine the
speed figures are only comparable within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import geopandas as gpd  # noqa: E402
import pandas as pd  # noqa: E402
import rasterio  # noqa: E402
import torch  # noqa: E402
from scipy import ndimage  # noqa: E402

from isslide.detect import best_model, detect, model_threshold, predict_probability  # noqa: E402
from isslide.errors import IsslideError  # noqa: E402
from isslide.models import build_model  # noqa: E402

SHALLOW = ("unet", "resunet", "sepunet")
REAL = REPO / "resources/real/s1_ifg_20230904_20230916"


def load() -> float:
    return round(os.getloadavg()[0], 2)


def throughput(size: int, stride: int, repeats: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    phase = rng.uniform(-np.pi, np.pi, (size, size)).astype(np.float32)
    coh = rng.uniform(0, 1, (size, size)).astype(np.float32)
    valid = np.ones((size, size), bool)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    out = {"size_px": [size, size], "stride": stride, "threads": threads, "models": {}}
    for name in SHALLOW:
        torch.manual_seed(0)
        model = build_model(name).eval()
        row = {}
        for dev in devices:
            predict_probability(
                model,
                phase[:150, :150],
                coh[:150, :150],
                valid[:150, :150],
                dev,
                stride=stride,
                progress=False,
            )  # fmt: skip  (warm-up)
            times = []
            for _ in range(repeats):
                if dev == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                predict_probability(model, phase, coh, valid, dev, stride=stride, progress=False)
                if dev == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t0)
            best = min(times)
            row[dev] = {
                "seconds_min": round(best, 3),
                "seconds_median": round(float(np.median(times)), 3),
                "mpx_per_s": round(size * size / best / 1e6, 4),
            }
        out["models"][name] = row
        print(f"throughput {name}: {row}", flush=True)
    cpu = [r["cpu"]["mpx_per_s"] for r in out["models"].values()]
    out["target_cpu_mpx_per_s"] = 1.0
    out["target_reached"] = bool(min(cpu) >= 1.0)
    return out


def choose(models_dir: str) -> tuple[str, float, str, str]:
    folders = [str(p) for p in sorted(Path(models_dir).glob("*")) if (p / "model.pt").exists()]
    if not folders:
        raise IsslideError(f"{models_dir}: no trained model folder (*/model.pt)")
    folder, f1, f1_source = best_model(folders)
    threshold, source = model_threshold(folder)
    return folder, threshold, source, f"F1 {f1:.4f} ({f1_source})"


def border_band(valid: np.ndarray, width: int) -> np.ndarray:
    """Valid pixels within ``width`` pixels of an invalid pixel or of the image edge."""
    padded = np.pad(valid, width, constant_values=False)
    inner = ndimage.binary_erosion(padded, np.ones((2 * width + 1,) * 2, bool))
    return valid & ~inner[width:-width, width:-width]


def real_interferogram(models_dir: str, border: int, stride: int, threads: int) -> dict:
    folder, threshold, source, f1 = choose(models_dir)
    with tempfile.TemporaryDirectory() as tmp:
        s = detect(folder, str(REAL / "phase.tif"), str(REAL / "coherence.tif"), tmp,
                   threshold=threshold, threshold_source=source, stride=stride, threads=threads,
                   progress=False)  # fmt: skip
        with rasterio.open(Path(tmp) / "mask.tif") as m:
            mask = m.read(1)
    valid = mask != 255
    flagged = mask == 1
    band = border_band(valid, border)
    out = {
        "model": folder,
        "model_choice": f1,
        "threshold": threshold,
        "threshold_source": source,
        "valid_pixels": int(valid.sum()),
        "flagged_pixels": int(flagged.sum()),
        "flagged_fraction": float(flagged.sum() / valid.sum()),
        "candidates": s["candidates"],
        "border_px": border,
        "border_pixels": int(band.sum()),
        "flagged_in_border": int((flagged & band).sum()),
        "flagged_fraction_in_border": float((flagged & band).sum() / max(band.sum(), 1)),
        "target_flagged_fraction": 0.005,
    }
    out["target_reached"] = bool(out["flagged_fraction"] <= 0.005 and out["flagged_in_border"] == 0)
    print(f"real: {out}", flush=True)
    return out


def held_out_pairs(results: Path) -> tuple[list[tuple[str, int, str, str]], set[str]]:
    index = pd.read_csv(
        results / "dataset/ready/index.csv", dtype={"reference": str, "secondary": str}
    )
    ev = index[index["split"] == "eval"]
    pairs = sorted(
        {(r.stack, int(r.delay), str(r.reference), str(r.secondary)) for r in ev.itertuples()}
    )
    return pairs, set(ev["zone"].astype(str))


def simulated(models_dir: str, results: Path, stride: int, threads: int) -> dict:
    folder, threshold, source, f1 = choose(models_dir)
    root = results.resolve().parent
    pairs, eval_zones = held_out_pairs(results)
    if not pairs:
        raise IsslideError(f"{results}/dataset/ready/index.csv: no evaluation sample")
    totals = {k: 0 for k in ("visible", "visible_found", "candidates", "candidates_right",
                             "candidates_right_visible", "ez_visible", "ez_visible_found")}  # fmt: skip
    per_pair = []
    for stack, delay, ref, sec in pairs:
        ifg = results / f"interferograms/{stack}/{delay}d/{ref}_{sec}"
        truth_path = root / f"resources/synthetic/{stack}/truth/{delay}d/{ref}_{sec}_areas.gpkg"
        if not truth_path.exists():
            raise IsslideError(f"{truth_path}: no truth (a simulated run's resources/synthetic)")
        truth = gpd.read_file(truth_path)
        with tempfile.TemporaryDirectory() as tmp:
            detect(folder, str(ifg / "phase.tif"), str(ifg / "coherence.tif"), tmp,
                   threshold=threshold, threshold_source=source, stride=stride,
                   layover_shadow=str(ifg / "layover_shadow.tif"), reference=ref, secondary=sec,
                   threads=threads, progress=False)  # fmt: skip
            cands = gpd.read_file(Path(tmp) / "candidates.gpkg")
        vis = truth[truth["visible"] == 1]
        found = [bool(len(cands)) and bool(cands.intersects(g).any()) for g in vis.geometry]
        right = [bool(len(truth)) and bool(truth.intersects(g).any()) for g in cands.geometry]
        right_vis = [bool(len(vis)) and bool(vis.intersects(g).any()) for g in cands.geometry]
        ez = vis["zone"].astype(str).isin(eval_zones).to_numpy()
        row = {
            "pair": f"{stack}/{delay}d/{ref}_{sec}",
            "visible": len(vis),
            "visible_found": int(sum(found)),
            "candidates": len(cands),
            "candidates_right": int(sum(right)),
        }
        per_pair.append(row)
        totals["visible"] += len(vis)
        totals["visible_found"] += int(sum(found))
        totals["candidates"] += len(cands)
        totals["candidates_right"] += int(sum(right))
        totals["candidates_right_visible"] += int(sum(right_vis))
        totals["ez_visible"] += int(ez.sum())
        totals["ez_visible_found"] += int(np.sum(np.array(found, bool) & ez)) if len(ez) else 0
        print(f"simulated {row}", flush=True)

    def ratio(a, b):
        return None if b == 0 else round(a / b, 4)

    return {
        "model": folder,
        "model_choice": f1,
        "threshold": threshold,
        "threshold_source": source,
        "held_out_interferograms": len(pairs),
        "evaluation_zones": sorted(eval_zones),
        **totals,
        "object_recall_visible": ratio(totals["visible_found"], totals["visible"]),
        "object_recall_visible_evaluation_zones": ratio(
            totals["ez_visible_found"], totals["ez_visible"]
        ),
        "candidate_precision": ratio(totals["candidates_right"], totals["candidates"]),
        "candidate_precision_visible_only": ratio(
            totals["candidates_right_visible"], totals["candidates"]
        ),
        "per_pair": per_pair,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="results/models", help="a run's results/models folder")
    ap.add_argument("--results", default="results", help="a default run's results folder")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=600, help="throughput image side (px)")
    ap.add_argument("--stride", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--border", type=int, default=10, help="nodata/edge band width (px)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["throughput", "real", "simulated"])
    ap.add_argument("--out", default=str(REPO / "benchmarks/results_detect.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "load_1min_before": load(),
        },
        "command": "python benchmarks/bench_detect.py " + " ".join(argv or sys.argv[1:]),
    }
    steps = {
        "throughput": lambda: throughput(args.size, args.stride, args.repeats, args.threads),
        "real": lambda: real_interferogram(args.models, args.border, args.stride, args.threads),
        "simulated": lambda: simulated(args.models, Path(args.results), args.stride, args.threads),
    }
    for name, step in steps.items():
        if name in args.skip:
            result[name] = {"skipped": "--skip"}
            continue
        try:
            result[name] = step()
        except (IsslideError, OSError) as exc:
            result[name] = {"skipped": str(exc)}
            print(f"{name}: skipped: {exc}", flush=True)
    result["machine"]["load_1min_after"] = load()
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
