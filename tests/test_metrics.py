"""Metrics against independent implementations (scikit-learn, scipy, scikit-image)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.spatial.distance import directed_hausdorff
from skimage.metrics import hausdorff_distance
from sklearn.metrics import precision_recall_curve, roc_auc_score

from isslide import metrics as M


def random_case(seed, n=6, size=24, ties=True):
    rng = np.random.default_rng(seed)
    y = rng.random((n, size, size)) < 0.25
    p = np.clip(0.35 * y + 0.65 * rng.random(y.shape), 0, 1)
    if ties:
        p = p.round(2)
    v = rng.random(y.shape) > 0.1
    return p.astype(np.float32), y, v


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_matches_sklearn(seed):
    p, y, v = random_case(seed)
    assert M.roc_auc(p[v], y[v]) == pytest.approx(roc_auc_score(y[v], p[v]), abs=1e-12)
    p2, y2, _ = random_case(seed + 10, ties=False)
    assert M.roc_auc(p2, y2) == pytest.approx(roc_auc_score(y2.ravel(), p2.ravel()), abs=1e-12)


def test_auc_undefined_with_one_class_is_none_not_nan():
    assert M.roc_auc(np.array([0.1, 0.9]), np.array([False, False])) is None
    assert M.roc_auc(np.array([0.1, 0.9]), np.array([True, True])) is None


@pytest.mark.parametrize("seed", [0, 3])
def test_pooled_pr_curve_matches_sklearn(seed):
    p, y, v = random_case(seed)
    thr, prec, rec = M.pooled_pr(p[v], y[v])
    sp, sr, st = precision_recall_curve(y[v], p[v])
    # sklearn: ascending thresholds, plus a final (precision 1, recall 0) point
    np.testing.assert_allclose(thr[::-1], st)
    np.testing.assert_allclose(prec[::-1], sp[:-1])
    np.testing.assert_allclose(rec[::-1], sr[:-1])
    f_sk = np.max(2 * sp * sr / np.where(sp + sr > 0, sp + sr, 1))
    res = M.evaluate_arrays(p, y, v)
    assert res["pooled"]["f1"] == pytest.approx(f_sk, abs=1e-12)
    assert res["pooled"]["dice"] == pytest.approx(res["pooled"]["f1"], abs=1e-12)


def test_per_image_counts_match_brute_force():
    p, y, v = random_case(4, n=4, size=12)
    thr = np.array([0.0, 0.2, 0.5, 0.51, 0.9, 1.1])
    tp, fp, fn = M.per_image_counts(p, y, v, thr, chunk=3)
    for i in range(len(p)):
        for j, t in enumerate(thr):
            pred = (p[i] >= t) & v[i]
            truth = y[i] & v[i]
            assert tp[i, j] == (pred & truth).sum()
            assert fp[i, j] == (pred & ~truth).sum()
            assert fn[i, j] == (~pred & truth).sum()


def test_paper_convention_by_brute_force():
    p, y, v = random_case(5, n=5, size=16)
    res = M.evaluate_arrays(p, y, v, n_thresholds=51, hd="border_to_border")
    cands = M.candidate_thresholds(p[v], 51)

    def paper_at(t):
        ps, rs, ds, ious, hds = [], [], [], [], []
        for i in range(len(p)):
            pred, truth = (p[i] >= t) & v[i], y[i] & v[i]
            tp, fp, fn = (pred & truth).sum(), (pred & ~truth).sum(), (~pred & truth).sum()
            ps.append(tp / (tp + fp) if tp + fp else float(tp + fn == 0))
            rs.append(tp / (tp + fn) if tp + fn else float(tp + fp == 0))
            ds.append(2 * tp / (2 * tp + fp + fn))
            ious.append(tp / (tp + fp + fn))
            hds.append(hausdorff_distance(M.border(pred), M.border(truth)))
        P, R = np.mean(ps), np.mean(rs)
        return 2 * P * R / (P + R), P, R, np.mean(ds), np.mean(ious), np.mean(hds)

    best = max(cands, key=lambda t: paper_at(t)[0])
    f1, P, R, dice, iou, hd = paper_at(res["paper"]["threshold"])
    assert res["paper"]["threshold"] == pytest.approx(best)
    assert res["paper"]["f1"] == pytest.approx(f1)
    assert res["paper"]["precision"] == pytest.approx(P)
    assert res["paper"]["recall"] == pytest.approx(R)
    assert res["paper"]["dice"] == pytest.approx(dice)
    assert res["paper"]["iou"] == pytest.approx(iou)
    assert res["paper"]["hd"] == pytest.approx(hd)


def square(shape, r0, c0, side):
    m = np.zeros(shape, bool)
    m[r0 : r0 + side, c0 : c0 + side] = True
    return m


def test_hausdorff_hand_made():
    a = square((20, 20), 2, 2, 5)
    b = square((20, 20), 2, 5, 5)  # shifted 3 columns
    assert M.hausdorff(a, b) == pytest.approx(3.0)
    assert M.hausdorff(a, a) == 0.0
    # a one-pixel mask is its own border; distance to the far corner of a square's border
    c = np.zeros((20, 20), bool)
    c[0, 0] = True
    assert M.hausdorff(c, square((20, 20), 10, 10, 4)) == pytest.approx(math.hypot(13, 13))
    # the border ignores the interior: a filled square and its outline agree
    assert M.hausdorff(square((20, 20), 3, 3, 8), M.border(square((20, 20), 3, 3, 8))) == 0.0


def test_hausdorff_to_mask_hand_computed():
    """The authors' (miseval) definition, border of each mask to the other *mask*, by hand."""
    # two 3x3 squares, one shifted 2 columns: the far columns are 2 from the other mask
    a, b = square((7, 7), 1, 1, 3), square((7, 7), 1, 3, 3)
    assert M.hausdorff_to_mask(a, b) == pytest.approx(2.0)
    assert M.hausdorff(a, b) == pytest.approx(2.0)
    # a solid 11x11 square against the same square with a one-pixel hole in its centre: every
    # border pixel lies inside the other mask (0), while the hole's rim is 4 pixels from the
    # outer border (border to border: 4)
    solid = square((11, 11), 0, 0, 11)
    holed = solid.copy()
    holed[5, 5] = False
    assert M.hausdorff_to_mask(holed, solid) == 0.0
    assert M.hausdorff(holed, solid) == pytest.approx(4.0)
    # a one-pixel truth and a prediction with a second pixel 5 columns away: 5 from that pixel
    # to the truth, 0 from the truth (inside the prediction)
    t = np.zeros((10, 10), bool)
    t[3, 3] = True
    q = t.copy()
    q[3, 8] = True
    assert M.hausdorff_to_mask(q, t) == pytest.approx(5.0)
    # a 5x5 truth around a one-pixel prediction: the truth's corners are sqrt(8) from it
    big, dot = square((9, 9), 0, 0, 5), np.zeros((9, 9), bool)
    dot[2, 2] = True
    assert M.hausdorff_to_mask(dot, big) == pytest.approx(math.sqrt(8))
    # empty rules as the other definition: both empty 0, one empty the patch diagonal
    z = np.zeros((8, 8), bool)
    assert M.hausdorff_to_mask(z, z) == 0.0
    assert M.hausdorff_to_mask(z, square((8, 8), 2, 2, 3)) == pytest.approx(math.hypot(7, 7))
    assert M.hausdorff_to_mask(square((8, 8), 2, 2, 3), z) == pytest.approx(math.hypot(7, 7))


