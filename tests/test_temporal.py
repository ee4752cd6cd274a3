"""Multi-temporal samples (isslide.dataset.temporal) and detectors (isslide.models.temporal)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from isslide.dataset.store import write_store
from isslide.dataset.temporal import check_temporal, load_temporal, temporal_index
from isslide.errors import IsslideError
from isslide.evaluate import evaluate_model
from isslide.models import REGISTRY, build_model, count_parameters
from isslide.models.temporal import TemporalAttention
from isslide.train import load_trained, train_model

SIZE = 16
DATES = ["20180702", "20180708", "20180714", "20180720", "20180726"]  # every 6 days
# (delay, reference index): 6 d: 4 pairs, 12 d: 3 pairs
PAIRS = [(6, i) for i in range(4)] + [(12, i) for i in range(3)]
# centres: (zone, role, phenomenon_id, k)
CENTRES = [("north", "train", 1, 0), ("north", "train", 2, 0), ("south", "evaluation", 3, 0)]
# held out (eval) and validation interferograms, as the split rule would choose them
HELD_OUT = {(6, 3), (12, 2)}
VAL = {(6, 1)}


def split_of(role, pair):
    if role == "evaluation":
        return "eval" if pair in HELD_OUT else "unused"
    if pair in HELD_OUT:
        return "unused"
    return "val" if pair in VAL else "train"


def make_index(drop=()):
    """index.csv's frame of one stack: every centre on every interferogram (minus ``drop``)."""
    rows = []
    for d, r in PAIRS:
        if (d, r) in drop:
            continue
        ref = DATES[r]
        sec = pd.Timestamp(ref) + pd.Timedelta(days=d)
        for zone, role, pid, k in CENTRES:
            rows.append(
                {
                    "sample_id": 1000 * d + 10 * r + pid,
                    "stack": "demo",
                    "zone": zone,
                    "role": role,
                    "delay": d,
                    "reference": ref,
                    "secondary": sec.strftime("%Y%m%d"),
                    "phenomenon_id": pid,
                    "k": k,
                    "split": split_of(role, (d, r)),
                }
            )
    return pd.DataFrame(rows)


def make_stack_store(path, index):
    """The stack's store: sample i has coherence i / 100, phase sample_id % 7, a label of
    1 + i % 5 rows (a different mask per sample), valid 1 except pixel (0, 0)."""
    n = len(index)
    coh = np.repeat(np.arange(n, dtype=np.float32)[:, None, None] / 100, SIZE * SIZE, 1)
    coh = coh.reshape(n, SIZE, SIZE)
    sid = index["sample_id"].to_numpy(np.int64)
    phase = np.broadcast_to((sid % 7).astype(np.float32)[:, None, None], (n, SIZE, SIZE)).copy()
    label = np.zeros((n, SIZE, SIZE), np.uint8)
    for i in range(n):
        label[i, : 1 + i % 5, :4] = 1  # a different mask per sample
    valid = np.ones((n, SIZE, SIZE), np.uint8)
    valid[:, 0, 0] = 0
    decoy = np.zeros((n, SIZE, SIZE), np.uint8)
    decoy[:, -2:, -2:] = 1
    write_store(
        str(path),
        dict(
            coherence=coh,
            phase=phase,
            label=label,
            valid=valid,
            sample_id=sid,
            truth=label,
            decoy=decoy,
            decoy_kinds=np.array(json.dumps({"1": "ramp"})),
        ),
    )
    return str(path)


def test_consecutive_steps_are_ordered_and_flag_missing_ones():
    index = make_index()
    frame, summary = temporal_index(index, k=3, mode="consecutive", delays=[6, 12])
    # targets: every train/val/eval row, in index order
    assert list(frame["sample_id"]) == list(index.loc[index["split"] != "unused", "sample_id"])
    row = frame[
        (frame["delay"] == 6) & (frame["reference"] == DATES[3]) & (frame["zone"] == "south")
    ]
    assert len(row) == 1
    row = row.iloc[0]
    assert row["split"] == "eval"
    # oldest first, target last; each step is the same centre's patch on that interferogram
    assert [row[f"step{t}_reference"] for t in range(3)] == DATES[1:4]
    assert [row[f"step{t}_sample_id"] for t in range(3)] == [6013, 6023, 6033]
    stack_row = {s: i for i, s in enumerate(index["sample_id"])}
    assert [row[f"step{t}_row"] for t in range(3)] == [stack_row[s] for s in (6013, 6023, 6033)]
    assert row["target_row"] == stack_row[6033]
    # the first 6-day interferogram has no earlier ones: two steps flagged missing
    first = frame[(frame["delay"] == 6) & (frame["reference"] == DATES[0])].iloc[0]
    assert [first[f"step{t}_row"] for t in range(3)] == [-1, -1, stack_row[first["sample_id"]]]
    assert first["n_present"] == 1 and bool(first["kept"])
    # counts: pad keeps every target
    total = sum(summary[s]["targets"] for s in ("train", "val", "eval"))
    assert total == len(frame)
    assert summary["eval"]["dropped"] == 0
    assert summary["train"]["padded"] == int(
        ((frame["split"] == "train") & (frame["n_present"] < 3)).sum()
    )


