"""Segmentation metrics of the ISSLIDE paper, in two conventions, with explicit empty-mask rules.

Inputs are probabilities ``p`` (N, H, W), binary truth ``y`` and a ``valid`` mask; invalid pixels
(layover, shadow, nodata) are ignored by every metric. A pixel is predicted positive when
``p >= t`` (compared in float64 everywhere, so a threshold gives the same masks in every metric).

Conventions (see docs/training.md):

* ``paper``: per image i, precision P_i = TP/(TP+FP) and recall R_i = TP/(TP+FN); P and R are
  averaged over images and F1 = 2 P R / (P + R) is taken from the averages; Dice_i =
  2TP/(2TP+FP+FN) and IoU_i = TP/(TP+FP+FN) are averaged over images; HD_i is a Hausdorff
  distance in pixels (see below), averaged over images. The threshold is the candidate that maximises this F1;
  candidates are ``n_thresholds`` evenly spaced quantiles of the valid probabilities.
* ``pooled``: TP, FP, FN summed over all valid pixels of all images; the threshold maximises the
  pooled F1 over every distinct probability (exactly as scikit-learn's precision_recall_curve);
  Dice (equal to F1 here) and IoU from the pooled counts; HD = the largest per-image HD (the
  Hausdorff distance of the evaluation set seen as a mosaic of separate patches).

Hausdorff distance (``hd``, config ``evaluation.hausdorff``), in pixels; a border pixel is a
mask pixel with a 4-neighbour outside the mask (the patch edge counts as outside):

* ``border_to_mask`` (default): the largest distance from a border pixel of either mask to the
  nearest pixel of the *other mask* (0 for a border pixel inside the other mask). This is what
  the ISSLIDE authors' code computes through miseval's ``calc_AverageHausdorffDistance`` (which,
  despite its name, is a maximum): the figure comparable with the paper's Table I.
* ``border_to_border``: the classical Hausdorff distance between the two masks' border pixel
  sets (largest distance from a border pixel of one mask to the nearest border pixel of the
  other); never smaller than ``border_to_mask``.

AUC is the ROC AUC over all valid evaluation pixels (ties counted half, as roc_auc_score).

Threshold transfer: :func:`evaluate_arrays` with ``thresholds`` applies thresholds chosen on
another set (the validation split) unchanged and reports the F1-maximising ones beside them as
``optimistic``. :func:`binary_scores` scores a binary mask (the ceiling: the simulator's truth
against the annotations); :func:`false_alarms` gives flagged fractions of background and decoy
pixels.

Empty masks (no NaN anywhere): a ratio 0/0 is 1 when the prediction and the truth are both empty
(perfect agreement on "nothing here") and 0 otherwise. So with both masks empty P = R = Dice =
IoU = 1 and HD = 0; with exactly one mask empty P = R = Dice = IoU = 0 and HD = the patch
diagonal sqrt((H-1)^2 + (W-1)^2), the largest distance possible in the patch. An F1 with
P + R = 0 is 0. AUC needs both classes among the valid pixels; otherwise it is ``None`` (JSON
null) and the evaluation step refuses such a set before computing anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

_CROSS = ndimage.generate_binary_structure(2, 1)


# ----------------------------------------------------------------------------- helpers


def ratio(num, den, both_empty) -> np.ndarray:
    """num/den where den > 0; 1 where den == 0 and ``both_empty``; 0 otherwise."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.array(np.broadcast_to(np.where(both_empty, 1.0, 0.0), den.shape), dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def f1_from(precision, recall) -> np.ndarray:
    precision = np.asarray(precision, dtype=np.float64)
    recall = np.asarray(recall, dtype=np.float64)
    s = precision + recall
    out = np.zeros_like(s)
    np.divide(2 * precision * recall, s, out=out, where=s > 0)
    return out


