"""Workflow-level tests: the planned DAG, lint, bad inputs, and the end-to-end run.

The end-to-end run executes the whole workflow on ``tests/configs/tiny.yaml`` in a temporary copy
of the repository, exactly as a user runs it (``snakemake --cores 2``), and checks the final
outputs of every stage.
"""

from __future__ import annotations

import json
import math
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml
from test_foundation import product_names
from workflow_utils import copy_repo, job_counts, snakemake

from isslide.dataset.store import decoy_kinds, read_store
from isslide.simulate.decoys import KINDS as DECOY_KINDS

pytestmark = pytest.mark.workflow


@pytest.fixture
def products(tmp_path):
    d = tmp_path / "s1"
    d.mkdir()
    for name in product_names(20):
        (d / name).touch()
    return d


def write_isslide_config(tmp_path, products, **changes):
    cfg = yaml.safe_load(open("config/isslide.yaml"))
    cfg["stacks"]["alps"]["products"] = str(products / "*.zip")
    for key, value in changes.items():
        cfg[key] = value
    path = tmp_path / "isslide.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_demo_dag(repo):
    out = snakemake("-n", "--cores", "2", cwd=repo).stdout
    counts = job_counts(out)
    assert counts["terrain_correct"] == 12
    assert counts["calibrate"] == counts["apply_orbit"] == 6
    for rule in (
        "coregister",
        "interferogram",
        "remove_topographic_phase",
        "goldstein",
        "multilook",
    ):
        assert counts[rule] == 12


def test_isslide_dag_54_interferograms(repo, tmp_path, products, monkeypatch):
    monkeypatch.chdir(repo)
    cfg = write_isslide_config(tmp_path, products)
    # the InSAR part (annotations and weights, absent here, are checked only past it)
    out = snakemake(
        "-n", "--cores", "2", "--until", "terrain_correct", "--configfile", str(cfg), cwd=repo
    ).stdout
    counts = job_counts(out)
    assert counts["calibrate"] == 20 and counts["apply_orbit"] == 20
    assert counts["terrain_correct"] == 54
    targets = re.findall(r"results/interferograms/alps/(\d+)d/(\d{8})_(\d{8})/phase\.tif", out)
    by_delay = {d: len({t for t in targets if t[0] == d}) for d in ("6", "12", "18")}
    assert by_delay == {"6": 19, "12": 18, "18": 17}


def test_lint_is_clean(repo):
    proc = snakemake("--lint", "--cores", "1", cwd=repo)
    out = proc.stdout + proc.stderr
    assert "Congratulations, your workflow is in a good condition!" in out, out[-3000:]


@pytest.mark.parametrize(
    "case, message",
    [
        ("typo", "unknown key 'delay'"),
        ("missing_dir", "does not exist"),
        ("bad_name", "not a Sentinel-1 product name"),
        ("bad_delay", "not a multiple of revisit_days"),
        ("one_acquisition", "at least two"),
    ],
)
def test_bad_input_fails_before_any_job(repo, tmp_path, products, monkeypatch, case, message):
    monkeypatch.chdir(repo)
    changes = {}
    if case == "typo":
        changes["delay"] = [6]
    elif case == "bad_delay":
        changes["delays"] = [6, 10]
    elif case == "one_acquisition":
        changes["dates"] = {"start": "2018-07-02", "end": "2018-07-07"}
    cfg = write_isslide_config(tmp_path, products, **changes)
    if case == "missing_dir":
        data = yaml.safe_load(cfg.read_text())
        data["stacks"]["alps"]["products"] = str(tmp_path / "nowhere" / "*.zip")
        cfg.write_text(yaml.safe_dump(data))
    if case == "bad_name":
        (products / "S1A_IW_SLC__1SDV_2018_broken.zip").touch()
    workdir = tmp_path / "work"
    workdir.mkdir()
    proc = snakemake(
        "--cores",
        "1",
        "--snakefile",
        str(repo / "Snakefile"),
        "--configfile",
        str(cfg),
        cwd=workdir,
        check=False,
    )
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.startswith("isslide:")]
    assert len(lines) == 1 and message in lines[0], proc.stderr[-3000:]
    assert not (workdir / "results").exists()


