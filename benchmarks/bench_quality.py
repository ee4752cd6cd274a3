"""Detection quality of the default run, measured on seeds the configuration was not tuned on.

For each seed, the default workflow (``config/config.yaml`` or ``--configfile``) runs end to end
in a fresh copy of the repository (tracked and untracked-not-ignored files, as a new clone),
exactly as a user runs it, with the top-level ``seed`` replaced (``--config seed=S``: the
simulated world, the split and the training all change). Then, per model, every metric of
``metrics.json`` (validation thresholds in both conventions, the optimistic convention, the
score against the true visible motion, the ceiling, background and decoy false-alarm fractions,
the numbers of images and pixels) is collected and summarised over the seeds: mean, standard
deviation (ddof 1), min and max; also the wall time of each run, the machine's load average
around it and the dataset's split sizes. Prints a markdown table and writes
``benchmarks/results_quality.json``.

    python benchmarks/bench_quality.py                     # seeds 101 202 303, one run at a time
    python benchmarks/bench_quality.py --seeds 7 8 --jobs 2 --out /tmp/q.json

The seeds default to three values other than the config's own (20240101, which the demo was
tuned on); never tune on the benchmark seeds. Targets (issue 11) are checked on the model with
the best mean F1 at the validation threshold among the shallow ones: ROC AUC >= 0.95, F1 >=
0.60 against the annotations, F1 >= 0.75 against the true visible motion, decoy pixels flagged
no more often than background pixels. Targets of issue 17 (multi-temporal detectors,
``temporal_targets``): the multi-temporal model with the best mean F1 beats the best
single-interferogram model's mean F1 by >= 0.05 on the same evaluation images, at the validation
threshold, and flags decoy pixels less often; the measured gaps are reported either way.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from isslide.files import copy_checkout
from isslide.simulate.decoys import KINDS as DECOY_KINDS

REPO = Path(__file__).resolve().parents[1]
SHALLOW = ("unet", "resunet", "sepunet")
TEMPORAL = ("tunet_early", "tunet_attn")  # multi-temporal (isslide.models.temporal)
# the figures of the markdown table: (label, path in metrics.json)
HEADLINE = [
    ("AUC", "auc"),
    ("F1 (val t)", "paper.f1"),
    ("pooled F1 (val t)", "pooled.f1"),
    ("IoU", "paper.iou"),
    ("HD", "paper.hd"),
    ("F1 optimistic", "optimistic.paper.f1"),
    ("truth F1", "truth.paper.f1"),
    ("truth pooled F1", "truth.pooled.f1"),
    ("truth AUC", "truth.auc"),
    ("ceiling F1", "ceiling.paper.f1"),
    ("FA background", "false_alarms.paper.background.fraction"),
    ("FA decoys", "false_alarms.paper.any_decoy.fraction"),
    *(
        (f"FA {kind}", f"false_alarms.paper.decoys.{kind}.fraction")
        for kind in DECOY_KINDS.values()
    ),
    ("eval images", "n_images"),
]


def flatten(obj, prefix="") -> dict[str, float]:
    """Numeric leaves of a metrics dict as {"a.b.c": value} (notes and texts left out)."""
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(obj, bool):
        pass
    elif isinstance(obj, (int, float)) and obj is not None:
        out[prefix] = float(obj)
    return out


def summary(values: list[float]) -> dict:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return {"n": 0}
    return {
        "n": len(vals),
        "mean": statistics.fmean(vals),
        "std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
        "min": min(vals),
        "max": max(vals),
        "values": values,
    }


def rule_cpu_seconds(work: Path) -> dict[str, float]:
    """Sum of the Snakemake benchmark files' wall and CPU seconds per rule."""
    out = {}
    for tsv in (work / "benchmarks").rglob("*.tsv"):
        rule = tsv.relative_to(work / "benchmarks").parts[0]
        lines = tsv.read_text().splitlines()
        if len(lines) < 2:
            continue
        head, row = lines[0].split("\t"), lines[1].split("\t")
        rec = dict(zip(head, row, strict=False))
        agg = out.setdefault(rule, {"jobs": 0, "s": 0.0, "cpu_time": 0.0})
        agg["jobs"] += 1
        for key in ("s", "cpu_time"):
            try:
                agg[key] += float(rec.get(key, "nan"))
            except ValueError:
                pass
    return dict(sorted(out.items()))