@pytest.mark.parametrize("seed", [3, 4])
def test_hausdorff_to_mask_matches_scipy_and_is_never_above_border_to_border(seed):
    rng = np.random.default_rng(seed)
    for _ in range(5):
        a, b = rng.random((24, 24)) > 0.7, rng.random((24, 24)) > 0.8
        pa, pb = np.argwhere(M.border(a)), np.argwhere(M.border(b))
        want = max(
            directed_hausdorff(pa, np.argwhere(b))[0], directed_hausdorff(pb, np.argwhere(a))[0]
        )
        assert M.hausdorff_to_mask(a, b) == pytest.approx(want)
        assert M.hausdorff_to_mask(a, b) <= M.hausdorff(a, b) + 1e-12


def test_hausdorff_definition_is_chosen_by_config_name():
    from isslide.config import load_schema

    schema = load_schema()["properties"]["evaluation"]["properties"]["hausdorff"]
    assert schema["default"] == M.HAUSDORFF_DEFAULT == "border_to_mask"
    assert schema["enum"] == list(M.HAUSDORFF)
    solid = square((11, 11), 0, 0, 11)
    holed = solid.copy()
    holed[5, 5] = False
    p, y, v = holed[None].astype(np.float32), solid[None], np.ones((1, 11, 11), bool)
    t = {"paper": 0.5, "pooled": 0.5}
    assert M.evaluate_arrays(p, y, v, thresholds=t)["paper"]["hd"] == 0.0
    res = M.evaluate_arrays(p, y, v, thresholds=t, hd="border_to_border")
    assert res["paper"]["hd"] == res["pooled"]["hd"] == pytest.approx(4.0)
    with pytest.raises(ValueError, match="evaluation.hausdorff"):
        M.evaluate_arrays(p, y, v, thresholds=t, hd="average")


