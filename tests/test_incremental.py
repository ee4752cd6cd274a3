"""Incremental rebuilds, proved by Snakemake's own planning (dry-runs) on finished runs.

Two finished runs, each in a temporary copy of the repository (nothing is written in the
working tree):

* ``products``: a real-data-style stack (Sentinel-1 product names, SNAP backend) whose
  interferograms already exist (synthetic rasters), annotations with ``missing: no_motion``.
  Only the dataset rules run. Proves: editing one shapefile / adding the missing one replans
  one ``rasterize_labels`` job + the dataset rules and no InSAR step; adding an acquisition
  plans InSAR jobs for the new date and the new pairs only.
* ``tiny``: the real end-to-end tiny workflow (simulator + embedded InSAR + dataset + training),
  ``snakemake --cores 2 --configfile tests/configs/tiny.yaml``. Proves: editing one annotation
  shapefile replans no simulator/InSAR job, one ``rasterize_labels`` job, and exactly the jobs
  downstream of the dataset (training included); adding an acquisition plans InSAR jobs only for
  the new pairs.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import geopandas as gpd
import pytest
import yaml
from shapely.affinity import translate
from workflow_utils import INSAR, SIMULATOR, copy_repo

from isslide.dataset.synthetic import make_pairs, make_stack

REPO = Path(__file__).resolve().parents[1]
PER_PAIR_INSAR = INSAR - {"calibrate", "apply_orbit"}
STACK_DATASET = {"patch_centres", "extract_patches", "isslide_layout", "raw_dataset"}
GLOBAL_DATASET = {"assemble_dataset", "dataset_manifest"}

pytestmark = pytest.mark.workflow


@contextlib.contextmanager
def own_tmp(name: str):
    """A private temporary directory (pytest's shared basetemp may be rotated away by other
    pytest sessions during these long module fixtures)."""
    tmp = Path(tempfile.mkdtemp(prefix=f"isslide-incremental-{name}-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def snakemake(cwd: Path, *args: str, timeout: int = 600) -> str:
    env = dict(os.environ, PYTHONPATH=str(cwd / "src"))
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=timeout,
        text=True,
    )
    if proc.returncode:
        pytest.fail(f"snakemake {' '.join(args)} failed in {cwd}:\n{proc.stdout[-4000:]}")
    return proc.stdout


_JOB = re.compile(r"^(?:local)?rule (\w+):\n((?:[ \t]+\S.*\n?)*)", re.M)


def planned(cwd: Path, configfile: str, *args: str) -> list[tuple[str, str]]:
    """(rule, output line) of every job a dry-run plans (``all`` excluded). ``args``: targets
    and options (given before --configfile, which takes several values)."""
    out = snakemake(cwd, *args, "-n", "--cores", "2", "--configfile", configfile)
    jobs = []
    for rule, body in _JOB.findall(out):
        m = re.search(r"^\s+output: (.*)$", body, re.M)
        if rule != "all":
            jobs.append((rule, m.group(1) if m else ""))
    return jobs


def rules(jobs) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r, _ in jobs:
        counts[r] = counts.get(r, 0) + 1
    return counts


def move_first_polygon(shp: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = gpd.read_file(shp)
        frame.loc[0, "geometry"] = translate(frame.geometry.iloc[0], xoff=0.001, yoff=0.0005)
        frame.to_file(shp)


# ------------------------------------------------------------------------------ products stack
def s1_name(date: str, i: int) -> str:
    """A Sentinel-1 IW SLC product name on relative orbit 139 (S1A / S1B alternating)."""
    mission, offset = ("S1A", 73) if i % 2 == 0 else ("S1B", 27)
    orbit = offset + 138 + 175 * 120
    return f"{mission}_IW_SLC__1SDV_{date}T054020_{date}T054047_{orbit:06d}_027309_8A2B.zip"


def products_config(end: str, root: Path) -> dict:
    return {
        "backend": "snap",
        "snap": {"gpt": str(root / "bin" / "gpt")},
        "seed": 3,
        "revisit_days": 6,
        "delays": [6, 12],
        "dates": {"start": "2018-07-02", "end": end},
        "annotations": {"directory": "annotations", "missing": "no_motion"},
        "stacks": {
            "alps": {
                "source": "products",
                "products": "data/s1/*.zip",
                "track": 139,
                "zones": {
                    "west": {"bbox": [5.9, 44.9, 6.026, 45.1], "role": "train"},
                    "east": {"bbox": [6.026, 44.9, 6.2, 45.1], "role": "evaluation"},
                },
            }
        },
        "dataset": {"patch_size": 32},
    }


DATASET_TARGETS = [
    "results/dataset/manifest.json",
    "results/dataset/manifest.csv",
    "results/dataset/ready/train.npz",
    "results/dataset/ready/val.npz",
    "results/dataset/ready/eval.npz",
    "results/dataset/ready/index.csv",
    "results/dataset/ready/isslide/alps/patches.csv",
    "results/dataset/raw/alps",
    "results/dataset/centres/alps.gpkg",
]


@pytest.fixture(scope="module")
def products_run():
    with own_tmp("products") as tmp:
        yield _products_run(tmp)


def _products_run(tmp: Path) -> dict:
    root = copy_repo(tmp)
    dates = ["20180702", "20180708", "20180714", "20180720", "20180726"]
    (root / "data/s1").mkdir(parents=True)
    for i, d in enumerate(dates[:4]):
        (root / "data/s1" / s1_name(d, i)).write_bytes(b"")
        os.utime(root / "data/s1" / s1_name(d, i), (1e9, 1e9))  # old products
    gpt = root / "bin" / "gpt"  # runs tests/fake_gpt.py, a TEST DOUBLE standing in for gpt
    gpt.parent.mkdir()
    gpt.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{root}/tests/fake_gpt.py" "$@"\n')
    gpt.chmod(0o755)
    (root / "products.yaml").write_text(yaml.safe_dump(products_config("2018-07-20", root)))
    (root / "products5.yaml").write_text(yaml.safe_dump(products_config("2018-07-26", root)))
    # An earlier SNAP run made and kept the per-date orbit-corrected products; here gpt is
    # tests/fake_gpt.py, a TEST DOUBLE (SNAP cannot be installed on our machines).
    orbits = [f"results/work/alps/orbit/{d}.snap" for d in dates[:4]]
    snakemake(root, *orbits, "--cores", "2", "--configfile", "products.yaml")
    # ... and its interferograms (synthetic here, newer than the orbit products)
    stack = make_stack(
        str(root), "alps", pairs=make_pairs("2018-07-02", 4, (6, 12)), n_areas=6, seed=2
    )
    # one interferogram has no annotation file yet: no annotated motion (missing: no_motion)
    missing = stack["pairs"][1]
    for f in Path(missing["annotation"]).parent.glob(Path(missing["annotation"]).stem + ".*"):
        shutil.move(f, root / f.name)
    snakemake(root, *DATASET_TARGETS, "--cores", "2", "--configfile", "products.yaml")
    return {"root": root, "stack": stack, "missing": missing, "dates": dates}


def label_of(p) -> str:
    return f"results/labels/alps/{p['delay']}d/{p['reference']}_{p['secondary']}.tif"


def test_products_run_is_complete_and_idle(products_run):
    root = products_run["root"]
    assert planned(root, "products.yaml", *DATASET_TARGETS) == []
    assert (root / "results/dataset/ready/train.npz").exists()


def test_editing_one_shapefile_reruns_only_its_labels_and_the_dataset(products_run):
    root, p = products_run["root"], products_run["stack"]["pairs"][0]
    move_first_polygon(Path(p["annotation"]))
    jobs = planned(root, "products.yaml", *DATASET_TARGETS)
    counts = rules(jobs)
    assert not INSAR & set(counts), counts
    assert [o for r, o in jobs if r == "rasterize_labels"] == [label_of(p)]
    assert counts == dict.fromkeys(STACK_DATASET | GLOBAL_DATASET, 1) | {"rasterize_labels": 1}
    snakemake(root, *DATASET_TARGETS, "--cores", "2", "--configfile", "products.yaml")
    assert planned(root, "products.yaml", *DATASET_TARGETS) == []


def test_adding_a_missing_shapefile_reruns_only_its_labels_and_the_dataset(products_run):
    root, p = products_run["root"], products_run["missing"]
    ann = Path(p["annotation"])
    for f in root.glob(ann.stem + ".*"):
        shutil.move(f, ann.parent / f.name)
    jobs = planned(root, "products.yaml", *DATASET_TARGETS)
    counts = rules(jobs)
    assert not INSAR & set(counts), counts
    assert [o for r, o in jobs if r == "rasterize_labels"] == [label_of(p)]
    assert counts == dict.fromkeys(STACK_DATASET | GLOBAL_DATASET, 1) | {"rasterize_labels": 1}
    snakemake(root, *DATASET_TARGETS, "--cores", "2", "--configfile", "products.yaml")


def check_new_acquisition_plan(
    jobs, new_date: str, new_pairs: set[str], relabelled: frozenset[str] = frozenset()
) -> dict[str, int]:
    """Only the new pairs' InSAR jobs; per-date steps only for dates those pairs use (a date
    whose temporary orbit product is gone must be recomputed, the new date at least). Labels:
    the new pairs', plus ``relabelled`` (pairs whose annotation file is itself regenerated)."""
    counts = rules(jobs)
    pair_dates = {d for p in new_pairs for d in p.split("/")[1].split("_")}
    for r, out in jobs:
        if r in ("calibrate", "apply_orbit"):
            assert any(f"/{d}" in out for d in pair_dates), (r, out)
        elif r in PER_PAIR_INSAR:
            assert any(p in out for p in new_pairs), (r, out)
        elif r == "rasterize_labels":
            assert any(p in out for p in new_pairs | relabelled), (r, out)
    assert any(f"/{new_date}" in o for r, o in jobs if r == "apply_orbit"), counts
    assert counts.get("terrain_correct") == len(new_pairs), counts
    return counts