def run_seed(seed: int, args) -> dict:
    base = Path(tempfile.mkdtemp(prefix=f"isslide-quality-{seed}-", dir=args.workdir))
    work = copy_checkout(REPO, base / "repo")
    cmd = [sys.executable, "-m", "snakemake", "--cores", str(args.cores)]
    if args.configfile:
        cmd += ["--configfile", args.configfile]
    cmd += ["--config", f"seed={seed}"]
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    load1 = os.getloadavg()
    (base / "snakemake.log").write_text(proc.stdout + proc.stderr)
    rec = {
        "seed": seed,
        "returncode": proc.returncode,
        "wall_s": round(wall, 1),
        "load_before": [round(x, 2) for x in load0],
        "load_after": [round(x, 2) for x in load1],
        "log": str(base / "snakemake.log"),
    }
    if proc.returncode != 0:
        rec["error"] = proc.stderr[-2000:]
        return rec
    ev = work / "results/evaluation"
    rec["metrics"] = {
        m.parent.name: json.loads(m.read_text()) for m in sorted(ev.glob("*/metrics.json"))
    }
    manifest = json.loads((work / "results/dataset/manifest.json").read_text())
    rec["dataset"] = {k: manifest[k] for k in ("train", "val", "eval") if k in manifest}
    rec["rules"] = rule_cpu_seconds(work)
    if not args.keep:
        shutil.rmtree(base / "repo", ignore_errors=True)
    return rec


def targets(models: dict) -> dict:
    """The issue's targets on the shallow model with the best mean F1 at the validation t."""
    cands = {m: s for m, s in models.items() if m in SHALLOW and "paper.f1" in s}
    if not cands:
        return {}
    best = max(cands, key=lambda m: cands[m]["paper.f1"].get("mean", -1))
    s = cands[best]

    def mean(key):
        return s.get(key, {}).get("mean")

    decoy_keys = [
        k for k in s if k.startswith("false_alarms.paper.decoys.") and k.endswith(".fraction")
    ]
    decoy = max((mean(k) for k in decoy_keys if mean(k) is not None), default=None)
    bg = mean("false_alarms.paper.background.fraction")
    checks = {
        "auc >= 0.95": (mean("auc"), mean("auc") is not None and mean("auc") >= 0.95),
        "F1 vs annotations at the validation threshold >= 0.60": (
            mean("paper.f1"),
            mean("paper.f1") is not None and mean("paper.f1") >= 0.60,
        ),
        "F1 vs true visible motion >= 0.75": (
            mean("truth.paper.f1"),
            mean("truth.paper.f1") is not None and mean("truth.paper.f1") >= 0.75,
        ),
        "decoy false alarms <= background": (
            [decoy, bg],
            decoy is not None and bg is not None and decoy <= bg,
        ),
    }
    return {
        "model": best,
        "convention": "paper (per image) at the validation threshold; means over seeds",
        "checks": {k: {"value": v, "reached": bool(ok)} for k, (v, ok) in checks.items()},
    }


def temporal_targets(models: dict) -> dict:
    """Issue 17: the best multi-temporal model vs the best single-interferogram one (mean F1 at
    the validation threshold over the seeds, and the decoy false-alarm fraction)."""

    def mean(s, key):
        return s.get(key, {}).get("mean")

    def best(names):
        c = {m: models[m] for m in names if m in models and mean(models[m], "paper.f1") is not None}
        return max(c, key=lambda m: mean(c[m], "paper.f1")) if c else None

    single = best([m for m in models if m not in TEMPORAL])
    multi = best([m for m in models if m in TEMPORAL])
    if single is None or multi is None:
        return {}
    key_fa = "false_alarms.paper.any_decoy.fraction"
    f1s, f1m = mean(models[single], "paper.f1"), mean(models[multi], "paper.f1")
    fas, fam = mean(models[single], key_fa), mean(models[multi], key_fa)
    images = [mean(models[m], "n_images") for m in (single, multi)]
    return {
        "single": single,
        "multi": multi,
        "same_images": images[0] == images[1],
        "f1_gap": f1m - f1s,
        "decoy_fa": {"single": fas, "multi": fam},
        "checks": {
            "F1 gap >= 0.05": {"value": f1m - f1s, "reached": bool(f1m - f1s >= 0.05)},
            "decoy false alarms lower": {
                "value": [fam, fas],
                "reached": bool(fam is not None and fas is not None and fam < fas),
            },
        },
    }