@pytest.mark.parametrize("seed", range(5))
def test_hausdorff_matches_skimage_and_scipy(seed):
    rng = np.random.default_rng(seed)
    a = rng.random((30, 25)) < 0.1
    b = rng.random((30, 25)) < 0.05
    ba, bb = M.border(a), M.border(b)
    ours = M.hausdorff(a, b)
    assert ours == pytest.approx(hausdorff_distance(ba, bb))
    pa, pb = np.argwhere(ba), np.argwhere(bb)
    assert ours == pytest.approx(max(directed_hausdorff(pa, pb)[0], directed_hausdorff(pb, pa)[0]))


def test_border_is_four_connected_inner_boundary():
    m = square((9, 9), 2, 2, 5)
    b = M.border(m)
    assert b.sum() == 16 and not b[4, 4] and b[2, 2]
    edge = square((5, 5), 0, 0, 5)  # touching the patch edge: the edge counts as outside
    assert M.border(edge).sum() == 16


def test_empty_mask_rules():
    z = np.zeros((8, 8), bool)
    m = square((8, 8), 2, 2, 3)
    assert M.hausdorff(z, z) == 0.0
    assert M.hausdorff(z, m) == pytest.approx(math.hypot(7, 7))
    assert M.hausdorff(m, z) == pytest.approx(math.hypot(7, 7))
    s = M.image_scores(np.array([0, 0, 0]), np.array([0, 0, 4]), np.array([0, 5, 0]))
    # both empty; prediction empty; truth empty
    np.testing.assert_array_equal(s["precision"], [1, 0, 0])
    np.testing.assert_array_equal(s["recall"], [1, 0, 0])
    np.testing.assert_array_equal(s["dice"], [1, 0, 0])
    np.testing.assert_array_equal(s["iou"], [1, 0, 0])
    assert M.f1_from(0.0, 0.0) == 0.0


def _finite(obj):
    if isinstance(obj, dict):
        return all(_finite(v) for v in obj.values())
    if isinstance(obj, float):
        return math.isfinite(obj)
    return True


@pytest.mark.parametrize(
    "case",
    ["constant", "all_truth_empty_but_one", "no_valid_motion", "perfect"],
)
def test_no_nan_in_degenerate_cases(case):
    rng = np.random.default_rng(0)
    y = np.zeros((3, 10, 10), bool)
    y[0, 2:5, 2:5] = True
    v = np.ones_like(y)
    p = rng.random(y.shape).astype(np.float32)
    if case == "constant":
        p[:] = 0.5
    if case == "no_valid_motion":
        v[0] = False
    if case == "perfect":
        p = y.astype(np.float32)
    res = M.evaluate_arrays(p, y, v, n_thresholds=11)
    json.dumps(res, allow_nan=False)  # raises on NaN or infinity
    assert _finite(res)
    if case == "perfect":
        assert res["auc"] == 1.0
        assert res["pooled"]["f1"] == 1.0 and res["pooled"]["hd"] == 0.0
        assert res["paper"]["f1"] == 1.0 and res["paper"]["iou"] == 1.0
        assert res["paper"]["hd"] == 0.0
    if case == "no_valid_motion":
        assert res["auc"] is None


def test_invalid_pixels_do_not_count():
    p, y, v = random_case(7, n=3, size=16)
    a = M.evaluate_arrays(p, y, v, n_thresholds=21)
    p2 = p.copy()
    p2[~v] = 1.0 - p2[~v]
    y2 = y.copy()
    y2[~v] = ~y2[~v]
    b = M.evaluate_arrays(p2, y2, v, n_thresholds=21)
    assert a == b


# ----------------------------------------------------------------------------- threshold transfer


def two_level_case(low, high, n=4, size=12):
    """Motion pixels at probability ``high``, background at ``low`` except a ring at 0.5."""
    y = np.zeros((n, size, size), bool)
    y[:, 3:8, 3:8] = True
    p = np.full(y.shape, low, np.float32)
    p[y] = high
    p[:, 0, :] = 0.5  # a strip of background pixels that only a threshold <= 0.5 flags
    return p, y, np.ones_like(y)


