"""Bad inputs: each is refused (or, where the data stay usable, noted) with one clear line, before
the first InSAR job when it can be known then, and never leaves output that looks complete.

One table row per case: what is wrong, the expected exit code, a fragment of the expected
``isslide:`` line, what must not exist afterwards. Three kinds of rows:

* ``CONFIG`` rows (planning time): the same config goes through ``isslide check-config``,
  ``isslide plan`` (in process) and ``snakemake -n`` in an empty working directory; all three
  must agree (exit code and message) and nothing may be written.
* ``JOB`` rows (knowable only once the interferograms exist): a prepared tiny run (one pair's
  interferogram and label raster, made once per session under ``umask 002``) is copied, one of its
  files is broken, and Snakemake is asked for that pair's label raster only.
* the other tests: raw dataset independence, umask, weight files, docs.

Numbers in ``item`` refer to issue 15's list; ``own`` marks cases beyond it.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import torch
import yaml
from pyproj import CRS
from shapely.geometry import box
from test_foundation import product_names
from workflow_utils import copy_repo

from isslide.cli import main
from isslide.config import deep_update, fill_defaults
from isslide.errors import IsslideError
from isslide.preflight import scene_box, stages_from_command_line, stages_needed

REPO = Path(__file__).resolve().parents[1]
TINY = yaml.safe_load((REPO / "tests/configs/tiny.yaml").read_text())
DEM = str(REPO / "resources/dem/srtm3_N44W072_white_mountains.tif")
NOTHING = ("results", "resources/synthetic", "logs")

pytestmark = pytest.mark.workflow


# --- builders of the broken inputs ---------------------------------------------------------


def tiny(**patch) -> dict:
    """tests/configs/tiny.yaml (simulated stack, DEM by absolute path) with ``patch`` merged."""
    cfg = deep_update(TINY, {"simulation": {"dem": DEM}})
    return deep_update(cfg, patch)


def tiny_zones(**zones) -> dict:
    cfg = tiny()
    cfg["stacks"]["tiny"]["zones"] = zones
    return cfg


def layer(path: Path, polygons, crs="EPSG:4326") -> None:
    frame = gpd.GeoDataFrame(
        {
            "id": list(range(1, len(polygons) + 1)),
            "class": ["Landslide"] * len(polygons),
            "confidence": [2] * len(polygons),
            "repetitions": [1] * len(polygons),
        },
        geometry=polygons,
        crs=crs,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # 'repetitions' -> 'repetition' (DBF name limit)
        warnings.simplefilter("ignore")
        frame.to_file(path, engine="pyogrio")


FOUR = [box(6.0 + 0.02 * i, 45.0, 6.01 + 0.02 * i, 45.01).buffer(0.002, 16) for i in range(4)]
PAIRS = [
    ("6", "20180702", "20180708"),
    ("6", "20180708", "20180714"),
    ("6", "20180714", "20180720"),
]
PAIRS += [("12", "20180702", "20180714"), ("12", "20180708", "20180720")]


def products(work: Path, names=None, annotate=True, ext="shp") -> dict:
    """A real-data-style stack in ``work``: 4 Sentinel-1 product names (empty files, track 136)
    in data/s1, an annotation layer per pair (5 pairs), SNAP backend; returns the config."""
    (work / "data/s1").mkdir(parents=True)
    for name in names if names is not None else product_names(4):
        (work / "data/s1" / name).touch()
    if annotate:
        for delay, ref, sec in PAIRS:
            layer(work / f"annotations/alps/{delay}d/{ref}_{sec}.{ext}", FOUR)
    return {
        "backend": "snap",
        "delays": [6, 12],
        "dates": {"start": "2018-07-02", "end": "2018-07-20"},
        "annotations": {"directory": "annotations", "missing": "error", "extension": ext},
        "stacks": {
            "alps": {
                "source": "products",
                "products": "data/s1/*.zip",
                "zones": {
                    "west": {"bbox": [5.9, 44.9, 6.05, 45.2], "role": "train"},
                    "east": {"bbox": [6.05, 44.9, 6.2, 45.2], "role": "evaluation"},
                },
            }
        },
        "training": {"models": ["unet"], "device": "cpu"},
    }


def ann(work: Path, pair=0, ext="shp") -> Path:
    delay, ref, sec = PAIRS[pair]
    return work / f"annotations/alps/{delay}d/{ref}_{sec}.{ext}"


def truncate(path: Path, fraction=0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


def shapefile_parts(shp: Path) -> list[Path]:
    return sorted(shp.parent.glob(shp.stem + ".*"))


def p_listed_twice(w):
    cfg = products(w)
    listing = [f"data/s1/{n}" for n in product_names(4)]
    cfg["stacks"]["alps"]["products"] = listing + [f"./{listing[1]}"]
    return cfg


def p_two_products_one_acquisition(w):
    cfg = products(w)
    first = product_names(4)[0]
    (w / "data/s1" / (first[: -len("ABCD.zip")] + "FFFF.zip")).touch()
    return cfg


def p_one_single_pol(w):
    names = product_names(5)
    names[4] = names[4].replace("_1SDV_", "_1SSH_")
    cfg = products(w, names)
    cfg["dates"]["end"] = "2018-07-26"  # its date's pairs are dropped, the others planned
    return cfg


def p_no_product_with_pol(w):
    return products(w, [n.replace("_1SDV_", "_1SSH_") for n in product_names(4)], annotate=False)


def p_gpkg_where_shp_expected(w):
    cfg = products(w)
    cfg["annotations"]["missing"] = "no_motion"
    for part in shapefile_parts(ann(w, 2)):
        part.unlink()
    layer(ann(w, 2, "gpkg"), FOUR)
    return cfg


def p_upper_case_shp(w):
    cfg = products(w)
    cfg["annotations"]["missing"] = "no_motion"
    for part in shapefile_parts(ann(w, 1)):
        part.rename(part.with_suffix(part.suffix.upper()))
    return cfg


def p_missing_annotations(w):
    cfg = products(w)
    for k in (1, 3):
        for part in shapefile_parts(ann(w, k)):
            part.unlink()
    return cfg


def p_missing_with_other_extension(w):
    cfg = products(w)
    for part in shapefile_parts(ann(w, 0)):
        part.unlink()
    layer(ann(w, 0, "gpkg"), FOUR)
    return cfg


def p_truncated_shp(w):
    cfg = products(w)
    truncate(ann(w, 3))
    return cfg


def p_truncated_dbf(w):
    cfg = products(w)
    truncate(ann(w, 3).with_suffix(".dbf"), 0.7)
    return cfg


def p_shp_without_dbf(w):
    cfg = products(w)
    ann(w, 4).with_suffix(".dbf").unlink()
    return cfg


def p_wrong_prj(w):
    cfg = products(w)
    ann(w, 2).with_suffix(".prj").write_text(CRS.from_epsg(2154).to_wkt("WKT1_ESRI"))
    return cfg


def p_no_annotation_directory(w):
    cfg = products(w, annotate=False)
    cfg["annotations"]["directory"] = "annotators/2018"
    return cfg


def p_no_annotation_at_all(w):
    cfg = products(w, annotate=False)
    (w / "annotations/alps").mkdir(parents=True)
    cfg["annotations"]["missing"] = "no_motion"
    return cfg


def p_annotations_outside_aoi(w):
    cfg = products(w)
    cfg["stacks"]["alps"]["aoi"] = "POLYGON((5.9 45.05, 6.2 45.05, 6.2 45.2, 5.9 45.2, 5.9 45.05))"
    return cfg


def p_bad_aoi(w):
    cfg = products(w)
    cfg["stacks"]["alps"]["aoi"] = "POLYGON((5.9 44.9, 6.2 44.9, 6.2"
    return cfg


def p_zone_outside_aoi(w):
    cfg = products(w)
    cfg["stacks"]["alps"]["aoi"] = "POLYGON((5.9 44.9, 6.04 44.9, 6.04 45.2, 5.9 45.2, 5.9 44.9))"
    return cfg


def p_embedded_backend(w):
    cfg = products(w)
    cfg["backend"] = "embedded"
    return cfg


def p_missing_weights(w):
    cfg = products(w)
    cfg["training"]["models"] = ["unet", "fcn_p"]
    return cfg


def p_reference_table(w):
    cfg = products(w)
    cfg["evaluation"] = {"reference_table": "published/table1.csv"}
    return cfg


def t(cfg: dict) -> Callable[[Path], dict]:
    return lambda w: copy.deepcopy(cfg)


@dataclass
class Case:
    id: str
    item: str
    what: str
    setup: Callable[[Path], dict]
    rc: int
    message: str
    absent: tuple[str, ...] = NOTHING
    doc: str = ""  # the message's wording in docs/troubleshooting.md (default: ``message``)


CONFIG = [
    # --- item 4: duplicate products
    Case("listed-twice", "4", "the same product path listed twice", p_listed_twice, 0,
         "is listed twice (same file as"),
    Case("same-acquisition", "4", "two products of one acquisition slice (different ids)",
         p_two_products_one_acquisition, 1, "are two products of the same acquisition"),
    # --- item 5: polarisation
    Case("pol-dropped", "5", "a 1SSH product in a VV stack", p_one_single_pol, 0,
         "polarisations HH lack insar.polarisation VV", doc='lack insar.polarisation'),
    Case("pol-none", "5/own", "no product has the configured polarisation",
         p_no_product_with_pol, 1, "with polarisation VV", doc='is an IW SLC product with polarisation'),
    # --- items 6, 7, 8: annotation files
    Case("gpkg-for-shp", "6", "no_motion and a .gpkg where the .shp is expected",
         p_gpkg_where_shp_expected, 1, "is there instead; rename it"),
    Case("upper-case-SHP", "6", "no_motion and an upper-case .SHP", p_upper_case_shp, 1,
         ".SHP is there instead", doc='is there instead'),
    Case("missing-listed", "7", "two annotation files missing: listed at once at planning time",
         p_missing_annotations, 1,
         "2 of 5 annotation files of stack alps are missing: annotations/alps/6d/20180708_20180714.shp, annotations/alps/12d/20180702_20180714.shp",  # noqa: E501
         doc="annotation files of stack"),
    Case("missing-hint", "8", "missing .shp, a .gpkg of that name is there",
         p_missing_with_other_extension, 1,
         "annotations/alps/6d/20180702_20180708.shp: annotation file not found, but", doc='annotation file not found, but'),
    Case("no-annotation-dir", "own", "annotations.directory does not exist",
         p_no_annotation_directory, 1, "annotations.directory: annotators/2018/alps does not exist", doc="set annotations.directory to the annotators' folder"),
    Case("no-annotation-at-all", "own", "no_motion and not one annotation file",
         p_no_annotation_at_all, 1, "none of the 5 annotation files of stack alps exists", doc='even with annotations.missing: no_motion a stack needs some annotated motion'),
    # --- items 1, 2: broken annotation files, caught when planned
    Case("truncated-shp", "1", "half of a .shp cut away", p_truncated_shp, 1,
         "truncated shapefile: shape"),
    Case("truncated-dbf", "own", "a truncated .dbf", p_truncated_dbf, 1,
         "truncated attribute table"),
    Case("no-dbf", "own", "a .shp without its .dbf", p_shp_without_dbf, 1,
         "shapefile lacks its .dbf file", doc='shapefile lacks its'),
    Case("wrong-prj", "2", "EPSG:2154 declared on lon/lat polygons", p_wrong_prj, 1,
         "look like longitude/latitude: declare EPSG:4326"),
    Case("outside-aoi", "2", "every polygon outside the stack's area of interest",
         p_annotations_outside_aoi, 1, "every polygon lies outside stacks.alps.aoi", doc='every polygon lies outside stacks.'),
    Case("bad-aoi", "own", "stacks.<name>.aoi is not WKT", p_bad_aoi, 1,
         "stacks.alps.aoi: not valid WKT", doc='aoi: not valid WKT'),
    Case("zone-outside-aoi", "11", "a zone outside the area of interest", p_zone_outside_aoi, 1,
         "stacks.alps.zones.east.bbox: [6.05, 44.9, 6.2, 45.2] lies outside stacks.alps.aoi", doc='lies outside stacks.<name>.aoi'),
    Case("embedded-products", "own", "backend embedded with a stack of real products",
         p_embedded_backend, 1, "backend: embedded processes simulated stacks only"),
    Case("no-weights", "own", "fcn_p without its checkpoint (found only at training before)",
         p_missing_weights, 1, "training.weights.fcn_p: fcn_p needs a pretrained checkpoint", doc='needs a pretrained checkpoint and none is given'),
    Case("reference-table", "own", "evaluation.reference_table does not exist", p_reference_table,
         1, "evaluation.reference_table: published/table1.csv not found", doc='give the CSV of published values'),
    # --- item 10: delays and dates
    Case("delays-too-long", "10", "every delay longer than the date window",
         t(tiny(delays=[24, 30])), 1,
         "no interferogram fits: the acquisitions from 2018-07-02 to 2018-07-20 span 18 days", doc='no interferogram fits: the acquisitions from'),
    Case("one-delay-too-long", "10", "one delay longer than the window (others fit)",
         t(tiny(delays=[6, 24])), 0, "delay 24 d gives no pair", doc='d gives no pair'),
    # --- item 11: zones
    Case("reversed-bbox", "11", "a zone with lon_min > lon_max",
         t(tiny_zones(north={"bbox": [-71.277, 44.270, -71.303, 44.282], "role": "train"},
                      south={"bbox": [-71.303, 44.258, -71.277, 44.270], "role": "evaluation"})),
         1, "stacks.tiny.zones.north.bbox: lon_min -71.277 is not less than lon_max -71.303", doc='is not less than lon_max'),
    Case("overlapping-zones", "11", "train and evaluation zones overlap",
         t(tiny_zones(north={"bbox": [-71.303, 44.265, -71.277, 44.282], "role": "train"},
                      south={"bbox": [-71.303, 44.258, -71.277, 44.270], "role": "evaluation"})),
         1, "train zone 'north' [-71.303, 44.265, -71.277, 44.282] and evaluation zone 'south'", doc='overlap, so the evaluation would not be independent'),
    Case("zone-outside-scene", "11", "a zone outside the simulated scene",
         t(tiny_zones(north={"bbox": [-71.303, 44.270, -71.277, 44.282], "role": "train"},
                      south={"bbox": [-70.5, 44.0, -70.4, 44.1], "role": "evaluation"})),
         1, "stacks.tiny.zones.south.bbox: [-70.5, 44.0, -70.4, 44.1] lies outside the simulated", doc='lies outside the simulated scene'),
    Case("zone-not-degrees", "own", "a zone in metres (not lon/lat)",
         t(tiny_zones(north={"bbox": [350000, 4900000, 352000, 4902000], "role": "train"})),
         1, "is not a lon/lat box"),
    # --- item 12: what check-config used to accept
    Case("model-typo", "12", "a misspelled model name", t(tiny(training={"models": ["unett"]})),
         1, "training.models: unknown model 'unett'", doc='training.models: unknown model'),
    Case("gpkg-simulated", "12", "annotations.extension gpkg for a simulated stack",
         t(tiny(annotations={"extension": "gpkg"})), 1,
         "annotations.extension: gpkg, but the simulated stack(s) tiny make shapefiles", doc='make shapefiles; set annotations.extension: shp'),
    # --- item 13: dates
    Case("invalid-end", "13", "dates.end is not a calendar date",
         t(tiny(dates={"start": "2018-07-02", "end": "2018-06-31"})), 1,
         "dates.end: '2018-06-31' is not a valid date", doc='is not a valid date'),
    Case("invalid-start", "13", "dates.start is not a calendar date",
         t(tiny(dates={"start": "2018-13-02", "end": "2018-07-20"})), 1,
         "dates.start: '2018-13-02' is not a valid date", doc='is not a valid date'),
    # --- more of our own
    Case("dem-missing", "own", "simulation.dem names no file",
         t(tiny(simulation={"dem": "dem/nowhere.tif"})), 1,
         "dem/nowhere.tif: DEM file not found (simulation.dem)",
         doc="DEM file not found (simulation.dem)"),
    Case("snap-simulated", "own", "backend snap with a simulated stack",
         t(tiny(backend="snap")), 1, "backend: snap processes Sentinel-1 products"),
    Case("unknown-key", "own", "a misspelled top-level key", t(tiny(delay=[6])), 1,
         "unknown key 'delay'", doc='unknown key'),
    Case("end-before-start", "own", "dates.end before dates.start",
         t(tiny(dates={"start": "2018-07-20", "end": "2018-07-02"})), 1,
         "dates.end 2018-07-02 is before dates.start 2018-07-20", doc='is before dates.start'),
]  # fmt: skip


def isslide_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("isslide:")]


def run_cli(args, cwd: Path, capsys) -> tuple[int, str, str]:
    old = os.getcwd()
    os.chdir(cwd)
    try:
        rc = main(args)
    finally:
        os.chdir(old)
    out, err = capsys.readouterr()
    return rc, out, err


def snakemake(*args, cwd: Path, umask: int | None = None, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=(lambda: os.umask(umask)) if umask is not None else None,
    )


def selected(request, cases: list[Case]) -> list[Case]:
    """The rows of ``cases`` this pytest session runs (all, or those picked with -k)."""
    ids = set()
    for item in request.session.items:
        case = getattr(getattr(item, "callspec", None), "params", {}).get("case")
        if isinstance(case, Case):
            ids.add(case.id)
    return [c for c in cases if c.id in ids]


def run_all(function, items: list) -> list:
    """``function`` over ``items``, a few at a time: each is a Snakemake process, mostly its
    start-up, so running them side by side keeps the file within a few minutes."""
    with ThreadPoolExecutor(max(2, min(4, os.cpu_count() or 2))) as pool:
        return list(pool.map(function, items))


@pytest.fixture(scope="module")
def dry_runs(request):
    """Every selected CONFIG row set up in its own empty working directory, and its
    ``snakemake -n`` run: id -> (workdir, config path, files before, process)."""
    tmp = Path(tempfile.mkdtemp(prefix="isslide-bad-configs-"))
    rows = {}
    for case in selected(request, CONFIG):
        work = tmp / case.id / "work"
        work.mkdir(parents=True)
        path = tmp / case.id / "config.yaml"
        path.write_text(yaml.safe_dump(case.setup(work)))
        rows[case.id] = (work, path, sorted(p.relative_to(work) for p in work.rglob("*")))

    def dry_run(cid):
        work, path, _ = rows[cid]
        return snakemake(
            "-n", "--cores", "1", "--snakefile", str(REPO / "Snakefile"),
            "--configfile", str(path), cwd=work,
        )  # fmt: skip

    procs = run_all(dry_run, list(rows))
    yield {cid: (*rows[cid], proc) for cid, proc in zip(rows, procs, strict=True)}
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.parametrize("case", CONFIG, ids=[c.id for c in CONFIG])
def test_config_case(case, dry_runs, capsys):
    work, path, before, proc = dry_runs[case.id]
    # the CLI: check-config and plan run the same checks as the workflow
    for command in ("check-config", "plan"):
        rc, out, err = run_cli([command, "--configfile", str(path)], work, capsys)
        assert rc == case.rc, (command, out, err)
        if case.rc:
            lines = isslide_lines(err)
            assert len(lines) == 1 and case.message in lines[0], (command, err)
            assert lines[0].count("; ") >= 1, lines[0]  # what is wrong; the fix
        else:
            assert case.message in out, (command, out)
    # the workflow refuses it before any job (a dry-run plans all it would run)
    assert proc.returncode == case.rc, proc.stderr[-3000:]
    if case.rc:
        lines = isslide_lines(proc.stderr)
        assert len(lines) == 1 and case.message in lines[0], proc.stderr[-3000:]
    else:  # notes are Snakemake warnings (its log goes to stdout)
        lines = isslide_lines(proc.stdout + proc.stderr)
        assert any(case.message in line for line in lines), proc.stdout[-3000:]
    for rel in case.absent:
        assert not (work / rel).exists(), rel
    after = sorted(p.relative_to(work) for p in work.rglob("*") if ".snakemake" not in p.parts)
    assert after == before  # no input file removed, none added


def test_interferograms_can_be_computed_before_annotating(tmp_path, capsys):
    """Annotation files are checked only when the run reaches the labels: asking for the
    interferograms only (--until terrain_correct) plans, the full workflow lists what is missing."""
    work = tmp_path / "work"
    work.mkdir()
    cfg = products(work, annotate=False)
    (work / "annotations").mkdir()
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    args = ["-n", "--cores", "1", "--snakefile", str(REPO / "Snakefile"), "--configfile", str(path)]
    proc = snakemake(*args[:-2], "--until", "terrain_correct", *args[-2:], cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "terrain_correct" in proc.stdout
    proc = snakemake(*args, cwd=work)
    assert proc.returncode == 1 and "annotations.directory: annotations/alps does not exist" in (
        proc.stderr
    )
    rc, _, err = run_cli(["check-config", "--configfile", str(path)], work, capsys)
    assert rc == 1 and "annotations/alps does not exist" in err


def test_stages_needed():
    assert stages_needed() == {"insar", "dataset", "training"}
    assert stages_needed(until={"terrain_correct"}) == {"insar"}
    assert stages_needed(until={"rasterize_labels"}) == {"insar", "dataset"}
    assert stages_needed({"results/interferograms/a/6d/x_y/phase.tif"}) == {"insar"}
    assert stages_needed({"results/labels/a/6d/x_y.tif"}) == {"insar", "dataset"}
    assert stages_needed({"results/models/unet/model.pt"}) == {"insar", "dataset", "training"}
    assert stages_needed({"all"}) == {"insar", "dataset", "training"}


def test_stages_from_the_command_line():
    def stages(*args):
        return stages_from_command_line(["snakemake", *args])

    assert stages("-n", "--until", "terrain_correct", "--configfile", "c.yaml") == {"insar"}
    assert stages("results/interferograms/a/6d/x_y/phase.tif", "--cores", "2") == {"insar"}
    assert stages("--target-jobs", "terrain_correct:stack=a,delay=6", "--cores", "1") == {"insar"}
    assert stages("--cores", "2") == {"insar", "dataset", "training"}
    assert stages("--no-such-option") == {"insar", "dataset", "training"}


def test_scene_box_is_the_simulators():
    from isslide.simulate.terrain import scene_bounds

    for sim in (fill_defaults(tiny())["simulation"], {"center": [6.5, 45.3], "size_km": [40, 9]}):
        assert scene_box(sim) == pytest.approx(scene_bounds(sim), abs=1e-12)


# --- job-time cases on a prepared tiny run ---------------------------------------------------

PAIR = "tiny/6d/20180702_20180708"
LABEL = f"results/labels/{PAIR}.tif"
IFG = f"results/interferograms/{PAIR}"
SHP = f"resources/synthetic/annotations/{PAIR}.shp"
GROUP_UMASK = 0o002


@pytest.fixture(scope="session")
def prepared():
    """One pair of the tiny config up to its label raster (simulator, 8 InSAR steps, labels),
    run under a group-friendly umask; each JOB case works on a copy."""
    tmp = Path(tempfile.mkdtemp(prefix="isslide-bad-inputs-"))
    try:
        root = copy_repo(tmp / "repo")
        proc = snakemake(
            LABEL, "--cores", "2", "--configfile", "tests/configs/tiny.yaml", cwd=root,
            umask=GROUP_UMASK,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-4000:]
        yield root
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def rewrite_raster(path: Path, fill) -> None:
    with rasterio.open(path) as src:
        profile, data = src.profile, src.read(1)
    data = fill(data)
    path.unlink()
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.astype(profile["dtype"]), 1)


def j_truncated_shp(root):
    truncate(root / SHP)


def j_wrong_prj(root):
    (root / SHP).with_suffix(".prj").write_text(CRS.from_epsg(2154).to_wkt("WKT1_ESRI"))


def j_nan_phase(root):
    rewrite_raster(root / IFG / "phase.tif", lambda a: np.full_like(a, np.nan))


def j_constant_coherence(root):
    rewrite_raster(root / IFG / "coherence.tif", lambda a: np.full_like(a, 0.42))


def j_corrupt_phase(root):
    truncate(root / IFG / "phase.tif")


def j_all_layover(root):
    rewrite_raster(root / IFG / "layover_shadow.tif", lambda a: np.full_like(a, 255))


def j_corrupt_coherence_header(root):
    path = root / IFG / "coherence.tif"
    path.write_bytes(b"\0" * 64 + path.read_bytes()[64:])


JOB = [
    Case("job-truncated-shp", "1", "half of a (simulated) annotation .shp cut away",
         j_truncated_shp, 1, "truncated shapefile: shape", (LABEL,)),
    Case("job-wrong-prj", "2", "EPSG:2154 declared on lon/lat polygons", j_wrong_prj, 1,
         "but fall inside it read as EPSG:4326: the layer's CRS (.prj) is wrong", (LABEL,), doc='but fall inside it read as'),
    Case("job-nan-phase", "3", "an all-NaN phase", j_nan_phase, 1,
         "every pixel of the phase is NaN or nodata, made by rule terrain_correct for tiny 6d "
         "20180702_20180708", (LABEL,), doc="is NaN or nodata"),
    Case("job-constant-coherence", "3", "a constant coherence", j_constant_coherence, 1,
         "the coherence has the single value 0.42", (LABEL,), doc='has the single value'),
    Case("job-all-layover", "3/own", "layover/shadow/nodata everywhere", j_all_layover, 1,
         "every pixel is layover, shadow or nodata", (LABEL,)),
    Case("job-corrupt-phase", "9", "a truncated phase.tif", j_corrupt_phase, 1,
         f"/{IFG}/phase.tif: corrupt or unreadable GeoTIFF", (LABEL,),
         doc="corrupt or unreadable GeoTIFF"),
    Case("job-corrupt-header", "9", "a coherence.tif with a damaged header",
         j_corrupt_coherence_header, 1, "made by rule terrain_correct for tiny 6d 20180702_20180708"
         " (log: logs/terrain_correct/tiny/6d/20180702_20180708.log); delete it and rerun", (LABEL,),
         doc="delete it and rerun snakemake, which remakes it"),
]  # fmt: skip


@pytest.fixture(scope="module")
def job_runs(request, prepared):
    """Every selected JOB row on its own copy of the prepared run, Snakemake asked for the pair's
    label raster: id -> (copy, process)."""
    tmp = Path(tempfile.mkdtemp(prefix="isslide-bad-jobs-"))
    roots = {}
    for case in selected(request, JOB):
        root = tmp / case.id
        shutil.copytree(prepared, root, symlinks=True)
        case.setup(root)
        roots[case.id] = root

    def job(cid):
        return snakemake(
            LABEL, "--cores", "1", "--configfile", "tests/configs/tiny.yaml", cwd=roots[cid]
        )

    procs = run_all(job, list(roots))
    yield {cid: (roots[cid], proc) for cid, proc in zip(roots, procs, strict=True)}
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.parametrize("case", JOB, ids=[c.id for c in JOB])
def test_job_case(case, job_runs):
    root, proc = job_runs[case.id]
    assert proc.returncode == case.rc, proc.stderr[-3000:]
    lines = isslide_lines(proc.stderr)
    assert len(lines) == 1 and case.message in lines[0], proc.stderr[-3000:]
    for rel in case.absent:
        assert not (root / rel).exists(), rel
    # the bad file is reported, not silently remade: no upstream job ran
    assert "rule terrain_correct:" not in proc.stdout + proc.stderr


def test_prepared_run_follows_the_umask(prepared):
    """Under umask 002 every file the workflow wrote is group-writable (item 15)."""
    wrong = []
    made = [prepared / top for top in ("results", "resources/synthetic", "logs")]
    made += [d for d in (prepared / "benchmarks").iterdir() if d.is_dir()]  # not the scripts
    for top in made:
        for p in top.rglob("*"):
            want = 0o775 if p.is_dir() else 0o664
            if p.stat().st_mode & 0o777 != want:
                wrong.append(f"{p.relative_to(prepared)} {oct(p.stat().st_mode & 0o777)}")
    assert (prepared / LABEL).exists()
    assert not wrong, wrong[:20]


# --- item 14: the raw dataset never shares a file with its inputs ----------------------------


def test_raw_dataset_is_independent_of_its_inputs(tmp_path):
    from isslide.dataset.raw import build_raw
    from isslide.dataset.synthetic import make_pairs, make_stack
    from isslide.labels import rasterize_labels

    stack = make_stack(str(tmp_path), "s", pairs=make_pairs("2018-07-02", 3, (6,)), n_areas=3)
    for p in stack["pairs"]:
        rasterize_labels(p["annotation"], p["layover_shadow"], p["coherence"], p["label"])
    out = tmp_path / "raw/s"
    build_raw("s", stack["pairs"], str(out))
    p = stack["pairs"][0]
    d = out / f"{p['delay']}d/{p['reference']}_{p['secondary']}"
    pairs = [(d / "phase.tif", p["phase"]), (d / "labels.tif", p["label"])]
    pairs += [(d / "annotations" / Path(f).name, f) for f in shapefile_parts(Path(p["annotation"]))]
    for copied, source in pairs:
        assert os.stat(copied).st_ino != os.stat(source).st_ino and os.stat(copied).st_nlink == 1
    copied_shp = (d / "annotations" / Path(p["annotation"]).name).read_bytes()
    # an annotator edits the input in place: the raw dataset does not change
    with open(p["annotation"], "r+b") as fh:
        fh.seek(200)
        fh.write(b"\xff" * 16)
    assert (d / "annotations" / Path(p["annotation"]).name).read_bytes() == copied_shp
    # a failing rebuild (the corrupted input) leaves the previous complete dataset, no partial one
    with pytest.raises(IsslideError):
        truncate(Path(p["annotation"]))
        build_raw("s", stack["pairs"], str(out))
    assert (out / "manifest.json").exists()
    assert [q.name for q in out.parent.iterdir()] == ["s"]


def test_raw_dataset_is_written_atomically(tmp_path):
    from isslide.dataset.raw import build_raw
    from isslide.dataset.synthetic import make_pairs, make_stack

    stack = make_stack(str(tmp_path), "s", pairs=make_pairs("2018-07-02", 2, (6,)), n_areas=2)
    pairs = [dict(p, label=p["phase"]) for p in stack["pairs"]]
    truncate(Path(pairs[0]["annotation"]))
    with pytest.raises(IsslideError, match="truncated shapefile"):
        build_raw("s", pairs, str(tmp_path / "raw/s"))
    assert list((tmp_path / "raw").iterdir()) == []


# --- item 15: outputs follow the umask -------------------------------------------------------


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def test_atomic_writers_follow_the_umask(tmp_path):
    from affine import Affine

    from isslide import files as dio
    from isslide.dataset import store
    from isslide.evaluate import atomic_text
    from isslide.train import atomic_write_bytes

    arrays = {
        "coherence": np.zeros((2, 4, 4), np.float32),
        "phase": np.zeros((2, 4, 4), np.float32),
        "label": np.zeros((2, 4, 4), np.uint8),
        "valid": np.ones((2, 4, 4), np.uint8),
        "sample_id": np.arange(2),
    }
    grid = Affine(0.1, 0, 6, 0, -0.1, 45)
    for mask, want in ((0o002, 0o664), (0o022, 0o644), (0o077, 0o600)):
        d = tmp_path / f"m{mask:o}"
        with umask(mask):
            dio.write_json(str(d / "a.json"), {})
            dio.write_csv(str(d / "a.csv"), pd.DataFrame({"a": [1]}))
            dio.write_raster(str(d / "a.tif"), np.zeros((3, 3), np.int32), grid, dio.WGS84, 0)
            with dio.atomic_dir(str(d / "folder")) as tmp:
                Path(tmp, "x").write_text("x")
            store.write_store(str(d / "s.npz"), arrays)
            with store.StoreWriter(str(d / "w.npz"), 2, 4) as w:
                w.put(0, **arrays)
            atomic_write_bytes(str(d / "model.pt"), b"x")
            atomic_text(str(d / "table.csv"), "a\n")
            dio.write_json(str(d / "sim.json"), {}, indent=1)
            dio.write_npz(str(d / "sim.npz"), a=np.zeros(2))
            dio.write_bands(str(d / "slc.tif"), np.zeros((2, 3, 3), np.int16))
        for p in d.rglob("*"):
            expect = (0o777 & ~mask) if p.is_dir() else want
            assert p.stat().st_mode & 0o777 == expect, (p.name, oct(p.stat().st_mode))


# --- item 16: weight files --------------------------------------------------------------------


class _Planted:
    """A pickle that runs code when unpickled (what a planted checkpoint would do)."""

    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _planted_bytes(marker: Path) -> bytes:
    obj = _Planted()
    obj.marker = str(marker)
    buf = io.BytesIO()
    torch.save({"x": obj}, buf)
    return buf.getvalue()


def test_a_planted_cached_checkpoint_never_runs(tmp_path, monkeypatch):
    from isslide.models import build_model
    from isslide.models.segmentation import ARCH

    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    cache = tmp_path / "hub/checkpoints"
    cache.mkdir(parents=True)
    marker = tmp_path / "pwned"
    (cache / os.path.basename(ARCH["fcn"][1].url)).write_bytes(_planted_bytes(marker))
    with pytest.raises(IsslideError, match="does not match the hash 1167a1af in its name"):
        build_model("fcn_p", {"download": True})
    assert not marker.exists()


def test_downloaded_checkpoints_are_hash_checked_and_loaded_weights_only(tmp_path, monkeypatch):
    import hashlib

    from isslide.models.segmentation import cached_checkpoint, load_state_file

    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    good = tmp_path / "src/good.pth"
    good.parent.mkdir()
    torch.save({"w": torch.zeros(2)}, good)
    digest = hashlib.sha256(good.read_bytes()).hexdigest()[:8]
    named = good.with_name(f"model-{digest}.pth")
    good.rename(named)
    path = cached_checkpoint(named.as_uri(), "training.weights.fcn_p")  # downloads (file://)
    assert Path(path).parent == tmp_path / "hub/checkpoints"
    assert list(load_state_file(path, "f")) == ["w"]
    assert cached_checkpoint(named.as_uri(), "f") == path  # cached: checked again, same file
    # a download whose bytes do not match the name's hash is refused and not kept
    wrong = tmp_path / "src/other-0badc0de.pth"
    wrong.write_bytes(named.read_bytes())
    with pytest.raises(IsslideError, match="downloading .* failed"):
        cached_checkpoint(wrong.as_uri(), "training.weights.fcn_p")
    assert not (tmp_path / "hub/checkpoints" / wrong.name).exists()
    # even with a matching hash, a pickle that runs code is refused (weights_only)
    marker = tmp_path / "pwned"
    planted = tmp_path / "src/planted.pth"
    planted.write_bytes(_planted_bytes(marker))
    digest = hashlib.sha256(planted.read_bytes()).hexdigest()[:8]
    planted = planted.rename(planted.with_name(f"planted-{digest}.pth"))
    with pytest.raises(IsslideError, match="not a readable PyTorch state dict"):
        load_state_file(cached_checkpoint(planted.as_uri(), "f"), "f")
    assert not marker.exists()


# --- docs: every message of the table is in the troubleshooting page --------------------------


def test_troubleshooting_lists_the_messages():
    page = (REPO / "docs/troubleshooting.md").read_text()
    flat = " ".join(page.split())
    for case in CONFIG + JOB:
        assert (case.doc or case.message) in flat, (case.id, case.doc or case.message)
    readme = (REPO / "README.md").read_text()
    for needed in ("--unlock", "--rerun-incomplete", "touch", "docs/troubleshooting.md"):
        assert needed in readme, needed
