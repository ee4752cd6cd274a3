"""Detection on whole interferograms: blending, masking, candidates, thresholds, the CLI on the
real Sentinel-1 interferogram, and bad inputs (one line, nothing written)."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from detect_utils import bubble_scene
from rasterio.crs import CRS
from shapely.geometry import box

from isslide.cli import main
from isslide.detect import (
    best_model,
    find_candidates,
    model_threshold,
    predict_probability,
    read_candidates,
    stack_candidates,
)
from isslide.detect.infer import window_starts
from isslide.detect.models import load_model
from isslide.errors import IsslideError
from isslide.files import write_raster

REAL = "resources/real/s1_ifg_20230904_20230916"
GRID = Affine(1.315e-4, 0, 6.0, 0, -1.315e-4, 45.0)


class Pointwise(torch.nn.Module):
    """A 1x1 'detector': any seam or edge effect of the blending would show in its output."""

    def forward(self, x):
        return 3.0 * x[:, :1] - 2.0 * x[:, 1:2] + x[:, 2:3] - 0.5


def write_pair(tmp_path, phase, coh, transform=GRID, crs="EPSG:4326", name="20200101_20200113"):
    d = tmp_path / name
    d.mkdir(parents=True, exist_ok=True)
    write_raster(str(d / "phase.tif"), phase.astype(np.float32), transform, crs, -9999.0)
    write_raster(str(d / "coherence.tif"), coh.astype(np.float32), transform, crs, -9999.0)
    return str(d / "phase.tif"), str(d / "coherence.tif")


# ------------------------------------------------------------------------------ inference


@pytest.mark.parametrize("shape, stride", [((230, 317), 50), ((100, 100), 50), ((61, 143), 30)])
def test_blending_reproduces_a_pointwise_model_exactly(shape, stride):
    rng = np.random.default_rng(0)
    phase = rng.uniform(-np.pi, np.pi, shape).astype(np.float32)
    coh = rng.uniform(0, 1, shape).astype(np.float32)
    valid = rng.random(shape) > 0.1
    prob = predict_probability(Pointwise(), phase, coh, valid, stride=stride, progress=False)
    expect = 1 / (1 + np.exp(-(3 * coh - 2 * np.cos(phase) + np.sin(phase) - 0.5)))
    assert np.isnan(prob[~valid]).all()
    np.testing.assert_allclose(prob[valid], expect[valid], rtol=1e-5, atol=1e-6)


def test_windows_cover_the_edges_as_the_interior():
    starts = window_starts(230, 100, 50)
    cover = np.zeros(230, int)
    for s in starts:
        cover[max(s, 0) : max(0, min(230, s + 100))] += 1
    assert (cover == 2).all() and starts[0] == -50


def test_bubble_is_one_candidate_with_its_extent(tiny_model):
    phase, coh, truth = bubble_scene(200, 240, [(100, 120, 15)], seed=99)
    valid = np.ones(truth.shape, bool)
    valid[:, :30] = False  # a nodata strip
    model, _ = load_model(str(tiny_model))
    prob = predict_probability(model, phase, coh, valid, progress=False)
    frame, labels = find_candidates(prob, (prob >= 0.5) & valid, GRID, "EPSG:4326", 0.5)
    assert len(frame) == 1, frame
    found = labels > 0
    iou = (found & truth).sum() / (found | truth).sum()
    assert iou > 0.7, iou
    rows, cols = np.nonzero(found)
    assert abs(rows.min() - 85) <= 3 and abs(rows.max() - 115) <= 3
    assert abs(cols.min() - 105) <= 3 and abs(cols.max() - 135) <= 3
    c = frame.iloc[0]
    assert c["class"] == "Unknown" and c["confidence"] == 3 and c["repetitions"] == 1
    px_m2 = (1.315e-4 * 111_320) ** 2 * math.cos(math.radians(45.0))
    assert abs(c["area_m2"] / (c["pixels"] * px_m2) - 1) < 0.02
    assert not found[:, :30].any()


# ------------------------------------------------------------------------------ candidates


def test_stack_candidates_count_repetitions_and_share_ids():
    def frame(ref, sec, boxes):
        return gpd.GeoDataFrame(
            {
                "id": np.arange(1, len(boxes) + 1),
                "score_max": 0.9,
                "score_mean": 0.8,
                "area_m2": 1.0,
                "pixels": 30,
                "reference": ref,
                "secondary": sec,
                "delay": 12,
                "class": "Unknown",
                "confidence": 2,
                "repetitions": 1,
            },
            geometry=[box(*b) for b in boxes],
            crs="EPSG:4326",
        )

    a = frame("20200101", "20200113", [(0, 0, 1, 1), (5, 5, 6, 6)])
    b = frame("20200107", "20200119", [(0.5, 0.5, 1.5, 1.5), (1, 0, 2, 1)])  # 2nd only touches
    c = frame("20200113", "20200125", [(0.9, 0.9, 1.2, 1.2)])
    out = stack_candidates([a, b, c])
    assert out["repetitions"].tolist() == [3, 1, 3, 2, 3]
    assert out["id"].tolist() == [1, 2, 1, 1, 1]  # touching is not overlapping, but b1-b2 do


# ------------------------------------------------------------------------------ thresholds


def test_threshold_lookup_order(tmp_path):
    m = tmp_path / "results" / "models" / "unet"
    m.mkdir(parents=True)
    with pytest.raises(IsslideError, match="--threshold"):
        model_threshold(str(m))
    ev = tmp_path / "results" / "evaluation" / "unet"
    ev.mkdir(parents=True)
    (ev / "metrics.json").write_text(json.dumps({"paper": {"threshold": 0.3, "f1": 0.5}}))
    t, source = model_threshold(str(m))
    assert t == 0.3 and source.startswith("evaluation threshold")
    fmt = "isslide-thresholds/1"
    layout = {
        "format": fmt,
        "chosen_on": "validation",
        "paper": {"threshold": 0.2, "f1": 0.65},
        "pooled": {"threshold": 0.4, "f1": 0.7},
    }
    (m / "thresholds.json").write_text(json.dumps(layout))
    t, source = model_threshold(str(m))
    assert t == 0.4 and source.startswith("validation threshold")
    other = tmp_path / "results" / "models" / "resunet"
    other.mkdir()
    (other / "thresholds.json").write_text(
        json.dumps({"format": fmt, "pooled": {"threshold": 0.5, "f1": 0.6}})
    )
    assert best_model([str(other), str(m)])[0] == str(m)
    (other / "thresholds.json").write_text(json.dumps({"pooled_validation": {"f1": 0.6}}))
    with pytest.raises(IsslideError, match="not an isslide thresholds file"):
        best_model([str(other), str(m)])


# ------------------------------------------------------------------------------ CLI


def run_cli(*args):
    return main(["detect", *map(str, args)])


def test_cli_on_the_real_interferogram(tiny_model, tmp_path, capsys, repo):
    out = tmp_path / "out"
    rc = run_cli(
        "--model", tiny_model, "--phase", repo / REAL / "phase.tif",
        "--coherence", repo / REAL / "coherence.tif", "--out", out, "--threshold", 0.5,
    )  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    assert "threshold 0.5000 (given (--threshold))" in capsys.readouterr().out
    with rasterio.open(repo / REAL / "phase.tif") as src:
        nodata = src.read(1) == src.nodata
        transform, crs = src.transform, src.crs
    with rasterio.open(out / "probability.tif") as p, rasterio.open(out / "mask.tif") as m:
        assert p.crs == crs and p.transform == transform and p.dtypes[0] == "float32"
        assert p.nodata == -9999.0 and m.nodata == 255 and m.dtypes[0] == "uint8"
        prob, mask = p.read(1), m.read(1)
    assert (prob[nodata] == -9999.0).all() and (mask[nodata] == 255).all()
    assert set(np.unique(mask[~nodata])) <= {0, 1}
    assert (prob[~nodata] >= 0).all() and (prob[~nodata] <= 1).all()
    cands = read_candidates(str(out / "candidates.gpkg"))
    assert cands.crs.to_epsg() == 4326
    assert {"id", "score_max", "score_mean", "area_m2", "pixels", "reference", "secondary",
            "delay", "class", "confidence", "repetitions"} <= set(cands.columns)  # fmt: skip
    summary = json.loads((out / "detection.json").read_text())
    assert summary["reference"] == "20230904" and summary["delay"] == 12
    assert summary["valid_pixels"] == int((~nodata).sum())
    for name in ("probability", "mask", "candidates"):
        root = ET.parse(out / f"{name}.qml").getroot()
        assert root.tag == "qgis"
    qgis_opens_them_styled(out, repo)


QGIS_PYTHON = "/usr/bin/python3"  # Debian's python3-qgis


def qgis_opens_them_styled(out, repo):
    """Where QGIS is installed, the layers open with their styles (no QGIS: XML check only)."""
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["QT_QPA_PLATFORM"] = "offscreen"
    probe = subprocess.run([QGIS_PYTHON, "-c", "import qgis.core"], env=env, capture_output=True)
    if probe.returncode != 0:
        return
    proc = subprocess.run(
        [QGIS_PYTHON, str(repo / "tests/qgis_check.py"), str(out)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["probability"] == {"valid": True, "renderer": "singlebandpseudocolor"}
    assert got["mask"] == {"valid": True, "renderer": "paletted"}
    assert got["candidates"]["renderer"] == "categorizedSymbol"
    assert got["candidates"]["attribute"] == "confidence" and got["candidates"]["labels"]


def shifted(transform):
    return transform @ Affine.translation(3, 0)


BAD = {
    "grid": ("differs from the phase", None),
    "crs": ("differs from the phase", None),
    "degrees": ("looks like degrees", None),
    "unwrapped": ("looks unwrapped", None),
    "coherence": ("--coherence-scale 255", None),
    "not_a_model": ("not a model of this project", None),
    "no_model": ("no trained model there", None),
    "no_file": ("phase file not found", None),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_and_writes_nothing(case, tiny_model, tmp_path, capsys):
    rng = np.random.default_rng(1)
    phase = rng.uniform(-np.pi, np.pi, (120, 130))
    coh = rng.uniform(0, 1, (120, 130))
    model = tiny_model
    if case == "degrees":
        phase = np.degrees(phase)
    if case == "unwrapped":
        phase = phase + np.linspace(0, 40, 130)
    if case == "coherence":
        coh = np.round(coh * 255)
    p, c = write_pair(tmp_path, phase, coh)
    if case in ("grid", "crs"):
        t = shifted(GRID) if case == "grid" else GRID
        crs = CRS.from_epsg(32631) if case == "crs" else "EPSG:4326"
        write_raster(c, coh.astype(np.float32), t, crs, -9999.0)
    if case == "not_a_model":
        model = tmp_path / "fake"
        model.mkdir()
        torch.save({"state_dict": {}}, model / "model.pt")
    if case == "no_model":
        model = tmp_path / "nowhere"
    if case == "no_file":
        p = str(tmp_path / "missing" / "phase.tif")
    out = tmp_path / "out"
    rc = run_cli("--model", model, "--phase", p, "--coherence", c, "--out", out, "--threshold", 0.5)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and err[0].startswith("isslide: "), err
    assert BAD[case][0] in err[0], err[0]
    assert not out.exists()