# --- end to end -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(repo, tmp_path_factory):
    work = copy_repo(tmp_path_factory.mktemp("e2e"), repo)
    proc = snakemake(
        "--cores", "2", "--configfile", "tests/configs/tiny.yaml", cwd=work, timeout=2400
    )
    return work, proc


def test_e2e_interferograms(tiny_run):
    work, _ = tiny_run
    cfg = yaml.safe_load(open(work / "tests/configs/tiny.yaml"))
    ifg = sorted((work / "results/interferograms/tiny").glob("*d/*_*/phase.tif"))
    assert len(ifg) == 5
    for phase_path in ifg:
        with (
            rasterio.open(phase_path) as ph,
            rasterio.open(phase_path.with_name("coherence.tif")) as co,
        ):
            assert ph.crs.to_epsg() == 4326 and co.crs.to_epsg() == 4326
            assert ph.nodata is not None and co.nodata is not None
            assert ph.transform == co.transform and ph.shape == co.shape
            assert math.isclose(
                ph.transform.a, cfg.get("insar", {}).get("pixel_spacing_deg", 1.315e-4)
            )
            phase = ph.read(1, masked=True)
            coh = co.read(1, masked=True)
            assert phase.count() > 0.5 * phase.size
            assert float(phase.min()) >= -math.pi - 1e-6 and float(phase.max()) <= math.pi + 1e-6
            assert 0 <= float(coh.min()) and float(coh.max()) <= 1
        assert phase_path.with_name("layover_shadow.tif").exists()
    # intermediates are temporary, except the per-date orbit-corrected products later pairs reuse
    left = {p.parent.name for p in (work / "results/work").rglob("*.tif")}
    assert left == {"orbit"}, left
    # logs and benchmarks land where the layout says
    assert list((work / "logs/terrain_correct").rglob("*.log"))
    assert list((work / "benchmarks/goldstein").rglob("*.tsv"))


def test_e2e_rerun_is_a_no_op(tiny_run):
    work, _ = tiny_run
    out = snakemake(
        "-n", "--cores", "2", "--configfile", "tests/configs/tiny.yaml", cwd=work
    ).stdout
    assert "Nothing to be done" in out, out[-2000:]


def test_e2e_labels_and_dataset(tiny_run):
    work, _ = tiny_run
    labels = sorted((work / "results/labels/tiny").glob("*d/*.tif"))
    assert len(labels) == 5
    with rasterio.open(labels[0]) as lab:
        assert lab.crs.to_epsg() == 4326 and lab.dtypes[0] == "int32"
        assert set(np.unique(lab.read(1))) >= {0}
    centres = gpd.read_file(work / "results/dataset/centres/tiny.gpkg")
    assert centres.crs.to_epsg() == 4326 and len(centres) > 0
    assert (centres.geometry.geom_type == "Point").all()

    index = pd.read_csv(work / "results/dataset/ready/index.csv")
    for column in (
        "sample_id",
        "stack",
        "zone",
        "delay",
        "reference",
        "secondary",
        "lon",
        "lat",
        "row",
        "col",
        "phenomenon_id",
        "class",
        "confidence",
        "has_motion",
        "split",
    ):
        assert column in index.columns, column
    assert index["sample_id"].is_unique
    assert set(index["split"]) <= {"train", "val", "eval", "unused"}
    assert index["has_motion"].any() and (~index["has_motion"]).any(), "no-move samples kept"
    # evaluation patches come from the evaluation zone only, training ones from train zones
    assert set(index.loc[index.split == "eval", "zone"]) == {"south"}
    assert set(index.loc[index.split == "train", "zone"]) == {"north"}
    # validation: train-zone patches of interferograms neither trained on nor evaluated on
    assert set(index.loc[index.split == "val", "zone"]) == {"north"}
    ifg = index["reference"].astype(str) + "_" + index["secondary"].astype(str)
    by = {k: set(ifg[index.split == k]) for k in ("train", "val", "eval")}
    assert by["val"] and not by["val"] & (by["train"] | by["eval"])

    for split in ("train", "val", "eval"):
        store = read_store(str(work / f"results/dataset/ready/{split}.npz"))
        n = len(store["sample_id"])
        assert n == (index.split == split).sum() > 0
        assert store["phase"].shape == (n, 100, 100)
        assert set(np.unique(store["label"])) <= {0, 1}
        assert np.all(np.abs(store["phase"][store["valid"] == 1]) <= np.pi + 1e-5)
        rows = index.set_index("sample_id").loc[store["sample_id"]]
        motion = store["label"].reshape(n, -1).any(axis=1)
        assert (rows["has_motion"].to_numpy() == motion).all()
        # simulated stack: the truth members, 0 on invalid pixels
        assert store["truth"].shape == store["decoy"].shape == store["label"].shape
        assert not store["truth"][store["valid"] == 0].any()
        assert decoy_kinds(store) == DECOY_KINDS

    manifest = json.loads((work / "results/dataset/manifest.json").read_text())
    assert manifest["interferograms"] == 5
    assert manifest["samples"] == len(index)
    assert manifest["no_move_samples"] == int((~index["has_motion"]).sum())
    assert manifest["train"]["samples"] == int((index.split == "train").sum())
    raw = work / "results/dataset/raw/tiny"
    assert len(list(raw.rglob("*.shp"))) == 5 and len(list(raw.rglob("coherence*.tif"))) == 5
    layout = sorted((work / "results/dataset/ready/isslide").rglob("*.tif"))
    assert any("Segmentations" in str(p) for p in layout)
    assert any(p.parent.name == "phase" for p in layout)