def test_adding_an_acquisition_plans_only_the_new_pairs(products_run):
    root, dates = products_run["root"], products_run["dates"]
    (root / "data/s1" / s1_name(dates[4], 4)).write_bytes(b"")
    try:
        jobs = planned(root, "products5.yaml", *DATASET_TARGETS)
    finally:
        (root / "data/s1" / s1_name(dates[4], 4)).unlink()
    counts = check_new_acquisition_plan(
        jobs, "20180726", {"6d/20180720_20180726", "12d/20180714_20180726"}
    )
    assert counts["rasterize_labels"] == 2
    assert SIMULATOR.isdisjoint(counts)


# ------------------------------------------------------------------------------ real tiny run
@pytest.fixture(scope="module")
def tiny_run():
    with own_tmp("tiny") as tmp:
        root = copy_repo(tmp)
        snakemake(root, "--cores", "2", "--configfile", "tests/configs/tiny.yaml", timeout=900)
        yield root


def test_tiny_edit_reruns_labels_and_everything_downstream_only(tiny_run):
    root = tiny_run
    cfg = "tests/configs/tiny.yaml"
    assert planned(root, cfg) == []
    # what depends on the dataset (training and evaluation included), per Snakemake itself
    downstream = rules(planned(root, cfg, "--forcerun", "assemble_dataset"))
    assert downstream.get("assemble_dataset") == 1 and downstream.get("dataset_manifest") == 1
    conf = yaml.safe_load((root / "tests/configs/tiny.yaml").read_text())
    shp = sorted((root / conf["annotations"]["directory"] / "tiny").glob("*d/*.shp"))[0]
    move_first_polygon(shp)
    jobs = planned(root, cfg)
    counts = rules(jobs)
    assert not (INSAR | SIMULATOR) & set(counts), counts
    rel = shp.relative_to(root / conf["annotations"]["directory"]).with_suffix(".tif")
    assert [o for r, o in jobs if r == "rasterize_labels"] == [f"results/labels/{rel}"]
    expected = dict(downstream) | dict.fromkeys(STACK_DATASET, 1) | {"rasterize_labels": 1}
    assert counts == expected