def test_drop_removes_incomplete_samples_and_counts_them():
    index = make_index()
    frame, summary = temporal_index(index, k=3, missing="drop", delays=[6, 12])
    kept = frame[frame["kept"]]
    assert (kept["n_present"] == 3).all()
    assert (frame.loc[~frame["kept"], "n_present"] < 3).all()
    for s in ("train", "val", "eval"):
        sel = frame["split"] == s
        assert summary[s]["dropped"] == int((sel & ~frame["kept"]).sum())
        assert summary[s]["samples"] == summary[s]["complete"]
        assert summary[s]["padded"] == 0


def test_gap_in_the_stack_is_a_missing_step():
    # the 6-day pair of 20180714 is missing (an acquisition gap): later targets flag it
    index = make_index(drop={(6, 2)})
    frame, _ = temporal_index(index, k=2, delays=[6, 12])
    row = frame[(frame["delay"] == 6) & (frame["reference"] == DATES[3])].iloc[0]
    assert row["step0_reference"] == DATES[2] and row["step0_row"] == -1
    assert row["n_present"] == 1


def test_same_reference_mode_reads_every_delay_of_the_reference():
    index = make_index()
    frame, summary = temporal_index(index, mode="same_reference", delays=[12, 6])
    assert summary["steps"] == 2
    # the other delay first, the target last
    row = frame[(frame["delay"] == 12) & (frame["reference"] == DATES[1])].iloc[0]
    assert [row["step0_secondary"], row["step1_secondary"]] == ["20180714", "20180720"]
    assert row["step0_sample_id"] == 6000 + 10 + row["sample_id"] % 10
    assert row["step1_sample_id"] == row["sample_id"]
    six = frame[(frame["delay"] == 6) & (frame["reference"] == DATES[1])].iloc[0]
    assert [six["step0_secondary"], six["step1_secondary"]] == ["20180720", "20180714"]
    assert six["step1_sample_id"] == six["sample_id"]
    last6 = frame[(frame["delay"] == 6) & (frame["reference"] == DATES[3])].iloc[0]
    assert last6["step0_row"] == -1  # no 12-day pair starts on 20180720
    assert last6["step1_sample_id"] == last6["sample_id"]


def test_split_guarantee_steps_stay_on_the_side_of_their_target():
    index = make_index()
    frame, _ = temporal_index(index, k=3, delays=[6, 12])
    side_of = dict(zip(index["sample_id"], index["role"], strict=True))
    for _, row in frame.iterrows():
        want = "evaluation" if row["split"] == "eval" else "train"
        for t in range(3):
            sid = row[f"step{t}_sample_id"]
            if sid >= 0:
                assert side_of[sid] == want
    # evaluation samples never read a training or validation row, and conversely
    split_of_id = dict(zip(index["sample_id"], index["split"], strict=True))
    for _, row in frame.iterrows():
        steps = [split_of_id[s] for s in (row[f"step{t}_sample_id"] for t in range(3)) if s >= 0]
        if row["split"] == "eval":
            assert set(steps) <= {"eval", "unused"}
        else:
            assert "eval" not in steps
    # a row of the same centre on the other side of the split is refused (one line)
    bad = index.copy()
    bad.loc[(bad["zone"] == "south") & (bad["reference"] == DATES[2]) & (bad["delay"] == 6),
            "split"] = "train"  # fmt: skip
    with pytest.raises(IsslideError, match="other side of the split"):
        temporal_index(bad, k=3, delays=[6, 12])