def test_threshold_chosen_elsewhere_is_applied_unchanged():
    # validation: motion at 0.4, background at 0.1 and a strip at 0.5 -> the best threshold is
    # 0.4 (it flags the strip too, but misses nothing); evaluation: motion at 0.9 instead
    pv, yv, vv = two_level_case(0.1, 0.4)
    pe, ye, ve = two_level_case(0.1, 0.9)
    chosen = M.evaluate_arrays(pv, yv, vv, n_thresholds=101)
    t = {"paper": chosen["paper"]["threshold"], "pooled": chosen["pooled"]["threshold"]}
    assert t["pooled"] == pytest.approx(0.4)
    res = M.evaluate_arrays(pe, ye, ve, n_thresholds=101, thresholds=t)
    assert res["paper"]["threshold"] == t["paper"] and res["pooled"]["threshold"] == t["pooled"]
    # at 0.4 the 0.5 strip is flagged on the evaluation set: precision < 1; the evaluation
    # set's own optimum (threshold above 0.5) is perfect: the optimistic convention differs
    assert res["pooled"]["precision"] < 1.0 and res["pooled"]["recall"] == 1.0
    assert res["optimistic"]["pooled"]["threshold"] > 0.5
    assert res["optimistic"]["pooled"]["f1"] == 1.0 > res["pooled"]["f1"]
    assert res["optimistic"]["paper"]["f1"] == 1.0 > res["paper"]["f1"]
    tp, fp = 4 * 25, 4 * 12  # 4 images: 5x5 motion pixels, a 12-pixel strip
    assert (res["pooled"]["tp"], res["pooled"]["fp"], res["pooled"]["fn"]) == (tp, fp, 0)
    assert res["pooled"]["f1"] == pytest.approx(2 * tp / (2 * tp + fp))
    # without thresholds: the optimistic blocks are the main ones (the paper's convention)
    plain = M.evaluate_arrays(pe, ye, ve, n_thresholds=101)
    assert plain["paper"] == res["optimistic"]["paper"] and "optimistic" not in plain


def test_paper_at_matches_brute_force():
    p, y, v = random_case(8, n=4, size=14)
    t = 0.42
    got = M.paper_at(p, y & v, v, t)
    ps, rs = [], []
    for i in range(len(p)):
        pred, truth = (p[i].astype(np.float64) >= t) & v[i], y[i] & v[i]
        tp, fp, fn = (pred & truth).sum(), (pred & ~truth).sum(), (~pred & truth).sum()
        ps.append(tp / (tp + fp))
        rs.append(tp / (tp + fn))
    assert got["precision"] == pytest.approx(np.mean(ps))
    assert got["recall"] == pytest.approx(np.mean(rs))
    assert got["threshold"] == t


def test_binary_scores_and_false_alarms():
    y = np.zeros((2, 6, 6), bool)
    y[:, 1:3, 1:3] = True
    v = np.ones_like(y)
    same = M.binary_scores(y, y, v)
    assert same["paper"]["f1"] == 1.0 and same["pooled"]["f1"] == 1.0 and same["auc"] == 1.0
    half = y.copy()
    half[:, 1, 1:3] = False  # the mask finds half of the annotated pixels
    s = M.binary_scores(half, y, v)
    assert s["pooled"]["recall"] == 0.5 and s["pooled"]["precision"] == 1.0
    # false alarms: decoy kind 1 on 4 pixels, 3 of them flagged; background: 1 of 60 flagged
    probs = np.zeros(y.shape, np.float32)
    decoy = np.zeros(y.shape, np.uint8)
    decoy[0, 4:6, 4:6] = 1
    probs[0, 4:6, 4] = 0.9
    probs[0, 5, 5] = 0.9
    probs[1, 0, 5] = 0.9
    probs[y] = 0.9  # motion pixels are not negatives, whatever their score
    fa = M.false_alarms(probs, v, ~y, decoy, {1: "spot", 2: "blob"}, 0.5)
    assert fa["decoys"]["spot"] == {"pixels": 4, "flagged": 3, "fraction": 0.75, "images": 1}
    assert fa["background"]["pixels"] == 2 * 36 - 8 - 4 and fa["background"]["flagged"] == 1
    assert fa["decoys"]["blob"]["fraction"] is None and fa["decoys"]["blob"]["pixels"] == 0
    v2 = v.copy()
    v2[0, 4:6, 4:6] = False  # invalid pixels never count
    assert M.false_alarms(probs, v2, ~y, decoy, {1: "spot"}, 0.5)["decoys"]["spot"]["pixels"] == 0


def test_metric_table_drives_table_columns_and_docs():
    from pathlib import Path

    from isslide.evaluate import METRICS, table_row

    assert METRICS == [m.column for m in M.METRIC_TABLE] == ["F1", "AUC", "Dice", "IoU", "HD"]
    docs = (Path(__file__).resolve().parents[1] / "docs/training.md").read_text()
    assert M.metric_table_markdown() in docs  # regenerate the docs' table when this fails
    p, y, v = random_case(1, n=3, size=12)
    res = M.evaluate_arrays(p, y, v, n_thresholds=11)
    row = table_row("m", res)
    for m in M.METRIC_TABLE:
        block = res if m.key == "auc" else res["paper"]
        assert row[m.column] == block[m.key]
        if m.key != "auc":
            assert row[f"pooled_{m.column}"] == res["pooled"][m.key]
    # every count score is in both conventions' blocks
    assert set(M.COUNT_SCORES) <= set(res["paper"]) and set(M.COUNT_SCORES) <= set(res["pooled"])
