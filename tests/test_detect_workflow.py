"""Interferograms made elsewhere through the whole workflow, detection as GIS layers, and the
annotation loop: one pair's candidates saved as its annotation file replan no InSAR/import job
and exactly one label job (Snakemake's own dry-run)."""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import yaml
from affine import Affine
from detect_utils import bubble_scene
from workflow_utils import INSAR, copy_repo, job_counts, snakemake

from isslide.files import write_raster
from isslide.labels import read_annotations, read_phenomena

pytestmark = pytest.mark.workflow

PAIRS = [
    ("6", "20200101", "20200107"),
    ("6", "20200107", "20200113"),
    ("12", "20200101", "20200113"),
]
BUBBLES = [(60, 60, 13), (100, 150, 11)]
SRC = Affine(1.5e-4, 0, 6.0, 0, -1.5e-4, 45.0)  # not the workflow grid: reprojected


def write_inputs(root: Path) -> None:
    for k, (_, ref, sec) in enumerate(PAIRS):
        phase, coh, _ = bubble_scene(150, 200, BUBBLES, seed=k)
        phase[:, :12] = -9999.0  # a nodata strip
        d = root / "data/ifg" / f"{ref}_{sec}"
        d.mkdir(parents=True)
        write_raster(str(d / "phase.tif"), phase, SRC, "EPSG:4326", -9999.0)
        write_raster(str(d / "coherence.tif"), coh, SRC, "EPSG:4326", -9999.0)


def config(model: Path) -> dict:
    return {
        "seed": 1,
        "revisit_days": 6,
        "delays": [6, 12],
        "dates": {"start": "2020-01-01", "end": "2020-01-13"},
        "annotations": {"directory": "annotations", "missing": "no_motion"},
        "stacks": {
            "ext": {
                "source": "interferograms",
                "interferograms": {
                    "phase": "data/ifg/{reference}_{secondary}/phase.tif",
                    "coherence": "data/ifg/{reference}_{secondary}/coherence.tif",
                },
                "zones": {
                    "west": {"bbox": [6.0, 44.97, 6.015, 45.0], "role": "train"},
                    "east": {"bbox": [6.015, 44.97, 6.03, 45.0], "role": "evaluation"},
                },
            }
        },
        "dataset": {"patch_size": 32},
        "training": {"models": []},
        "detection": {"model": str(model), "threshold": 0.5, "device": "cpu", "threads": 1},
    }


@pytest.fixture(scope="module")
def ext_run(tiny_model):
    tmp = Path(tempfile.mkdtemp(prefix="isslide-detect-wf-"))
    try:
        root = copy_repo(tmp)
        write_inputs(root)
        (root / "ext.yaml").write_text(yaml.safe_dump(config(tiny_model)))
        proc = snakemake("--cores", "2", "--configfile", "ext.yaml", cwd=root)
        yield root, proc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def pair_dir(root, kind, delay, ref, sec):
    return root / f"results/{kind}/ext/{delay}d/{ref}_{sec}"


def test_imported_interferograms_run_through_the_workflow(ext_run):
    root, proc = ext_run
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts.get("import_interferogram") == 3 and not INSAR & set(counts), counts
    for delay, ref, sec in PAIRS:
        ifg = pair_dir(root, "interferograms", delay, ref, sec)
        with rasterio.open(ifg / "phase.tif") as p:
            assert p.crs.to_epsg() == 4326 and p.transform.a == pytest.approx(1.315e-4)
        assert (root / f"results/labels/ext/{delay}d/{ref}_{sec}.tif").exists()
        det = pair_dir(root, "detections", delay, ref, sec)
        for name in ("probability.tif", "mask.tif", "candidates.gpkg"):
            assert (det / name).exists() and (det / name).with_suffix(".qml").exists(), name
        with rasterio.open(det / "mask.tif") as m, rasterio.open(ifg / "phase.tif") as p:
            mask, nodata = m.read(1), p.read(1) == p.nodata
        assert (mask[nodata] == 255).all() and mask[~nodata].max() == 1
    assert (root / "results/dataset/ready/train.npz").exists()
    stack = gpd.read_file(root / "results/detections/ext/candidates.gpkg")
    assert len(stack) == 2 * len(PAIRS), stack  # each bubble, once per interferogram
    assert sorted(stack["id"].unique()) == [1, 2] and (stack["repetitions"] == 3).all()


def test_annotation_loop_relabels_only_that_pair(ext_run):
    root, _ = ext_run
    delay, ref, sec = PAIRS[1]
    cands = gpd.read_file(pair_dir(root, "detections", delay, ref, sec) / "candidates.gpkg")
    assert len(cands) == 2
    # the annotator accepts both candidates: saved as the pair's annotation shapefile
    shp = root / f"annotations/ext/{delay}d/{ref}_{sec}.shp"
    shp.parent.mkdir(parents=True, exist_ok=True)
    keep = cands[["id", "class", "confidence", "repetitions", "geometry"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 'repetitions' -> 'repetition' (DBF name limit)
        keep.to_file(shp)
    assert len(read_annotations(str(shp))) == 2
    out = snakemake("-n", "--cores", "2", "--configfile", "ext.yaml", cwd=root).stdout
    counts = job_counts(out)
    assert not (INSAR | {"import_interferogram", "detect"}) & set(counts), counts
    assert counts.get("rasterize_labels") == 1, counts
    label = f"results/labels/ext/{delay}d/{ref}_{sec}.tif"
    assert label in out
    snakemake(label, "--cores", "1", "--configfile", "ext.yaml", cwd=root)
    with rasterio.open(root / label) as lab:
        ids = set(np.unique(lab.read(1)).tolist())
    assert {1, 2} <= ids and set(read_phenomena(str(root / label))) == {1, 2}