def test_e2e_training_and_evaluation(tiny_run):
    work, _ = tiny_run
    cfg = yaml.safe_load(open(work / "tests/configs/tiny.yaml"))
    models = cfg["training"]["models"]
    table = pd.read_csv(work / "results/evaluation/table.csv")
    assert sorted(table.iloc[:, 0]) == sorted(models)
    for model in models:
        assert (work / f"results/models/{model}/model.pt").stat().st_size > 0
        history = pd.read_csv(work / f"results/models/{model}/history.csv")
        assert len(history) == cfg["training"]["shallow"]["epochs"]
        assert history["val_loss"].notna().all()
        thresholds = json.loads((work / f"results/models/{model}/thresholds.json").read_text())
        assert thresholds["format"] == "isslide-thresholds/1"
        assert thresholds["chosen_on"] == "validation" and thresholds["n_images"] > 0
        metrics = json.loads((work / f"results/evaluation/{model}/metrics.json").read_text())
        assert 0.0 <= metrics["auc"] <= 1.0
        for convention in ("paper", "pooled"):
            # the validation thresholds, applied unchanged
            assert metrics[convention]["threshold"] == thresholds[convention]["threshold"]
            for block in (metrics, metrics["optimistic"], metrics["truth"], metrics["ceiling"]):
                for key in ("f1", "dice", "iou", "hd"):
                    value = block[convention][key]
                    assert value is not None and math.isfinite(value), (model, convention, key)
            fa = metrics["false_alarms"][convention]
            assert fa["background"]["pixels"] > 0 and set(fa["decoys"]) == set(DECOY_KINDS.values())
        for block in (metrics, metrics["truth"], metrics["ceiling"]):
            assert block["n_images"] > 0 and block["n_valid_pixels"] > 0
        # the tiny run's evaluation set is far below evaluation.min_images: a warning
        assert len(metrics["warnings"]) == 1 and "evaluation.min_images" in metrics["warnings"][0]
        row = table[table["model"] == model].iloc[0]
        assert row["n_images"] == metrics["n_images"]
        assert row["n_valid_pixels"] == metrics["n_valid_pixels"]
        assert row["val_images"] == thresholds["n_images"]
        with np.load(work / f"results/evaluation/{model}/predictions.npz") as pred:
            assert {"probabilities", "labels", "valid", "truth", "decoy"} <= set(pred.files)
    # the multi-temporal model is evaluated on the same images (the targets) as the others
    temporal = [m for m in models if m.startswith("tunet")]
    assert temporal, "tests/configs/tiny.yaml trains one multi-temporal model"
    with np.load(work / f"results/evaluation/{models[0]}/predictions.npz") as ref:
        ids = ref["sample_id"].copy()
    for model in temporal:
        with np.load(work / f"results/evaluation/{model}/predictions.npz") as pred:
            assert np.array_equal(pred["sample_id"], ids)
        row = table[table["model"] == model].iloc[0]
        assert row["steps"] == cfg["temporal"]["k"] and row["n_parameters"] > 0
    counts = json.loads((work / "results/dataset/manifest.json").read_text())["temporal"]
    assert counts["steps"] == cfg["temporal"]["k"] and counts["missing"] == "pad"
    tindex = pd.read_csv(work / "results/dataset/ready/temporal.csv")
    assert counts["eval"]["samples"] == len(ids) == int((tindex["split"] == "eval").sum())
    assert counts["train"]["padded"] > 0  # the first interferogram of each delay
    md = (work / "results/evaluation/table.md").read_text()
    assert "**Warning: the evaluation set holds" in md and "Against the simulator's truth" in md
    for fig in ("figure3", "training_curves", "pr_curves"):
        png = work / f"results/evaluation/figures/{fig}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_e2e_detection_layers(tiny_run):
    work, _ = tiny_run
    choice = json.loads((work / "results/detections/model.json").read_text())
    # never a multi-temporal model: detection reads one interferogram at a time
    assert choice["choice"] == "best" and choice["model_name"] in ("unet", "sepunet")
    assert choice["threshold_source"].split(" (")[0] in (
        "validation threshold",
        "evaluation threshold",
    )
    pairs = sorted((work / "results/interferograms/tiny").glob("*d/*_*"))
    stack = gpd.read_file(work / "results/detections/tiny/candidates.gpkg")
    assert stack.crs.to_epsg() == 4326
    total = 0
    for ifg in pairs:
        det = work / "results/detections/tiny" / ifg.parent.name / ifg.name
        for name in ("probability", "mask"):
            assert (det / f"{name}.tif").exists() and (det / f"{name}.qml").exists()
        with rasterio.open(det / "mask.tif") as m, rasterio.open(ifg / "phase.tif") as p:
            assert m.transform == p.transform and m.crs == p.crs
            invalid = ~p.read_masks(1).astype(bool)
            assert (m.read(1)[invalid] == 255).all()
        total += len(gpd.read_file(det / "candidates.gpkg"))
    assert total == len(stack)


