"""Evaluation of trained detectors: predictions, metrics, Table I and figures.

* :func:`evaluate_model` writes ``predictions.npz`` (``probabilities`` float32 (N, H, W),
  ``labels`` uint8, ``valid`` uint8, ``sample_id`` int64, ``selected`` bool: the samples the
  metrics use; ``truth`` and ``decoy`` uint8 when the store has them) and ``metrics.json``:
  every figure at the thresholds the model chose on the validation split (``paper``,
  ``pooled``), the paper's optimistic convention (thresholds chosen on the evaluation set
  itself, ``optimistic``), and for simulated data the score against the true visible motion
  (``truth``), the ceiling the annotations allow (``ceiling``: the truth scored against them)
  and the false-alarm fractions of background and decoy pixels (``false_alarms``); each block
  with its numbers of images and valid pixels. ``warnings`` flags an evaluation set smaller
  than ``evaluation.min_images``. Anyone can recompute the metrics from the npz with
  ``isslide.metrics.evaluate_arrays``.
* :func:`write_table` writes Table I (``table.csv`` and ``table.md``).
* :func:`figure3`, :func:`training_curves`, :func:`pr_curves` draw the PNG figures (Agg).
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import sys

import numpy as np
import pandas as pd
import torch

from . import metrics as M
from .dataset.store import decoy_kinds, read_store
from .errors import IsslideError
from .train import (
    atomic_write_bytes,
    evaluation_config,
    load_trained,
    model_thresholds,
    motion_mask,
    open_store,
    predict_store,
    resolve_device,
    select_samples,
    temporal_inputs,
)

log = logging.getLogger("isslide.evaluate")

EMPTY_RULES = (
    "ratios 0/0 are 1 when prediction and truth are both empty, else 0; both empty: P=R=Dice="
    "IoU=1, HD=0; one empty: P=R=Dice=IoU=0, HD=patch diagonal; F1 with P+R=0 is 0"
)
TRUTH_RULE = (
    "true visible motion: |true deformation phase| >= simulation.annotations.visibility_rad on "
    "pixels valid in the truth (no layover/shadow, true coherence >= "
    "simulation.truth.coherence_min) and in the interferogram"
)
CEILING_NOTE = "the true visible motion scored as a prediction against the annotations"
OPTIMISTIC_NOTE = (
    "thresholds chosen on the evaluation set itself (the paper's convention): optimistic"
)
FALSE_ALARM_NOTE = (
    "fraction of pixels flagged at each validation threshold, over all evaluation samples, "
    "among valid pixels that are neither annotated nor truly moving: background (no decoy) "
    "and each decoy kind"
)


def atomic_savez(path: str, **arrays) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def atomic_text(path: str, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def small_set_warning(n_images: int, minimum: int) -> str | None:
    if n_images >= minimum:
        return None
    return (
        f"the evaluation set holds {n_images} images, fewer than evaluation.min_images "
        f"({minimum}): its figures mean little; add dates (dates.end), widen the "
        "evaluation-role zones or raise dataset.eval_fraction"
    )


SCRATCH_NOTE = (
    "trained from random weights; the ISSLIDE authors' code started these 'scratch' models from "
    "torchvision's ImageNet ResNet50 backbone: set training.weights.backbone "
    "(resnet50-0676ba61.pth) to compare them with the published Table I"
)


def initialisation(info: dict) -> str:
    """How a trained model's weights were initialised, from its model file's settings."""
    from .models import get_spec

    spec = get_spec(info["model_name"])
    weights = (json.loads(info.get("settings") or "{}") or {}).get("weights") or {}
    if spec.needs_weights and info["model_name"] in weights:
        return "pretrained: " + os.path.basename(weights[info["model_name"]]["path"])
    if spec.needs_weights:
        return "pretrained (torchvision download)"
    if spec.uses_backbone and "backbone" in weights:
        return "ImageNet backbone: " + os.path.basename(weights["backbone"]["path"])
    if spec.uses_backbone:
        return "random (no ImageNet backbone)"
    return "random"


def score_predictions(
    probs,
    store: dict,
    selected: np.ndarray,
    thresholds: dict,
    n_thresholds: int,
    min_images: int,
    hd: str = M.HAUSDORFF_DEFAULT,
) -> dict:
    """Every metrics block of ``metrics.json`` (without the model's description); ``hd``: the
    Hausdorff definition (``isslide.metrics.HAUSDORFF``)."""
    labels = store["label"] > 0
    valid = store["valid"] > 0
    t = {"paper": thresholds["paper"]["threshold"], "pooled": thresholds["pooled"]["threshold"]}
    res = M.evaluate_arrays(
        probs[selected], labels[selected], valid[selected], n_thresholds, thresholds=t, hd=hd
    )
    res["optimistic"] = {"note": OPTIMISTIC_NOTE, **res["optimistic"]}
    out = {
        "thresholds": {
            "chosen_on": thresholds.get("chosen_on", "validation"),
            "paper": t["paper"],
            "pooled": t["pooled"],
            "epoch": thresholds.get("epoch"),
            "n_images": thresholds["n_images"],
            "n_valid_pixels": thresholds["n_valid_pixels"],
        },
        **res,
    }
    negative = ~labels
    if "truth" in store:
        truth = store["truth"] > 0
        negative = negative & ~truth
        tr = M.evaluate_arrays(
            probs[selected], truth[selected], valid[selected], n_thresholds, thresholds=t, hd=hd
        )
        tr["optimistic"] = {"note": OPTIMISTIC_NOTE, **tr["optimistic"]}
        out["truth"] = {"rule": TRUTH_RULE, **tr}
        ceiling = M.binary_scores(truth[selected], labels[selected], valid[selected], hd)
        out["ceiling"] = {"note": CEILING_NOTE, **ceiling}
    if "truth" in store or "decoy" in store:
        decoy = store["decoy"] if "decoy" in store else None
        kinds = decoy_kinds(store)
        out["false_alarms"] = {
            "note": FALSE_ALARM_NOTE,
            "n_images": int(len(probs)),
            **{
                conv: M.false_alarms(probs, valid, negative, decoy, kinds, t[conv])
                for conv in ("paper", "pooled")
            },
        }
    warning = small_set_warning(res["n_images"], min_images)
    out["warnings"] = [warning] if warning else []
    return out


def evaluate_model(
    model_path: str,
    eval_path: str,
    predictions_path: str,
    metrics_path: str,
    training_cfg: dict | None = None,
    eval_cfg: dict | None = None,
    threads: int | None = None,
    temporal: dict | None = None,
) -> dict:
    """Predict the evaluation store with ``model_path`` at its validation thresholds; write
    ``predictions_path`` and ``metrics_path``. A multi-temporal model reads, with ``temporal``
    ({"index": temporal.csv, "stores": {stack: stack store}}), the same targets as
    ``eval_path`` with their earlier interferograms."""
    training_cfg = training_cfg or {}
    ecfg = evaluation_config(eval_cfg)
    if threads:
        torch.set_num_threads(int(threads))
    model, info = load_trained(model_path, training_cfg.get("weights"))
    temporal = temporal_inputs(info["model_name"], temporal)
    store = open_store(eval_path, "evaluation", temporal)
    selected_idx = select_samples(store, ecfg["motion_only"], eval_path, "evaluation")
    thresholds = model_thresholds(info, model_path)
    device = resolve_device(training_cfg.get("device", "auto"))
    amp = bool(training_cfg.get("amp")) and device.type == "cuda"
    probs = predict_store(model, store, device, int(ecfg["batch_size"]), amp)
    selected = np.zeros(len(probs), dtype=bool)
    selected[selected_idx] = True
    scores = score_predictions(
        probs,
        store,
        selected,
        thresholds,
        int(ecfg["n_thresholds"]),
        int(ecfg["min_images"]),
        hd=ecfg["hausdorff"],
    )
    result = {
        "model": info["model_name"],
        "epochs": info["epochs"],
        "epoch": info.get("epoch", info["epochs"]),
        "select_best": info.get("select_best", "last"),
        "n_parameters": info["n_parameters"],
        "initialisation": initialisation(info),
        "steps": int(info.get("steps", 1)),  # interferograms read per evaluation image
        "motion_only": bool(ecfg["motion_only"]),
        **scores,
        "hausdorff": {"definition": ecfg["hausdorff"], "note": M.HAUSDORFF[ecfg["hausdorff"]][1]},
        "empty_masks": EMPTY_RULES,
    }
    extra = {k: (store[k] > 0 if k == "truth" else store[k]).astype(np.uint8)
             for k in ("truth", "decoy") if k in store}  # fmt: skip
    atomic_savez(
        predictions_path,
        probabilities=probs,
        labels=(store["label"] > 0).astype(np.uint8),
        valid=(store["valid"] > 0).astype(np.uint8),
        sample_id=store["sample_id"].astype(np.int64),
        selected=selected,
        **extra,
    )
    atomic_text(metrics_path, json.dumps(result, indent=2) + "\n")
    for w in result["warnings"]:
        log.warning("%s", w)
        print(f"isslide: warning: {eval_path}: {w}", file=sys.stderr)
    log.info(
        "%s: AUC %s, F1 at the validation thresholds: paper %.4f, pooled %.4f (optimistic "
        "%.4f, %.4f)%s",
        result["model"],
        result["auc"],
        result["paper"]["f1"],
        result["pooled"]["f1"],
        result["optimistic"]["paper"]["f1"],
        result["optimistic"]["pooled"]["f1"],
        f"; vs truth: paper F1 {result['truth']['paper']['f1']:.4f}" if "truth" in result else "",
    )
    return result


def read_predictions(path: str) -> dict:
    if not os.path.exists(path):
        raise IsslideError(f"{path}: predictions not found; run the evaluate rule")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as exc:
        raise IsslideError(f"{path}: unreadable predictions ({exc}); delete it and rerun") from None


def read_metrics(path: str) -> dict:
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError) as exc:
        raise IsslideError(f"{path}: unreadable metrics ({exc}); delete it and rerun") from None


# ----------------------------------------------------------------------------- Table I

METRICS = [m.column for m in M.METRIC_TABLE]  # Table I's columns (isslide.metrics.METRIC_TABLE)


def _get(d: dict, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def table_row(name: str, m: dict) -> dict:
    """One model's row of Table I (table.csv columns) from its metrics.json."""
    p, q, o = m["paper"], m["pooled"], m.get("optimistic", {})
    row = {
        "model": name,
        "n_images": m.get("n_images"),
        "n_valid_pixels": m.get("n_valid_pixels"),
        **{c.column: m[c.key] if c.key == "auc" else p[c.key] for c in M.METRIC_TABLE},
        "threshold": p["threshold"],
        **{f"pooled_{c.column}": q[c.key] for c in M.METRIC_TABLE if c.key != "auc"},
        "pooled_threshold": q["threshold"],
        "threshold_chosen_on": _get(m, "thresholds", "chosen_on"),
        "val_images": _get(m, "thresholds", "n_images"),
        "val_valid_pixels": _get(m, "thresholds", "n_valid_pixels"),
        "optimistic_F1": _get(o, "paper", "f1"),
        "optimistic_threshold": _get(o, "paper", "threshold"),
        "optimistic_pooled_F1": _get(o, "pooled", "f1"),
        "optimistic_pooled_threshold": _get(o, "pooled", "threshold"),
        "hausdorff": _get(m, "hausdorff", "definition"),
        "init": m.get("initialisation"),
    }
    if "truth" in m:
        row.update(
            truth_F1=m["truth"]["paper"]["f1"],
            truth_pooled_F1=m["truth"]["pooled"]["f1"],
            truth_AUC=m["truth"]["auc"],
            truth_positive_pixels=m["truth"]["n_positive_pixels"],
            ceiling_F1=m["ceiling"]["paper"]["f1"],
            ceiling_pooled_F1=m["ceiling"]["pooled"]["f1"],
        )
    fa = m.get("false_alarms")
    if fa:
        row["fa_images"] = fa["n_images"]
        for conv, prefix in (("paper", "fa"), ("pooled", "pooled_fa")):
            row[f"{prefix}_background"] = fa[conv]["background"]["fraction"]
            row[f"{prefix}_background_pixels"] = fa[conv]["background"]["pixels"]
            if "any_decoy" in fa[conv]:
                row[f"{prefix}_any_decoy"] = fa[conv]["any_decoy"]["fraction"]
                row[f"{prefix}_any_decoy_pixels"] = fa[conv]["any_decoy"]["pixels"]
            for kind, r in fa[conv]["decoys"].items():
                row[f"{prefix}_{kind}"] = r["fraction"]
                row[f"{prefix}_{kind}_pixels"] = r["pixels"]
    row["n_parameters"] = m.get("n_parameters")
    row["steps"] = m.get("steps", 1)
    row["warning"] = "; ".join(m.get("warnings") or []) or None
    return row


def table_frame(metrics_paths: dict[str, str], reference: str | None = None) -> pd.DataFrame:
    df = pd.DataFrame([table_row(n, read_metrics(p)) for n, p in metrics_paths.items()])
    if reference:
        if not os.path.exists(reference):
            raise IsslideError(f"evaluation.reference_table: {reference} not found")
        ref = pd.read_csv(reference)
        missing = [c for c in ["model", *METRICS] if c not in ref.columns]
        if missing:
            raise IsslideError(
                f"{reference}: reference table lacks columns {', '.join(missing)} "
                "(expected model, F1, AUC, Dice, IoU, HD)"
            )
        ref = ref[["model", *METRICS]].rename(columns={c: f"published_{c}" for c in METRICS})
        df = df.merge(ref, on="model", how="left")
    return df


def _fmt(v, digits=3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return f"{int(v):,}"
    return f"{v:.{digits}f}"


def _md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|",
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
    ]


def _hd_note(record: dict) -> str:
    name = record.get("hausdorff") or M.HAUSDORFF_DEFAULT
    return f"{name}: {M.HAUSDORFF[name][1]}"


def write_table(
    metrics_paths: dict[str, str], csv_path: str, md_path: str, reference: str | None = None
) -> pd.DataFrame:
    df = table_frame(metrics_paths, reference)
    records = df.to_dict("records")
    warnings = sorted({r["warning"] for r in records if isinstance(r.get("warning"), str)})
    atomic_text(csv_path, df.to_csv(index=False, float_format="%.6g"))
    for w in warnings:
        print(f"isslide: warning: {w}", file=sys.stderr)
    lines = ["# Table I: detectors on this run's evaluation set", ""]
    for w in warnings:
        lines += [f"**Warning: {w}.**", ""]
    lines += [
        "Thresholds chosen on the validation split (never on the evaluation set) and applied",
        "unchanged. Paper convention: precision/recall per image averaged, F1 from the averages,",
        "Dice and IoU averaged over images, HD (Hausdorff distance, pixels, "
        + ", ".join(sorted({_hd_note(r) for r in records}))
        + ") averaged over images. Pooled: counts over all valid pixels; pooled HD is the",
        "largest per-image HD. AUC: ROC AUC over all valid evaluation pixels. Images and valid",
        "pixels: the evaluation samples each figure is computed on. Empty masks: "
        + EMPTY_RULES
        + ".",
        "Interferograms: read per image (1, or K for the multi-temporal models, whose images",
        "are the same evaluation targets with their K - 1 earlier interferograms).",
        "",
    ]
    rows = []
    for r in records:
        rows.append(
            [r["model"], _fmt(r.get("steps", 1)), _fmt(r.get("n_parameters"))]
            + [_fmt(r["n_images"]), _fmt(r["n_valid_pixels"]), _fmt(r["F1"])]
            + [_fmt(r["AUC"]), _fmt(r["Dice"]), _fmt(r["IoU"]), _fmt(r["HD"], 2)]
            + [_fmt(r["threshold"]), _fmt(r["pooled_F1"]), _fmt(r["pooled_IoU"])]
            + [_fmt(r["pooled_HD"], 2), _fmt(r["pooled_threshold"])]
            + [f"{_fmt(r['val_images'])} / {_fmt(r['val_valid_pixels'])}"]
        )
    lines += _md_table(
        ["Model", "interferograms", "parameters", "images", "valid px", "F1", "AUC", "Dice"]
        + ["IoU", "HD (px)", "threshold"]
        + ["pooled F1", "pooled IoU", "pooled HD", "pooled threshold", "val images / px"],
        rows,
    )
    lines += [
        "## Optimistic: thresholds chosen on the evaluation set itself (the paper's convention)",
        "",
    ]
    lines += _md_table(
        ["Model", "images", "F1", "threshold", "pooled F1", "pooled threshold"],
        [
            [r["model"], _fmt(r["n_images"]), _fmt(r["optimistic_F1"])]
            + [_fmt(r["optimistic_threshold"]), _fmt(r["optimistic_pooled_F1"])]
            + [_fmt(r["optimistic_pooled_threshold"])]
            for r in records
        ],
    )
    if "truth_F1" in df.columns:
        kinds = sorted(
            c[len("fa_") : -len("_pixels")]
            for c in df.columns
            if c.startswith("fa_") and c.endswith("_pixels") and c != "fa_background_pixels"
        )
        lines += [
            "## Against the simulator's truth",
            "",
            "Truth: " + TRUTH_RULE + ". Ceiling: " + CEILING_NOTE + " (the best score the",
            "annotations allow). False alarms: " + FALSE_ALARM_NOTE + "; here at the paper-",
            "convention validation threshold (metrics.json also has the pooled one).",
            "",
        ]
        head = ["Model", "images", "truth F1", "truth pooled F1", "truth AUC"]
        head += ["ceiling F1", "ceiling pooled F1", "FA background"]
        head += [f"FA {k}" for k in kinds]
        rows = []
        for r in records:
            row = [r["model"], _fmt(r["n_images"]), _fmt(r.get("truth_F1"))]
            row += [_fmt(r.get("truth_pooled_F1")), _fmt(r.get("truth_AUC"))]
            row += [_fmt(r.get("ceiling_F1")), _fmt(r.get("ceiling_pooled_F1"))]
            row += [f"{_fmt(r.get('fa_background'), 4)} ({_fmt(r.get('fa_background_pixels'))} px)"]
            row += [
                f"{_fmt(r.get(f'fa_{k}'), 4)} ({_fmt(r.get(f'fa_{k}_pixels'))} px)" for k in kinds
            ]
            rows.append(row)
        lines += _md_table(head, rows)
        lines += [f"False alarms over {_fmt(records[0].get('fa_images'))} evaluation images.", ""]
    scratch = [r["model"] for r in records if r.get("init") == "random (no ImageNet backbone)"]
    inits = [f"{r['model']}: {r['init']}" for r in records if isinstance(r.get("init"), str)]
    if inits:
        lines += ["Initialisation: " + "; ".join(inits) + ".", ""]
    if scratch:
        lines += [f"Note: {', '.join(scratch)} {SCRATCH_NOTE}.", ""]
    has_ref = any(c.startswith("published_") for c in df.columns)
    if has_ref:
        lines += ["## Published values", ""]
        lines += _md_table(
            ["Model", *METRICS],
            [[r["model"]] + [_fmt(r.get(f"published_{c}")) for c in METRICS] for r in records],
        )
        lines.append(f"Published values from {reference} (see the README beside it).")
    else:
        lines.append(
            "Published values: not shown (set evaluation.reference_table to a CSV with columns "
            "model, F1, AUC, Dice, IoU, HD, e.g. resources/reference/table1.csv, to add them)."
        )
    atomic_text(md_path, "\n".join(lines) + "\n")
    return df


# ----------------------------------------------------------------------------- figures


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


INVALID_COLOUR = "#e69500"


def pick_samples(store: dict, n: int) -> np.ndarray:
    """``n`` motion samples spread over the range of motion areas (deterministic)."""
    moving = np.flatnonzero(motion_mask(store))
    if moving.size == 0:
        return moving
    area = (store["label"][moving] > 0).reshape(moving.size, -1).sum(axis=1)
    order = moving[np.argsort(area, kind="mergesort")[::-1]]
    take = np.unique(np.linspace(0, order.size - 1, min(n, order.size)).round().astype(int))
    return order[take]


def _describe(index: pd.DataFrame | None, sample_id: int) -> str:
    if index is None or "sample_id" not in index.columns:
        return f"sample {sample_id}"
    row = index[index["sample_id"] == sample_id]
    if row.empty:
        return f"sample {sample_id}"
    r = row.iloc[0]
    parts = [f"#{sample_id}"]
    for key, fmt in (
        ("stack", "\n{}"),
        ("delay", " {}d"),
        ("reference", "\n{}"),
        ("secondary", "_{}"),
    ):
        if key in r and pd.notna(r[key]):
            parts.append(fmt.format(r[key]))
    return "".join(parts)


def figure3(
    eval_path: str,
    predictions: dict[str, str],
    metrics_paths: dict[str, str],
    out_png: str,
    index_path: str | None = None,
    n_samples: int = 4,
) -> None:
    """Phase, coherence, annotation and each model's prediction (border in red) per sample."""
    plt = _plt()
    store = read_store(eval_path)
    index = pd.read_csv(index_path) if index_path and os.path.exists(index_path) else None
    preds = {m: read_predictions(p) for m, p in predictions.items()}
    thr = {m: read_metrics(p)["paper"]["threshold"] for m, p in metrics_paths.items()}
    rows = pick_samples(store, n_samples)
    if rows.size == 0:
        raise IsslideError(f"{eval_path}: no evaluation sample with motion to show")
    ncol = 3 + len(preds)
    fig, axes = plt.subplots(len(rows), ncol, figsize=(2.2 * ncol, 2.3 * len(rows)), squeeze=False)
    for r, i in enumerate(rows):
        valid = store["valid"][i] > 0
        truth = (store["label"][i] > 0) & valid
        phase = np.where(valid, store["phase"][i], np.nan)
        coh = np.where(valid, store["coherence"][i], np.nan)
        panels = [
            ("phase", phase, dict(cmap="twilight", vmin=-np.pi, vmax=np.pi)),
            ("coherence", coh, dict(cmap="gray", vmin=0, vmax=1)),
            ("annotation", np.where(valid, truth, np.nan), dict(cmap="gray", vmin=0, vmax=1)),
        ]
        for m, pr in preds.items():
            pos = np.flatnonzero(pr["sample_id"] == store["sample_id"][i])
            if pos.size == 0:  # a multi-temporal model with temporal.missing: drop
                panels.append((m, np.full(valid.shape, np.nan), dict(cmap="gray", vmin=0, vmax=1)))
                continue
            p = np.where(valid, pr["probabilities"][pos[0]], np.nan)
            panels.append((m, p, dict(cmap="gray", vmin=0, vmax=1)))
        for c, (title, img, kw) in enumerate(panels):
            ax = axes[r, c]
            cmap = plt.get_cmap(kw.pop("cmap")).with_extremes(bad=INVALID_COLOUR)
            ax.imshow(img, interpolation="nearest", cmap=cmap, **kw)
            if c >= 3:
                pred = (np.nan_to_num(img, nan=-1.0) >= thr[title]) & valid
                ax.images[-1].remove()
                ax.imshow(np.where(valid, pred, np.nan), cmap=cmap, vmin=0, vmax=1)
                if pred.any() and not pred.all():
                    ax.contour(pred.astype(float), levels=[0.5], colors="red", linewidths=0.9)
                ax.contour(
                    truth.astype(float),
                    levels=[0.5],
                    colors="cyan",
                    linewidths=0.6,
                    linestyles="dashed",
                )
                title = f"{title} (t={thr[title]:.2f})"
            if r == 0:
                ax.set_title(title, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(_describe(index, int(store["sample_id"][i])), fontsize=7)
    fig.suptitle(
        "Predictions at the paper-convention threshold t chosen on the validation split (white); "
        "red: predicted border; "
        "cyan dashed: annotation border; orange: invalid pixels",
        fontsize=8,
    )
    _save(fig, out_png)
    plt.close(fig)


def read_history(path: str) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except Exception as exc:
        raise IsslideError(f"{path}: unreadable training history ({exc}); rerun training") from None


def training_curves(histories: dict[str, str], out_png: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for k, (m, path) in enumerate(histories.items()):
        h = read_history(path)
        color = f"C{k % 10}"
        ax.plot(h["epoch"], h["train_loss"], "-", color=color, label=f"{m} train")
        if "val_loss" in h and h["val_loss"].notna().any():
            ax.plot(h["epoch"], h["val_loss"], ":", color=color, label=f"{m} validation")
        if "eval_loss" in h and h["eval_loss"].notna().any():
            ax.plot(h["epoch"], h["eval_loss"], "--", color=color, label=f"{m} evaluation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("binary cross-entropy (valid pixels)")
    ax.set_title("Training curves")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    _save(fig, out_png)
    plt.close(fig)


def pr_curves(predictions: dict[str, str], metrics_paths: dict[str, str], out_png: str) -> None:
    """Pooled-pixel precision-recall curve per model; dots: the two conventions' operating points."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for k, (m, path) in enumerate(predictions.items()):
        pr = read_predictions(path)
        sel = pr["selected"]
        valid = pr["valid"][sel] > 0
        p = pr["probabilities"][sel][valid]
        y = pr["labels"][sel][valid] > 0
        _, prec, rec = M.pooled_pr(p, y)
        step = max(1, prec.size // 4000)
        color = f"C{k % 10}"
        ax.plot(
            np.r_[0.0, rec[::step], rec[-1:]],
            np.r_[1.0, prec[::step], prec[-1:]],
            color=color,
            label=m,
        )
        met = read_metrics(metrics_paths[m])
        ax.plot(met["pooled"]["recall"], met["pooled"]["precision"], "o", color=color, ms=5)
        ax.plot(
            met["paper"]["recall"], met["paper"]["precision"], "s", color=color, ms=5, mfc="none"
        )
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(
        "Precision-recall (pooled pixels); o pooled, \u25a1 paper operating point", fontsize=9
    )
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    _save(fig, out_png)
    plt.close(fig)
