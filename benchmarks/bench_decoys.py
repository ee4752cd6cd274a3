"""Trained detectors against the simulated decoys: the share of each kind's pixels they flag.

    python benchmarks/bench_decoys.py --run .     # after `snakemake --cores 2` (default run)
                                                  # writes benchmarks/results_decoys.json

For each trained model of the run (``results/models/*/model.pt``) and every interferogram of
its simulated stacks, the whole scene is predicted in overlapping patches of the dataset's
patch size (the mean of the overlapping probabilities), thresholded at the model's pooled-F1
threshold (``results/evaluation/{model}/metrics.json``), and compared with the truth rasters of
``resources/synthetic/{stack}/truth/``: for every decoy kind (``*_decoys.tif``, tag
``DECOY_KINDS``) the share of its valid pixels flagged, beside the share of stable ground
flagged (no decoy, no motion) and of the annotated motion (recall). Valid pixels: data, no
layover/shadow. Reported for the whole scene and, separately, for the evaluation zones (the
detectors never trained there).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import rasterio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import torch  # noqa: E402

from isslide.config import load_config  # noqa: E402
from isslide.evaluate import predict_store  # noqa: E402
from isslide.train import load_trained  # noqa: E402


def read(path):
    with rasterio.open(path) as ds:
        return ds.read(1), ds.nodata, ds.transform, ds.tags()


def tiles(shape, size, step):
    def starts(n):
        s = list(range(0, max(n - size, 0) + 1, step))
        if s[-1] + size < n:
            s.append(n - size)
        return s

    return [(r, c) for r in starts(shape[0]) for c in starts(shape[1])]


def predict_scene(model, coh, phase, valid, size, device):
    pos = tiles(coh.shape, size, size // 2)
    n = len(pos)
    store = {
        "coherence": np.zeros((n, size, size), np.float32),
        "phase": np.zeros((n, size, size), np.float32),
        "label": np.zeros((n, size, size), np.uint8),
        "valid": np.zeros((n, size, size), np.uint8),
        "sample_id": np.arange(n),
    }
    for k, (r, c) in enumerate(pos):
        v = valid[r : r + size, c : c + size]
        store["coherence"][k] = np.where(v, coh[r : r + size, c : c + size], 0)
        store["phase"][k] = np.where(v, phase[r : r + size, c : c + size], 0)
        store["valid"][k] = v
    probs = predict_store(model, store, device, 16)
    total = np.zeros(coh.shape)
    count = np.zeros(coh.shape)
    for k, (r, c) in enumerate(pos):
        total[r : r + size, c : c + size] += probs[k]
        count[r : r + size, c : c + size] += 1
    return total / np.maximum(count, 1)


def zone_mask(transform, shape, zones):
    rows, cols = np.indices(shape)
    lon, lat = transform @ (cols + 0.5, rows + 0.5)
    m = np.zeros(shape, bool)
    for z in zones:
        w, s, e, n = z["bbox"]
        m |= (lon >= w) & (lon <= e) & (lat >= s) & (lat <= n)
    return m


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", default=".", help="the workflow's working directory")
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--output", default=str(REPO / "benchmarks/results_decoys.json"))
    args = ap.parse_args(argv)
    run = Path(args.run)
    cfg = load_config(run / args.config)
    size = int(cfg["dataset"]["patch_size"]) if "patch_size" in cfg.get("dataset", {}) else 100
    torch.set_num_threads(2)
    device = torch.device("cpu")
    models = sorted(p.parent.name for p in (run / "results/models").glob("*/model.pt"))
    result = {"run": str(args.config), "patch": size, "load": os.getloadavg()[0], "models": {}}
    ifgs = sorted((run / "results/interferograms").glob("*/*d/*/phase.tif"))
    for name in models:
        model, _ = load_trained(str(run / f"results/models/{name}/model.pt"))
        metrics = json.loads((run / f"results/evaluation/{name}/metrics.json").read_text())
        thr = float(metrics["pooled"]["threshold"])
        acc = {}
        for ph_path in ifgs:
            d = ph_path.parent
            stack, delay, pair = d.parts[-3], d.parts[-2], d.name
            truth = run / f"resources/synthetic/{stack}/truth/{delay}/{pair}"
            if not Path(f"{truth}_decoys.tif").exists():
                continue
            phase, pnd, tr, _ = read(ph_path)
            coh, cnd, _, _ = read(d / "coherence.tif")
            ls, _, _, _ = read(d / "layover_shadow.tif")
            codes, _, _, tags = read(f"{truth}_decoys.tif")
            defo, _, _, _ = read(f"{truth}_deformation.tif")
            lab_path = run / f"results/labels/{stack}/{delay}/{pair}.tif"
            labels = read(lab_path)[0] > 0 if lab_path.exists() else defo != 0
            valid = (phase != pnd) & (coh != cnd) & (ls == 0)
            flagged = predict_scene(model, coh, phase, valid, size, device) >= thr
            zones = [z for z in cfg["stacks"][stack].get("zones", {}).values()]
            eval_zone = zone_mask(tr, phase.shape, [z for z in zones if z["role"] == "evaluation"])
            kinds = json.loads(tags["DECOY_KINDS"])
            for where, m in (("scene", valid), ("evaluation_zone", valid & eval_zone)):
                rows = {name_: codes == int(c) for c, name_ in kinds.items()}
                rows["stable_ground"] = (codes == 0) & (defo == 0) & ~labels
                rows["annotated_motion"] = labels
                for key, sel in rows.items():
                    a = acc.setdefault(where, {}).setdefault(key, [0, 0])
                    a[0] += int((flagged & sel & m).sum())
                    a[1] += int((sel & m).sum())
        result["models"][name] = {
            "threshold": thr,
            **{
                where: {
                    k: {"flagged": (v[0] / v[1]) if v[1] else None, "pixels": v[1]}
                    for k, v in table.items()
                }
                for where, table in acc.items()
            },
        }
        print(name, json.dumps(result["models"][name]["scene"]))
    Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