@pytest.mark.parametrize(
    "k,delays,match",
    [
        (
            4,
            [6, 12],
            r"temporal\.k: 4 .* 12-day .* at most 3 consecutive .* lower temporal\.k to 3",
        ),
        (6, [6, 12], r"temporal\.k: 6 .* 6-day .* at most 4 consecutive .* lower temporal\.k to 4"),
    ],
)
def test_k_beyond_the_stack_is_one_line_naming_the_key(k, delays, match):
    with pytest.raises(IsslideError, match=match) as exc:
        temporal_index(make_index(), k=k, delays=delays)
    assert "\n" not in str(exc.value)


def test_a_delay_without_any_pair_builds_no_target_and_is_no_error():
    """The plan already notes a delay that gives no pair (issue 15, item 10): no temporal error."""
    check_temporal(make_index(), 2, "consecutive", [6, 18], 6)


def test_gap_breaks_the_consecutive_run():
    index = make_index(drop={(12, 1)})  # 12 d: references 0 and 2, never 2 in a row
    with pytest.raises(IsslideError, match="at most 1 consecutive"):
        check_temporal(index, 2, "consecutive", [6, 12], 6)
    with pytest.raises(IsslideError, match="temporal.mode"):
        check_temporal(index, 2, "sideways", [6, 12], 6)


def test_load_temporal_assembles_steps_flags_and_the_targets_label(tmp_path):
    index = make_index()
    store = make_stack_store(tmp_path / "demo.npz", index)
    frame, _ = temporal_index(index, k=3, delays=[6, 12])
    frame.to_csv(tmp_path / "temporal.csv", index=False)
    data = load_temporal(str(tmp_path / "temporal.csv"), "eval", {"demo": store})
    ev = frame[frame["split"] == "eval"].reset_index(drop=True)
    assert list(data["sample_id"]) == list(ev["sample_id"])
    assert data["coherence"].shape == (len(ev), 3, SIZE, SIZE)
    full = {k: v for k, v in np.load(store).items()}
    for i, row in ev.iterrows():
        tr = row["target_row"]
        assert np.array_equal(data["label"][i], full["label"][tr])  # the target's label
        assert np.array_equal(data["truth"][i], full["truth"][tr])
        assert np.array_equal(data["valid"][i], full["valid"][tr])
        for t in range(3):
            r = row[f"step{t}_row"]
            assert data["present"][i, t] == (r >= 0)
            if r >= 0:
                assert np.array_equal(data["coherence"][i, t], full["coherence"][r])
                assert np.array_equal(data["phase"][i, t], full["phase"][r])
                assert np.array_equal(data["step_valid"][i, t], full["valid"][r])
            else:  # padded: zeros and a validity flag 0
                assert not data["coherence"][i, t].any() and not data["step_valid"][i, t].any()
    assert str(data["decoy_kinds"]) == json.dumps({"1": "ramp"})
    # drop: only complete samples
    frame, _ = temporal_index(index, k=3, missing="drop", delays=[6, 12])
    frame.to_csv(tmp_path / "temporal.csv", index=False)
    data = load_temporal(str(tmp_path / "temporal.csv"), "train", {"demo": store})
    assert data["present"].all()
    assert len(data["sample_id"]) == int(((frame["split"] == "train") & frame["kept"]).sum())


def test_temporal_models_registry_shapes_and_parameters():
    assert REGISTRY["tunet_early"].temporal and REGISTRY["tunet_attn"].temporal
    assert not REGISTRY["unet"].temporal
    counts = {}
    for name in ("tunet_early", "tunet_attn"):
        for k in (2, 3):
            m = build_model(name, steps=k).eval()
            with torch.no_grad():
                out = m(torch.randn(2, k, 3, 50, 42))
            assert out.shape == (2, 1, 50, 42)
            counts[name, k] = count_parameters(m)
    # early fusion: only the first convolution grows with K (3 K -> 12 channels, 3x3)
    assert counts["tunet_early", 3] == 100_849 + 6 * 9 * 12
    assert counts["tunet_early", 3] - counts["tunet_early", 2] == 3 * 9 * 12
    # shared encoder: the parameters do not depend on K
    assert counts["tunet_attn", 3] == counts["tunet_attn", 2] == 103_561


