"""Evaluation of trained detectors: predictions, metrics, Table I and figures.

* :func:`evaluate_model` writes ``predictions.npz`` (``probabilities`` float32 (N, H, W),
  ``labels`` uint8, ``valid`` uint8, ``sample_id`` int64, ``selected`` bool: the samples the
  metrics use) and ``metrics.json`` (both conventions of :mod:`isslide.metrics`). Anyone can
  recompute the metrics from the npz with ``isslide.metrics.evaluate_arrays``.
* :func:`write_table` writes Table I (``table.csv`` and ``table.md``): models x F1, AUC, Dice,
  IoU, HD in the paper's convention, then the pooled-pixel convention, then, when
  ``evaluation.reference_table`` names a CSV (columns model, F1, AUC, Dice, IoU, HD), the
  published values as a reference block.
* :func:`figure3`, :func:`training_curves`, :func:`pr_curves` draw the PNG figures (Agg).
"""

from __future__ import annotations

import io
import json
import logging
import math
import os

import numpy as np
import pandas as pd
import torch

from . import metrics as M
from .dataset.store import read_store
from .errors import IsslideError
from .train import (
    StoreTensors,
    atomic_write_bytes,
    data_on_device,
    load_trained,
    motion_mask,
    predict_logits,
    resolve_device,
    select_samples,
)

log = logging.getLogger("isslide.evaluate")

EVAL_DEFAULTS = {
    "batch_size": 16,
    "n_thresholds": 1001,
    "motion_only": True,
    "figure_samples": 4,
    "reference_table": None,
}

EMPTY_RULES = (
    "ratios 0/0 are 1 when prediction and truth are both empty, else 0; both empty: P=R=Dice="
    "IoU=1, HD=0; one empty: P=R=Dice=IoU=0, HD=patch diagonal; F1 with P+R=0 is 0"
)


def evaluation_config(cfg: dict | None) -> dict:
    return {**EVAL_DEFAULTS, **(cfg or {})}


def atomic_savez(path: str, **arrays) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def atomic_text(path: str, text: str) -> None:
    atomic_write_bytes(path, text.encode())


@torch.no_grad()
def predict_store(model, store: dict, device: torch.device, batch_size: int, amp: bool = False):
    """Probabilities (N, H, W) float32 for every sample of ``store``, no phase offset."""
    n = len(store["sample_id"])
    idx = np.arange(n)
    on_dev = data_on_device("auto", device, StoreTensors.nbytes(store, n))
    data = StoreTensors(store, idx, device, on_dev)
    model = model.to(device)
    out = np.empty((n, *data.shape), dtype=np.float32)
    for sl, logits, _, _ in predict_logits(model, data, batch_size, amp):
        out[sl] = torch.sigmoid(logits)[:, 0].cpu().numpy()
    return out


