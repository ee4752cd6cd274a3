"""Training, resume, evaluation and bad inputs on small synthetic stores (CPU, seconds)."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from isslide.dataset.store import write_store
from isslide.errors import IsslideError
from isslide.evaluate import evaluate_model, figure3, pr_curves, training_curves, write_table
from isslide.train import (
    HISTORY_COLUMNS,
    StoreTensors,
    epoch_plan,
    load_checkpoint,
    masked_bce,
    resolve_device,
    train_model,
)


def make_store(path, n=16, size=32, seed=0, motion=True):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    label = np.zeros((n, size, size), np.uint8)
    phase = rng.uniform(-np.pi, np.pi, (n, size, size)).astype(np.float32)
    coh = rng.uniform(0, 0.4, (n, size, size)).astype(np.float32)
    for i in range(n):
        if motion and i % 4:  # every fourth sample without motion
            cy, cx = rng.integers(size // 4, size - size // 4, 2)
            m = (yy - cy) ** 2 + (xx - cx) ** 2 <= int(rng.integers(2, max(3, size // 5))) ** 2
            label[i][m] = 1
            phase[i][m] = np.angle(np.exp(0.3j * ((yy - cy) ** 2 + (xx - cx) ** 2)[m]))
            coh[i][m] += 0.5
    valid = (rng.random((n, size, size)) > 0.05).astype(np.uint8)
    write_store(
        str(path),
        dict(coherence=coh, phase=phase, label=label, valid=valid, sample_id=np.arange(n) + 100),
    )
    return str(path)


CFG = {"shallow": {"epochs": 3, "lr": 1e-3}, "device": "cpu", "batch_size": 4}


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    d = tmp_path_factory.mktemp("stores")
    return (
        make_store(d / "train.npz", 20),
        make_store(d / "eval.npz", 8, seed=1),
        make_store(d / "val.npz", 8, seed=2),
    )


def run(tmp, stores, name="unet", cfg=CFG, **kw):
    """Train on (train, eval[, val]) stores; with a validation store, thresholds.json too."""
    return train_model(
        name,
        stores[0],
        str(tmp / "model.pt"),
        str(tmp / "history.csv"),
        cfg,
        seed=5,
        eval_path=stores[1],
        threads=1,
        val_path=stores[2] if len(stores) > 2 else None,
        thresholds_path=str(tmp / "thresholds.json"),
        **kw,
    )


def weights(path):
    return torch.load(path, weights_only=True)["state_dict"]


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_train_writes_model_history_and_is_deterministic(tmp_path, stores):
    a, b = tmp_path / "a", tmp_path / "b"
    summary = run(a, stores)
    run(b, stores)
    assert summary["n_train"] == 15  # motion-only: 5 of 20 samples have no motion
    assert same(weights(a / "model.pt"), weights(b / "model.pt"))
    h = pd.read_csv(a / "history.csv")
    assert list(h.columns) == HISTORY_COLUMNS
    assert h["epoch"].tolist() == [1, 2, 3]
    assert np.isfinite(h[["train_loss", "val_loss", "eval_loss"]].to_numpy()).all()
    assert h["train_loss"].iloc[-1] < h["train_loss"].iloc[0]
    thr = json.loads((a / "thresholds.json").read_text())
    assert thr["format"] == "isslide-thresholds/1" and thr["chosen_on"] == "validation"
    assert thr["n_images"] == 6 and thr["epoch"] == 3  # motion-only validation samples; last
    for conv in ("paper", "pooled"):
        assert 0.0 <= thr[conv]["threshold"] <= 1.0 and 0.0 <= thr[conv]["f1"] <= 1.0
    embedded = json.loads(torch.load(a / "model.pt", weights_only=True)["thresholds"])
    assert embedded == thr
    other = tmp_path / "c"
    train_model("unet", stores[0], str(other / "model.pt"), str(other / "h.csv"), CFG, seed=6)
    assert not same(weights(a / "model.pt"), weights(other / "model.pt"))


def test_resume_gives_the_uninterrupted_weights(tmp_path, stores):
    full, cut = tmp_path / "full", tmp_path / "cut"
    run(full, stores, name="sepunet")
    out = run(cut, stores, name="sepunet", stop_after=1)
    assert out["interrupted"] and out["epoch"] == 1
    assert not (cut / "model.pt").exists()
    assert load_checkpoint(out["checkpoint"])["epoch"] == 1
    out = run(cut, stores, name="sepunet", stop_after=1)  # second interruption
    assert load_checkpoint(out["checkpoint"])["epoch"] == 2
    run(cut, stores, name="sepunet")
    assert same(weights(full / "model.pt"), weights(cut / "model.pt"))
    pd.testing.assert_frame_equal(
        pd.read_csv(full / "history.csv").drop(columns=["seconds", "samples_per_s"]),
        pd.read_csv(cut / "history.csv").drop(columns=["seconds", "samples_per_s"]),
    )
    # more epochs later continue from the finished run's checkpoint
    longer = {**CFG, "shallow": {"epochs": 4, "lr": 1e-3}}
    run(cut, stores, name="sepunet", cfg=longer)
    assert len(pd.read_csv(cut / "history.csv")) == 4
    # a different learning rate is another run, in another checkpoint folder
    ckpts = list((cut / "checkpoints").iterdir())
    run(cut, stores, name="sepunet", cfg={**CFG, "shallow": {"epochs": 1, "lr": 1e-4}})
    assert len(list((cut / "checkpoints").iterdir())) == len(ckpts) + 1


def test_corrupt_checkpoint_is_refused_and_kept(tmp_path, stores):
    out = run(tmp_path, stores, name="unet", stop_after=1)
    ckpt = out["checkpoint"]
    with open(ckpt, "wb") as fh:
        fh.write(b"garbage")
    with pytest.raises(IsslideError, match="corrupt or unsafe checkpoint.*delete it"):
        run(tmp_path, stores, name="unet")
    assert open(ckpt, "rb").read() == b"garbage"
    assert not (tmp_path / "model.pt").exists()


def test_bad_inputs(tmp_path, stores):
    out = tmp_path / "out"
    with pytest.raises(IsslideError, match="unknown model 'fcn'"):
        run(out, stores, name="fcn")
    empty = make_store(tmp_path / "empty.npz", 0)
    with pytest.raises(IsslideError, match="no sample"):
        run(out, (empty, stores[1]))
    still = make_store(tmp_path / "still.npz", 8, motion=False)
    with pytest.raises(IsslideError, match="no sample contains a valid motion pixel"):
        run(out, (still, stores[1]))
    with pytest.raises(IsslideError, match="eval.npz.*no sample contains"):
        run(out, (stores[0], make_store(tmp_path / "eval.npz", 4, motion=False)))
    with pytest.raises(IsslideError, match="fewer than training.batch_size"):
        run(out, stores, cfg={**CFG, "batch_size": 64, "drop_last": True})
    with pytest.raises(IsslideError, match="training store not found"):
        run(out, (str(tmp_path / "missing.npz"), stores[1]))
    with pytest.raises(IsslideError, match="training.weights.fcn_p"):
        run(out, stores, name="fcn_p")
    assert not out.exists() or not any(out.rglob("*.pt"))


@pytest.mark.parametrize(
    "case, message",
    [
        ("train_empty", r"train.npz: the training split holds no sample; widen the train-role"),
        ("val_empty", r"val.npz: the validation split holds no sample; raise dataset.val_fraction"),
        ("val_still", r"val.npz: no sample contains a valid motion pixel \(validation split\)"),
        ("eval_still", r"eval.npz: .*\(evaluation split\); widen the evaluation-role zones"),
    ],
)
def test_bad_splits_stop_before_training(tmp_path, stores, case, message):
    """An empty split or one without motion: one line naming the config keys, nothing written."""
    d = tmp_path / "bad"
    d.mkdir()
    train, ev, val = stores
    if case == "train_empty":
        train = make_store(d / "train.npz", 0)
    if case == "val_empty":
        val = make_store(d / "val.npz", 0)
    if case == "val_still":
        val = make_store(d / "val.npz", 4, motion=False)
    if case == "eval_still":
        ev = make_store(d / "eval.npz", 4, motion=False)
    out = tmp_path / "out"
    with pytest.raises(IsslideError, match=message) as err:
        run(out, (train, ev, val))
    assert "\n" not in str(err.value)
    assert "dates.end" in str(err.value)
    assert not out.exists()  # no model, history, thresholds or checkpoint


def test_best_checkpoint_by_validation_loss_and_crops(tmp_path, stores):
    cfg = {
        **CFG,
        "shallow": {"epochs": 4, "lr": 3e-2},  # large: the validation loss goes up and down
        "select_best": "val_loss",
        "crop_size": 16,
        "crops_per_sample": 2,
        "lr_schedule": "cosine",
        "flips": True,
    }
    a = tmp_path / "a"
    summary = run(a, stores, cfg=cfg)
    h = pd.read_csv(a / "history.csv")
    best = int(h["epoch"][h["val_loss"].idxmin()])
    assert summary["kept_epoch"] == best
    assert json.loads((a / "thresholds.json").read_text())["epoch"] == best
    info = torch.load(a / "model.pt", weights_only=True)
    assert info["epoch"] == best and info["select_best"] == "val_loss"
    ck = load_checkpoint(summary["checkpoint"])
    assert ck["best"]["epoch"] == best and same(ck["best"]["model"], info["state_dict"])
    # 15 motion samples x 2 crops = 30 items, batches of 4: 7 per epoch; cosine decay to ~0
    assert h["lr"].iloc[-1] < 0.05 * cfg["shallow"]["lr"] < h["lr"].iloc[0]
    # crops: seeded per epoch, inside the patch, one phase offset per crop
    settings = SimpleNamespace(
        seed=5, crops_per_sample=2, phase_offset=True, crop_size=16, flips=True
    )
    perm, offsets, crops, flips = epoch_plan(settings, 15, 3, (32, 32))
    again = epoch_plan(settings, 15, 3, (32, 32))
    assert torch.equal(perm, again[0]) and torch.equal(crops[0], again[2][0])
    assert sorted(perm.tolist()) == sorted(list(range(15)) * 2) and len(offsets) == 30
    assert int(crops[0].max()) <= 16 and int(crops[1].min()) >= 0
    assert not torch.equal(crops[0], epoch_plan(settings, 15, 4, (32, 32))[2][0])
    assert torch.equal(flips, again[3]) and set(flips.tolist()) <= set(range(8))
    # without flips, the other draws are unchanged (flips are drawn last)
    plain = epoch_plan(SimpleNamespace(**{**vars(settings), "flips": False}), 15, 3, (32, 32))
    assert plain[3] is None and torch.equal(plain[2][0], crops[0])
    with pytest.raises(IsslideError, match="training.crop_size: 64 px is larger"):
        run(tmp_path / "b", stores, cfg={**cfg, "crop_size": 64})


def test_evaluation_applies_the_validation_thresholds_unchanged(tmp_path):
    """Threshold transfer end to end, and the truth-based blocks of metrics.json."""
    d = tmp_path / "s"
    d.mkdir()
    train, ev, val = (make_store(d / f"{k}.npz", n, seed=i) for i, (k, n) in enumerate(
        (("train", 20), ("eval", 12), ("val", 8))))  # fmt: skip
    # the evaluation store gets the simulator's optional members: truth = the label grown by
    # one pixel, one decoy kind on a corner of every patch
    from scipy import ndimage

    from isslide.dataset.store import kinds_member, read_store, write_store

    st = read_store(ev)
    truth = np.stack([ndimage.binary_dilation(m > 0) for m in st["label"]]) & (st["valid"] > 0)
    decoy = np.zeros_like(st["label"])
    decoy[:, :6, :6] = 1
    decoy[:, :6, :6][truth[:, :6, :6]] = 0
    write_store(ev, {**st, "truth": truth, "decoy": decoy,
                     "decoy_kinds": kinds_member({1: "low_coherence_spot"})})  # fmt: skip
    m = tmp_path / "m"
    run(m, (train, ev, val), cfg={**CFG, "shallow": {"epochs": 2, "lr": 1e-2}})
    thr = json.loads((m / "thresholds.json").read_text())
    out = tmp_path / "e"
    res = evaluate_model(
        str(m / "model.pt"),
        ev,
        str(out / "p.npz"),
        str(out / "metrics.json"),
        eval_cfg={"min_images": 30},
    )
    for conv in ("paper", "pooled"):
        assert res[conv]["threshold"] == thr[conv]["threshold"]  # unchanged
        assert res["thresholds"][conv] == thr[conv]["threshold"]
        assert res["truth"][conv]["threshold"] == thr[conv]["threshold"]
        assert "threshold" in res["optimistic"][conv]
    assert res["thresholds"]["chosen_on"] == "validation"
    assert res["thresholds"]["n_images"] == thr["n_images"] == 6
    assert res["n_images"] == 9 and res["n_valid_pixels"] > 0  # motion-only evaluation
    assert res["truth"]["n_positive_pixels"] > res["n_positive_pixels"]
    assert res["ceiling"]["pooled"]["recall"] == 1.0  # truth covers every annotated pixel
    assert res["ceiling"]["pooled"]["precision"] < 1.0
    fa = res["false_alarms"]
    assert fa["n_images"] == 12 and set(fa["paper"]["decoys"]) == {"low_coherence_spot"}
    assert fa["paper"]["decoys"]["low_coherence_spot"]["pixels"] > 0
    assert fa["pooled"]["threshold"] == thr["pooled"]["threshold"]
    assert len(res["warnings"]) == 1 and "fewer than evaluation.min_images (30)" in res[
        "warnings"][0]  # fmt: skip
    with np.load(out / "p.npz") as z:
        assert {"truth", "decoy"} <= set(z.files)
        np.testing.assert_array_equal(z["truth"], truth)
    # the table states the counts, the optimistic block, the truth block and the warning
    df = write_table({"unet": str(out / "metrics.json")}, str(out / "t.csv"), str(out / "t.md"))
    md = (out / "t.md").read_text()
    assert "Warning: the evaluation set holds 9 images" in md
    assert "Optimistic" in md and "Against the simulator's truth" in md
    assert "FA low_coherence_spot" in md
    row = df.iloc[0]
    assert row["n_images"] == 9 and row["val_images"] == 6
    assert row["threshold"] == thr["paper"]["threshold"]
    assert 0 <= row["fa_low_coherence_spot"] <= 1 and row["ceiling_pooled_F1"] < 1
    # a store without truth: those blocks are skipped
    plain = evaluate_model(
        str(m / "model.pt"), val, str(out / "p2.npz"), str(out / "m2.json"), eval_cfg={}
    )
    assert "truth" not in plain and "ceiling" not in plain and "false_alarms" not in plain


def test_device_selection():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(IsslideError, match="training.device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(IsslideError, match="no CUDA device"):
            resolve_device("cuda")


def test_inputs_channels_offset_and_masked_loss(tmp_path):
    path = make_store(tmp_path / "s.npz", 4, size=8)
    from isslide.dataset.store import read_store

    store = read_store(path)
    data = StoreTensors(store, np.arange(4), torch.device("cpu"), True)
    idx = torch.tensor([2, 0])
    off = torch.tensor([0.5, 2.0])
    x, y, v = data.batch(idx, off)
    assert x.shape == (2, 3, 8, 8)
    valid = torch.from_numpy(store["valid"][[2, 0]]).float()
    ph = torch.from_numpy(store["phase"][[2, 0]]) + off.view(-1, 1, 1)
    torch.testing.assert_close(x[:, 0], torch.from_numpy(store["coherence"][[2, 0]]) * valid)
    torch.testing.assert_close(x[:, 1], torch.cos(ph) * valid)
    torch.testing.assert_close(x[:, 2], torch.sin(ph) * valid)
    # invalid pixels leave the loss unchanged whatever the logits there
    logits = torch.randn(2, 1, 8, 8)
    s1, c1 = masked_bce(logits, y, v)
    logits2 = torch.where(v > 0, logits, torch.full_like(logits, 50.0))
    s2, c2 = masked_bce(logits2, y, v)
    assert torch.equal(s1, s2) and c1 == v.sum()


def test_evaluation_table_and_figures(tmp_path, stores):
    models = {}
    for name in ("unet", "resunet"):
        d = tmp_path / "models" / name
        run(d, stores, name=name, cfg={**CFG, "shallow": {"epochs": 1, "lr": 1e-3}})
        models[name] = d / "model.pt"
    preds, mets, hists = {}, {}, {}
    for name, model in models.items():
        e = tmp_path / "evaluation" / name
        res = evaluate_model(
            str(model), stores[1], str(e / "predictions.npz"), str(e / "metrics.json")
        )
        preds[name], mets[name] = str(e / "predictions.npz"), str(e / "metrics.json")
        hists[name] = str(model.parent / "history.csv")
        assert res["model"] == name and res["n_images"] == 6  # motion-only evaluation
        stored = json.loads(open(mets[name]).read())
        assert stored["paper"]["f1"] == res["paper"]["f1"]
        for conv in ("paper", "pooled"):
            assert all(math.isfinite(stored[conv][k]) for k in ("f1", "dice", "iou", "hd"))
        assert 0 <= stored["auc"] <= 1
        with np.load(preds[name]) as z:
            assert z["probabilities"].shape == (8, 32, 32)
            assert z["probabilities"].dtype == np.float32
            assert z["selected"].sum() == 6
            np.testing.assert_array_equal(z["sample_id"], np.arange(8) + 100)
    df = write_table(mets, str(tmp_path / "table.csv"), str(tmp_path / "table.md"))
    assert df["model"].tolist() == ["unet", "resunet"]
    assert "Published values: not shown" in open(tmp_path / "table.md").read()
    ref = tmp_path / "ref.csv"
    ref.write_text("model,F1,AUC,Dice,IoU,HD\nunet,0.5,0.9,0.4,0.3,12\n")
    df = write_table(mets, str(tmp_path / "t2.csv"), str(tmp_path / "t2.md"), reference=str(ref))
    assert df.loc[0, "published_F1"] == 0.5 and math.isnan(df.loc[1, "published_F1"])
    index = tmp_path / "index.csv"
    pd.DataFrame({"sample_id": [101], "stack": ["s"], "delay": [6]}).to_csv(index, index=False)
    figs = [tmp_path / f for f in ("fig3.png", "curves.png", "pr.png")]
    figure3(stores[1], preds, mets, str(figs[0]), index_path=str(index), n_samples=2)
    training_curves(hists, str(figs[1]))
    pr_curves(preds, mets, str(figs[2]))
    for f in figs:
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_refuses_bad_model_file(tmp_path, stores):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"\x00" * 10)
    out = tmp_path / "e"
    with pytest.raises(IsslideError, match="corrupt or unsafe"):
        evaluate_model(str(bad), stores[1], str(out / "p.npz"), str(out / "m.json"))
    assert not out.exists()


def test_cli_train_and_evaluate(tmp_path, stores, repo):
    import argparse
    import shutil

    import yaml

    from isslide import cli_train

    cfg = yaml.safe_load(open(repo / "tests" / "configs" / "tiny.yaml"))
    cfg["training"] = {"models": ["unet"], "device": "cpu", "batch_size": 4, "threads": 1,
                       "shallow": {"epochs": 1, "lr": 1e-3}}  # fmt: skip
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    store = tmp_path / "ready"
    store.mkdir()
    shutil.copy(stores[0], store / "train.npz")
    shutil.copy(stores[1], store / "eval.npz")
    shutil.copy(stores[2], store / "val.npz")
    parser = argparse.ArgumentParser()
    cli_train.add_parser(parser.add_subparsers(dest="command"))
    common = ["--configfile", str(cfg_path), "--store", str(store)]
    args = parser.parse_args(["train", "unet", *common, "--out", str(tmp_path / "m")])
    assert args.func(args) == 0
    assert (tmp_path / "m" / "unet" / "model.pt").exists()
    args = parser.parse_args(
        ["evaluate", "unet", *common, "--models", str(tmp_path / "m"), "--out", str(tmp_path / "e")]
    )
    assert args.func(args) == 0
    assert json.loads((tmp_path / "e" / "unet" / "metrics.json").read_text())["model"] == "unet"


def test_dihedral_symmetries_and_flipped_batches(tmp_path):
    from isslide.dataset.store import read_store
    from isslide.train import dihedral

    a = torch.arange(12.0).view(3, 4)
    square = torch.arange(9.0).view(3, 3)
    outs = {tuple(dihedral(square, k).flatten().tolist()) for k in range(8)}
    assert len(outs) == 8  # eight distinct symmetries
    assert torch.equal(dihedral(a, 0), a) and torch.equal(dihedral(square, 4), square.T)
    store = read_store(make_store(tmp_path / "s.npz", 4, size=8))
    data = StoreTensors(store, np.arange(4), torch.device("cpu"), True)
    idx = torch.tensor([1, 3])
    x0, y0, v0 = data.batch(idx, None)
    x, y, v = data.batch(idx, None, flips=[2, 5])
    for b, k in enumerate([2, 5]):  # inputs, target and mask move together
        assert torch.equal(x[b], dihedral(x0[b], k)) and torch.equal(y[b], dihedral(y0[b], k))
        assert torch.equal(v[b], dihedral(v0[b], k))


@pytest.mark.parametrize("n", [1, 7, 8, 9, 16, 17])
def test_last_partial_batch_is_kept_and_never_a_single_item(n):
    from isslide.train import batch_slice, batches_per_epoch

    assert batches_per_epoch(n, 8, True) == n // 8
    nb = batches_per_epoch(n, 8, False)
    sizes = [len(range(n)[batch_slice(b, nb, n, 8)]) for b in range(nb)]
    assert sum(sizes) == n  # every item once, the last partial batch kept
    assert min(sizes) > 1 or n == 1  # a lone last item joins the batch before it
    assert max(sizes) <= 9