def test_attention_ignores_missing_steps():
    torch.manual_seed(0)
    att = TemporalAttention(8)
    f = torch.randn(2, 3, 8, 5, 5)
    present = torch.tensor([[False, True, True], [True, True, True]])
    out = att(f, present)
    g = f.clone()
    g[0, 0] = torch.randn(8, 5, 5) * 10
    out2 = att(g, present)
    assert torch.allclose(out[0], out2[0])  # a missing step does not count
    g[1, 0] = torch.randn(8, 5, 5) * 10
    assert not torch.allclose(out[1], att(g, present)[1])  # a present one does


def test_train_and_evaluate_a_temporal_model_on_the_same_targets(tmp_path):
    index = make_index()
    store = make_stack_store(tmp_path / "demo.npz", index)
    frame, _ = temporal_index(index, k=2, delays=[6, 12])
    frame.to_csv(tmp_path / "temporal.csv", index=False)
    temporal = {"index": str(tmp_path / "temporal.csv"), "stores": {"demo": store}}
    cfg = {"shallow": {"epochs": 2, "lr": 1e-3}, "device": "cpu", "batch_size": 2}
    out = tmp_path / "m"
    res = train_model(
        "tunet_attn", "train.npz", str(out / "model.pt"), str(out / "history.csv"), cfg, seed=3,
        val_path="val.npz", thresholds_path=str(out / "thresholds.json"), temporal=temporal,
        threads=1,
    )  # fmt: skip
    assert res["thresholds"]["chosen_on"] == "validation"
    model, info = load_trained(str(out / "model.pt"))
    assert info["steps"] == 2 and info["model_name"] == "tunet_attn"
    m = evaluate_model(
        str(out / "model.pt"), "eval.npz", str(out / "pred.npz"), str(out / "metrics.json"),
        training_cfg={"device": "cpu"}, eval_cfg={"n_thresholds": 11, "min_images": 1},
        temporal=temporal,
    )  # fmt: skip
    pred = np.load(out / "pred.npz")
    # the evaluation images are the targets of the eval split, in its store's order
    assert list(pred["sample_id"]) == list(frame.loc[frame["split"] == "eval", "sample_id"])
    assert m["n_parameters"] == 103_561 and "false_alarms" in m
    # without the temporal index: one line naming what is missing
    with pytest.raises(IsslideError, match="multi-temporal and needs the temporal index"):
        train_model("tunet_early", "train.npz", str(out / "x.pt"), str(out / "h.csv"), cfg, 3)


def test_plan_time_check_names_the_key(tmp_path):
    """Before any job: tiny.yaml's 12-day delay has 2 consecutive interferograms, not 3."""
    from pathlib import Path

    import yaml

    from isslide.config import deep_update, fill_defaults
    from isslide.preflight import preflight

    repo = Path(__file__).resolve().parents[1]
    cfg = yaml.safe_load((repo / "tests/configs/tiny.yaml").read_text())
    dem = str(repo / "resources/dem/srtm3_N44W072_white_mountains.tif")
    cfg = deep_update(cfg, {"simulation": {"dem": dem}, "temporal": {"k": 3}})
    with pytest.raises(IsslideError, match=r"temporal\.k: 3 .* 12-day .* lower temporal\.k to 2"):
        preflight(fill_defaults(cfg), base=str(repo))
    # without a multi-temporal model, temporal.k is not checked
    cfg["training"]["models"] = ["unet"]
    preflight(fill_defaults(cfg), base=str(repo))


def test_detection_never_runs_a_temporal_model(tmp_path):
    """Detection reads one interferogram: best skips multi-temporal folders, a given one is
    refused with one line."""
    from isslide.detect.models import best_model, load_model

    index = make_index()
    store = make_stack_store(tmp_path / "demo.npz", index)
    frame, _ = temporal_index(index, k=2, delays=[6, 12])
    frame.to_csv(tmp_path / "temporal.csv", index=False)
    temporal = {"index": str(tmp_path / "temporal.csv"), "stores": {"demo": store}}
    cfg = {"shallow": {"epochs": 1, "lr": 1e-3}, "device": "cpu", "batch_size": 2}
    out = tmp_path / "tunet_early"
    train_model(
        "tunet_early", "train.npz", str(out / "model.pt"), str(out / "history.csv"), cfg, seed=1,
        val_path="val.npz", thresholds_path=str(out / "thresholds.json"), temporal=temporal,
    )  # fmt: skip
    with pytest.raises(IsslideError, match="reads 2 interferograms at once"):
        load_model(str(out))
    with pytest.raises(IsslideError, match="no F1 found"):
        best_model([str(out)])