def evaluate_model(
    model_path: str,
    eval_path: str,
    predictions_path: str,
    metrics_path: str,
    training_cfg: dict | None = None,
    eval_cfg: dict | None = None,
    threads: int | None = None,
) -> dict:
    training_cfg = training_cfg or {}
    ecfg = evaluation_config(eval_cfg)
    if threads:
        torch.set_num_threads(int(threads))
    store = read_store(eval_path, mmap=True)
    selected_idx = select_samples(store, ecfg["motion_only"], eval_path)
    model, info = load_trained(model_path, training_cfg.get("weights"))
    device = resolve_device(training_cfg.get("device", "auto"))
    amp = bool(training_cfg.get("amp")) and device.type == "cuda"
    probs = predict_store(model, store, device, int(ecfg["batch_size"]), amp)
    selected = np.zeros(len(probs), dtype=bool)
    selected[selected_idx] = True
    labels = (store["label"] > 0).astype(np.uint8)
    valid = (store["valid"] > 0).astype(np.uint8)
    result = M.evaluate_arrays(
        probs[selected], labels[selected], valid[selected], int(ecfg["n_thresholds"])
    )
    result = {
        "model": info["model_name"],
        "epochs": info["epochs"],
        "n_parameters": info["n_parameters"],
        "motion_only": bool(ecfg["motion_only"]),
        **result,
        "empty_masks": EMPTY_RULES,
    }
    atomic_savez(
        predictions_path,
        probabilities=probs,
        labels=labels,
        valid=valid,
        sample_id=store["sample_id"].astype(np.int64),
        selected=selected,
    )
    atomic_text(metrics_path, json.dumps(result, indent=2) + "\n")
    log.info(
        "%s: AUC %s, paper F1 %.4f, pooled F1 %.4f",
        result["model"],
        result["auc"],
        result["paper"]["f1"],
        result["pooled"]["f1"],
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

METRICS = ["F1", "AUC", "Dice", "IoU", "HD"]


def table_frame(metrics_paths: dict[str, str], reference: str | None = None) -> pd.DataFrame:
    rows = []
    for name, path in metrics_paths.items():
        m = read_metrics(path)
        p, q = m["paper"], m["pooled"]
        rows.append(
            {
                "model": name,
                "F1": p["f1"],
                "AUC": m["auc"],
                "Dice": p["dice"],
                "IoU": p["iou"],
                "HD": p["hd"],
                "threshold": p["threshold"],
                "pooled_F1": q["f1"],
                "pooled_Dice": q["dice"],
                "pooled_IoU": q["iou"],
                "pooled_HD": q["hd"],
                "pooled_threshold": q["threshold"],
            }
        )
    df = pd.DataFrame(rows)
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
    return f"{v:.{digits}f}"


def write_table(
    metrics_paths: dict[str, str], csv_path: str, md_path: str, reference: str | None = None
) -> pd.DataFrame:
    df = table_frame(metrics_paths, reference)
    atomic_text(csv_path, df.to_csv(index=False, float_format="%.6g"))
    head = ["Model", "F1", "AUC", "Dice", "IoU", "HD (px)", "| pooled F1", "Dice", "IoU", "HD (px)"]
    has_ref = any(c.startswith("published_") for c in df.columns)
    if has_ref:
        head += ["| published F1", "AUC", "Dice", "IoU", "HD"]
    lines = [
        "# Table I: detectors on this run's evaluation set",
        "",
        "Paper convention: precision/recall per image averaged, F1 from the averages, Dice and",
        "IoU averaged over images, HD = largest border-to-border distance in pixels averaged over",
        "images, at the threshold maximising that F1. Pooled: counts over all valid pixels, at the",
        "threshold maximising the pooled F1; pooled HD is the largest per-image HD. AUC: ROC AUC",
        "over all valid evaluation pixels. Empty masks: " + EMPTY_RULES + ".",
        "",
        "| " + " | ".join(h.lstrip("| ") for h in head) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|",
    ]
    for r in df.to_dict("records"):
        cells = [r["model"], _fmt(r["F1"]), _fmt(r["AUC"]), _fmt(r["Dice"]), _fmt(r["IoU"])]
        cells += [_fmt(r["HD"], 2), _fmt(r["pooled_F1"]), _fmt(r["pooled_Dice"])]
        cells += [_fmt(r["pooled_IoU"]), _fmt(r["pooled_HD"], 2)]
        if has_ref:
            cells += [_fmt(r.get(f"published_{c}")) for c in METRICS]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if has_ref:
        lines.append(f"Published values from {reference}.")
    else:
        lines.append(
            "Published values: not shown (set evaluation.reference_table to a CSV with columns "
            "model, F1, AUC, Dice, IoU, HD to add them)."
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
            if pos.size == 0:
                raise IsslideError(f"{predictions[m]}: sample {store['sample_id'][i]} missing")
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
        "Predictions at the paper-convention threshold t (white); red: predicted border; "
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