def test_e2e_empty_validation_split_stops_before_training(tiny_run, tmp_path):
    """A config whose validation split ends up empty: one line naming the keys, no model."""
    import shutil

    work, _ = tiny_run
    copy = tmp_path / "copy"
    shutil.copytree(work, copy, symlinks=True)
    for d in ("results/models", "results/evaluation"):
        shutil.rmtree(copy / d)
    cfg = yaml.safe_load(open(copy / "tests/configs/tiny.yaml"))
    cfg["dataset"] = {"val_fraction": 0.0}
    (copy / "bad.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake("--cores", "2", "--configfile", "bad.yaml", cwd=copy, check=False)
    assert proc.returncode != 0
    lines = {line for line in proc.stderr.splitlines() if line.startswith("isslide:")}
    assert len(lines) == 1, proc.stderr[-3000:]
    line = lines.pop()
    assert "val.npz: the validation split holds no sample" in line
    assert "dataset.val_fraction" in line and "dates.end" in line
    assert not list((copy / "results").rglob("model.pt"))
    assert not (copy / "results/evaluation/table.csv").exists()


def test_e2e_report_builds(tiny_run):
    """``snakemake --report`` after the run: every report() output, with its caption."""
    work, _ = tiny_run
    snakemake(
        "--cores", "1", "--configfile", "tests/configs/tiny.yaml", "--report", "report.html",
        cwd=work,
    )  # fmt: skip
    html = (work / "report.html").read_text(errors="replace")
    for name in (
        "table.csv",
        "figure3.png",
        "training_curves.png",
        "pr_curves.png",
        "manifest.csv",
        "preview.png",
        "realism.png",
    ):
        assert name in html, name
    assert (work / "results/detections/tiny/preview.png").stat().st_size > 0
    assert "Table I of this run" in html  # a caption from workflow/report/