def fmt(s: dict, digits=3) -> str:
    if not s or s.get("n", 0) == 0:
        return "-"
    return f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[101, 202, 303])
    ap.add_argument("--jobs", type=int, default=1, help="workflow runs at a time")
    ap.add_argument("--cores", type=int, default=2, help="snakemake --cores of each run")
    ap.add_argument("--configfile", default=None, help="default: the Snakefile's config.yaml")
    ap.add_argument("--workdir", default=None, help="where the temporary copies go")
    ap.add_argument("--keep", action="store_true", help="keep the copies (paths in the JSON)")
    ap.add_argument(
        "--out", default=os.path.join(os.path.dirname(__file__), "results_quality.json")
    )
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        runs = list(pool.map(lambda s: run_seed(s, args), args.seeds))
    ok = [r for r in runs if r["returncode"] == 0]
    for r in runs:
        status = "ok" if r["returncode"] == 0 else f"FAILED (see {r['log']})"
        print(f"seed {r['seed']}: {r['wall_s']:.0f} s wall, load {r['load_before']} -> "
              f"{r['load_after']}: {status}", flush=True)  # fmt: skip
    models: dict[str, dict] = {}
    names = sorted({m for r in ok for m in r["metrics"]})
    for m in names:
        flat = [flatten(r["metrics"].get(m, {})) for r in ok]
        keys = sorted({k for f in flat for k in f})
        models[m] = {k: summary([f.get(k) for f in flat]) for k in keys}
    dataset = {}
    for split in ("train", "val", "eval"):
        for key in ("samples", "with_motion", "interferograms"):
            vals = [float(r["dataset"][split][key]) for r in ok if split in r["dataset"]]
            dataset[f"{split}.{key}"] = summary(vals)
    result = {
        "config": args.configfile or "config/config.yaml",
        "seeds": args.seeds,
        "cores": args.cores,
        "jobs": args.jobs,
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
        },
        "total_s": round(time.perf_counter() - t0, 1),
        "wall_s": summary([r["wall_s"] for r in ok]),
        "dataset": dataset,
        "models": models,
        "targets": targets(models),
        "temporal_targets": temporal_targets(models),
        "runs": [{k: v for k, v in r.items() if k != "metrics"} for r in runs],
        "note": "mean ± standard deviation over the seeds; wall times depend on the machine's "
        "load (load averages recorded per run)",
    }
    tmp = args.out + ".part"
    with open(tmp, "w") as fh:
        json.dump(result, fh, indent=1)
    os.replace(tmp, args.out)
    head = ["model", *[h for h, _ in HEADLINE]]
    print()
    print(f"Seeds {args.seeds}; wall time per run {fmt(result['wall_s'], 0)} s; "
          f"evaluation patches with motion {fmt(dataset['eval.with_motion'], 0)}")  # fmt: skip
    print()
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
    for m in names:
        cells = [m] + [fmt(models[m].get(k), 0 if k == "n_images" else 3) for _, k in HEADLINE]
        print("| " + " | ".join(cells) + " |")
    if result["targets"]:
        print()
        t = result["targets"]
        print(f"Targets on {t['model']} ({t['convention']}):")
        for name, c in t["checks"].items():
            print(f"- {name}: {c['value']} -> {'reached' if c['reached'] else 'missed'}")
    if result["temporal_targets"]:
        t = result["temporal_targets"]
        print()
        print(f"Multi-temporal {t['multi']} vs single-interferogram {t['single']} "
              f"(same images: {t['same_images']}):")  # fmt: skip
        for name, c in t["checks"].items():
            print(f"- {name}: {c['value']} -> {'reached' if c['reached'] else 'missed'}")
    print(f"wrote {args.out}")
    return 0 if len(ok) == len(runs) else 1


if __name__ == "__main__":
    sys.exit(main())