def test_tiny_adding_an_acquisition_plans_only_the_new_pairs(tiny_run):
    root = tiny_run
    conf = yaml.safe_load((root / "tests/configs/tiny.yaml").read_text())
    conf["dates"]["end"] = "2018-07-26"
    (root / "tiny5.yaml").write_text(yaml.safe_dump(conf))
    jobs = planned(root, "tiny5.yaml")
    counts = rules(jobs)
    assert "simulate_scene" not in counts, (
        f"adding an acquisition replans simulate_scene (and so every job after it): {counts}"
    )
    for r, out in jobs:
        if r == "simulate_acquisition":
            assert "/20180726" in out, (r, out)
    assert counts.get("simulate_acquisition") == 1, counts
    # The simulated annotators redraw the stack's shapefiles: a new interferogram changes the
    # `repetitions` of the areas it shows (not an InSAR input), so those labels are rasterised
    # again; the InSAR jobs stay the new pairs' only.
    resimulated = frozenset(
        re.search(r"/tiny/(\d+d/\d{8}_\d{8})\.shp", out).group(1)
        for r, out in jobs
        if r == "simulate_annotations"
    )
    assert {"6d/20180720_20180726", "12d/20180714_20180726"} <= resimulated
    check_new_acquisition_plan(
        jobs, "20180726", {"6d/20180720_20180726", "12d/20180714_20180726"}, resimulated
    )