def border(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it (the patch edge counts as outside)."""
    mask = np.asarray(mask, dtype=bool)
    return mask & ~ndimage.binary_erosion(mask, structure=_CROSS, border_value=0)


def diagonal(shape) -> float:
    h, w = shape[-2:]
    return float(np.hypot(h - 1, w - 1))


def hausdorff(pred: np.ndarray, truth: np.ndarray) -> float:
    """``border_to_border``: largest Euclidean distance (pixels) between the borders of two
    masks, empty rules above."""
    a, b = border(pred), border(truth)
    has_a, has_b = a.any(), b.any()
    if not has_a and not has_b:
        return 0.0
    if has_a != has_b:
        return diagonal(a.shape)
    to_b = ndimage.distance_transform_edt(~b)
    to_a = ndimage.distance_transform_edt(~a)
    return float(max(to_b[a].max(), to_a[b].max()))


def hausdorff_to_mask(pred: np.ndarray, truth: np.ndarray) -> float:
    """``border_to_mask`` (the authors' miseval definition): largest Euclidean distance (pixels)
    from a border pixel of one mask to the nearest pixel of the other mask, empty rules above."""
    pred, truth = np.asarray(pred, dtype=bool), np.asarray(truth, dtype=bool)
    has_a, has_b = pred.any(), truth.any()
    if not has_a and not has_b:
        return 0.0
    if has_a != has_b:
        return diagonal(pred.shape)
    to_truth = ndimage.distance_transform_edt(~truth)
    to_pred = ndimage.distance_transform_edt(~pred)
    return float(max(to_truth[border(pred)].max(), to_pred[border(truth)].max()))


# name -> (function, description); the schema's evaluation.hausdorff lists the same names
HAUSDORFF = {
    "border_to_mask": (hausdorff_to_mask, "border of each mask to the other mask (authors' code)"),
    "border_to_border": (hausdorff, "border to border (classical Hausdorff distance)"),
}
HAUSDORFF_DEFAULT = "border_to_mask"


def hausdorff_function(name: str):
    try:
        return HAUSDORFF[name][0]
    except KeyError:
        raise ValueError(
            f"evaluation.hausdorff: unknown definition {name!r} (one of {', '.join(HAUSDORFF)})"
        ) from None


# ----------------------------------------------------------------------------- pooled pixels


def pooled_curve(probs: np.ndarray, labels: np.ndarray):
    """Distinct thresholds (descending) with cumulative TP and FP counts at ``p >= threshold``."""
    p = np.asarray(probs, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=bool).ravel()
    order = np.argsort(p, kind="mergesort")[::-1]
    p, y = p[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(p)), p.size - 1] if p.size else np.array([], dtype=int)
    tps = np.cumsum(y)[last]
    fps = (last + 1) - tps
    return p[last], tps.astype(np.int64), fps.astype(np.int64)


def roc_auc(probs: np.ndarray, labels: np.ndarray) -> float | None:
    """ROC AUC (trapezoids over the exact ROC curve); None when one class is absent."""
    _, tps, fps = pooled_curve(probs, labels)
    if tps.size == 0 or tps[-1] == 0 or fps[-1] == 0:
        return None
    tpr = np.r_[0.0, tps / tps[-1]]
    fpr = np.r_[0.0, fps / fps[-1]]
    return float(np.trapezoid(tpr, fpr))


def pooled_pr(probs: np.ndarray, labels: np.ndarray):
    """(thresholds, precision, recall) over every distinct probability, descending thresholds."""
    thr, tps, fps = pooled_curve(probs, labels)
    npos = int(np.asarray(labels, dtype=bool).sum())
    pred = tps + fps
    fns = npos - tps
    precision = ratio(tps, pred, (pred == 0) & (npos == 0))
    recall = ratio(tps, tps + fns, (pred == 0) & (npos == 0))
    return thr, precision, recall


# ----------------------------------------------------------------------------- per image


def candidate_thresholds(probs_valid: np.ndarray, n: int) -> np.ndarray:
    """``n`` evenly spaced quantiles of the valid probabilities (distinct, ascending)."""
    q = np.quantile(np.asarray(probs_valid, dtype=np.float64), np.linspace(0.0, 1.0, n))
    return np.unique(q)


def per_image_counts(probs, labels, valid, thresholds, chunk: int = 64):
    """TP, FP, FN of each image (rows) at each threshold (columns), ``p >= t`` positive."""
    probs = np.asarray(probs)
    n = probs.shape[0]
    t = np.asarray(thresholds, dtype=np.float64)
    nt = t.size
    tp = np.zeros((n, nt), dtype=np.int64)
    fp = np.zeros((n, nt), dtype=np.int64)
    npos = np.zeros(n, dtype=np.int64)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        p = np.asarray(probs[s:e], dtype=np.float64).reshape(e - s, -1)
        y = np.asarray(labels[s:e], dtype=bool).reshape(e - s, -1)
        v = np.asarray(valid[s:e], dtype=bool).reshape(e - s, -1)
        # k = number of thresholds <= p: the pixel is positive at threshold j iff j < k.
        k = np.searchsorted(t, p, side="right")
        rows = np.broadcast_to(np.arange(e - s)[:, None], k.shape)
        flat = rows * (nt + 1) + k
        for out, sel in ((tp, y & v), (fp, ~y & v)):
            hist = np.bincount(flat[sel], minlength=(e - s) * (nt + 1)).reshape(e - s, nt + 1)
            # positive at j <=> k > j: reverse cumulative sum over k = j+1 .. nt
            out[s:e] = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1][:, 1:]
        npos[s:e] = (y & v).sum(axis=1)
    fn = npos[:, None] - tp
    return tp, fp, fn


# Scores from a confusion count (tp, fp, fn, both_empty -> score): per image (the paper
# convention, then averaged over images) or over the pooled counts. One entry per score.
COUNT_SCORES = {
    "precision": lambda tp, fp, fn, e: ratio(tp, tp + fp, e),
    "recall": lambda tp, fp, fn, e: ratio(tp, tp + fn, e),
    "dice": lambda tp, fp, fn, e: ratio(2 * tp, 2 * tp + fp + fn, e),
    "iou": lambda tp, fp, fn, e: ratio(tp, tp + fp + fn, e),
}


@dataclass(frozen=True)
class Metric:
    """A column of Table I: ``key`` in each convention block of metrics.json (``None`` for
    AUC, a top-level key), how each convention computes it, and whether higher is better."""

    column: str
    key: str
    paper: str
    pooled: str
    higher_is_better: bool = True


# The metrics of Table I, in its order: evaluate's table, the reference-table check and the
# docs' metric table are derived from this list (tests/test_metrics.py checks the docs).
METRIC_TABLE = (
    Metric("F1", "f1", "2PR/(P+R) from P and R averaged over images", "from pooled P and R"),
    Metric("AUC", "auc", "ROC AUC over all valid pixels", "(same)"),
    Metric("Dice", "dice", "per-image Dice averaged", "pooled counts (equals F1)"),
    Metric("IoU", "iou", "per-image IoU averaged", "pooled counts"),
    Metric("HD", "hd", "per-image Hausdorff distance averaged (px)", "largest per-image HD",
           higher_is_better=False),
)  # fmt: skip


def metric_table_markdown() -> str:
    """The docs' table of METRIC_TABLE (docs/training.md holds it between markers)."""
    rows = ["| Table I column | metrics.json key | paper convention | pooled | better |",
            "|---|---|---|---|---|"]  # fmt: skip
    for m in METRIC_TABLE:
        better = "higher" if m.higher_is_better else "lower"
        rows.append(f"| {m.column} | `{m.key}` | {m.paper} | {m.pooled} | {better} |")
    return "\n".join(rows)


def image_scores(tp, fp, fn) -> dict[str, np.ndarray]:
    """Every COUNT_SCORES score from counts (any matching shapes)."""
    tp, fp, fn = (np.asarray(a, dtype=np.int64) for a in (tp, fp, fn))
    both_empty = (tp + fp == 0) & (tp + fn == 0)
    return {name: score(tp, fp, fn, both_empty) for name, score in COUNT_SCORES.items()}


def per_image_hausdorff(
    probs, labels, valid, threshold: float, hd: str = HAUSDORFF_DEFAULT
) -> np.ndarray:
    distance = hausdorff_function(hd)
    probs = np.asarray(probs)
    out = np.empty(probs.shape[0], dtype=np.float64)
    for i in range(probs.shape[0]):
        v = np.asarray(valid[i], dtype=bool)
        pred = (np.asarray(probs[i], np.float64) >= threshold) & v
        truth = np.asarray(labels[i], dtype=bool) & v
        out[i] = distance(pred, truth)
    return out


# ----------------------------------------------------------------------------- both conventions


def _ordered(threshold: float, sc: dict) -> dict:
    """threshold, precision, recall, F1 (from P and R), then the other count scores."""
    p, r = sc["precision"], sc["recall"]
    rest = {k: v for k, v in sc.items() if k not in ("precision", "recall")}
    return {"threshold": float(threshold), "precision": p, "recall": r,
            "f1": float(f1_from(p, r)), **rest}  # fmt: skip


def paper_at(probs, labels, valid, threshold: float, hd: str = HAUSDORFF_DEFAULT) -> dict:
    """The paper convention's scores at a given threshold (labels already masked by valid)."""
    tp, fp, fn = per_image_counts(probs, labels, valid, np.array([threshold]))
    sc = {k: float(v.mean()) for k, v in image_scores(tp[:, 0], fp[:, 0], fn[:, 0]).items()}
    hd = per_image_hausdorff(probs, labels, valid, threshold, hd)
    return {**_ordered(threshold, sc), "hd": float(hd.mean()) if hd.size else 0.0}


def pooled_at(probs, labels, valid, threshold: float, hd: str = HAUSDORFF_DEFAULT) -> dict:
    """The pooled convention's scores at a given threshold (labels already masked by valid)."""
    pv, yv = probs[valid].astype(np.float64), labels[valid]
    ptp = int(((pv >= threshold) & yv).sum())
    pfp = int(((pv >= threshold) & ~yv).sum())
    pfn = int(yv.sum()) - ptp
    sc = {k: float(v) for k, v in image_scores(ptp, pfp, pfn).items()}
    hd = per_image_hausdorff(probs, labels, valid, threshold, hd)
    return {
        **_ordered(threshold, sc),
        "hd": float(hd.max()) if hd.size else 0.0,
        "tp": ptp,
        "fp": pfp,
        "fn": pfn,
    }


def _prepare(probs, labels, valid):
    probs = np.asarray(probs, dtype=np.float32)
    valid = np.asarray(valid).astype(bool)
    labels = np.asarray(labels).astype(bool) & valid
    return probs, labels, valid


def evaluate_arrays(
    probs, labels, valid, n_thresholds: int = 1001, thresholds=None, hd: str = HAUSDORFF_DEFAULT
) -> dict:
    """All metrics of both conventions (JSON-ready dict).

    ``thresholds`` None: each convention at its F1-maximising threshold on these very arrays
    (the paper's convention, optimistic). ``thresholds`` {"paper": t, "pooled": t} (chosen
    elsewhere, e.g. on a validation split): ``paper`` and ``pooled`` at those thresholds,
    unchanged, and the F1-maximising ones under ``optimistic``.
    """
    probs, labels, valid = _prepare(probs, labels, valid)
    pv, yv = probs[valid], labels[valid]
    auc = roc_auc(pv, yv)

    # paper: per-image P and R averaged, F1 from the averages
    thr = candidate_thresholds(pv, n_thresholds) if pv.size else np.array([0.5])
    tp, fp, fn = per_image_counts(probs, labels, valid, thr)
    sc = image_scores(tp, fp, fn)
    mp, mr = sc["precision"].mean(axis=0), sc["recall"].mean(axis=0)
    f1 = f1_from(mp, mr)
    j = int(np.argmax(f1))
    paper = {**paper_at(probs, labels, valid, float(thr[j]), hd), "n_thresholds": int(thr.size)}

    # pooled: exact over every distinct probability
    pthr, prec, rec = pooled_pr(pv, yv)
    pf1 = f1_from(prec, rec)
    k = int(np.argmax(pf1)) if pf1.size else 0
    pooled = pooled_at(probs, labels, valid, float(pthr[k]) if pthr.size else 0.5, hd)
    out = {
        "auc": auc,
        "n_images": int(probs.shape[0]),
        "n_valid_pixels": int(valid.sum()),
        "n_positive_pixels": int(yv.sum()),
    }
    if thresholds is None:
        return {**out, "paper": paper, "pooled": pooled}
    return {
        **out,
        "paper": paper_at(probs, labels, valid, float(thresholds["paper"]), hd),
        "pooled": pooled_at(probs, labels, valid, float(thresholds["pooled"]), hd),
        "optimistic": {"paper": paper, "pooled": pooled},
    }


def binary_scores(pred, labels, valid, hd: str = HAUSDORFF_DEFAULT) -> dict:
    """Both conventions for a binary prediction (e.g. the truth scored against the annotations)."""
    pred, labels, valid = _prepare(np.asarray(pred, bool), labels, valid)
    return {
        "auc": roc_auc(pred[valid], labels[valid]),
        "n_images": int(pred.shape[0]),
        "n_valid_pixels": int(valid.sum()),
        "n_positive_pixels": int(labels[valid].sum()),
        "paper": paper_at(pred, labels, valid, 0.5, hd),
        "pooled": pooled_at(pred, labels, valid, 0.5, hd),
    }


def false_alarms(probs, valid, negative, decoy, kinds: dict, threshold: float) -> dict:
    """Fraction of negative pixels flagged (``p >= threshold``) on background and on each decoy kind.

    ``negative``: valid pixels that are not motion (neither annotated nor truly moving);
    background = negative pixels outside every decoy; kind k = negative pixels with decoy code k;
    ``any_decoy`` = negative pixels on any decoy. A fraction over no pixel is None.
    """
    probs = np.asarray(probs)
    neg = np.asarray(negative, bool) & np.asarray(valid, bool)
    flagged = probs.astype(np.float64) >= threshold
    decoy = np.zeros(probs.shape, np.uint8) if decoy is None else np.asarray(decoy)

    def rate(mask):
        n = int(mask.sum())
        f = int((flagged & mask).sum())
        images = int(mask.reshape(mask.shape[0], -1).any(axis=1).sum()) if mask.ndim > 1 else 0
        return {"pixels": n, "flagged": f, "fraction": f / n if n else None, "images": images}

    return {
        "threshold": float(threshold),
        "background": rate(neg & (decoy == 0)),
        "any_decoy": rate(neg & (decoy > 0)),
        "decoys": {name: rate(neg & (decoy == code)) for code, name in sorted(kinds.items())},
    }
