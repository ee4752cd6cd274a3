"""The ISSLIDE release loader on a tree shaped like the one the authors' extraction writes.

The authors' code (github Ant89ne/ISSLIDE, MovingAreasExtraction) writes
``{delay}days/{zone}/{DDMonYYYY_DDMonYYYY}/phase|coherence/{id}_{k}.tif`` and
``{zone}/Segmentations/{interferogram}/{id}_{k}.tif``: float32 phase and coherence with nodata 0
(SNAP's Convert-Datatype), int8 masks, border patches of 101 x 100 or 100 x 99 pixels, ids cast to
uint8 (so area 259 is ``3_k`` and 256 is ``0_k``) and k numbered per zone. The tree here is
synthetic, built with rasterio in that shape (no file of theirs is used).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine

from isslide.cli import main
from isslide.dataset.isslide import IMPORT_MANIFEST, import_isslide, parse_dates, read_isslide
from isslide.dataset.split import n_held_out
from isslide.dataset.store import read_store
from isslide.errors import IsslideError

PS = 1.315e-4
IFGS = {6: ["02Jul2018_08Jul2018", "08Jul2018_14Jul2018"], 12: ["02Jul2018_14Jul2018"]}
# (zone, name, (height, width)); ids wrap: 3 is area 3 in Vanoise but area 259 in Queyras
PATCHES = [
    ("Vanoise", "3_0", (100, 100)),
    ("Vanoise", "3_1", (101, 100)),  # float-coordinate slicing: one row too many
    ("Vanoise", "17_2", (100, 99)),  # one column short
    ("Queyras", "3_0", (100, 100)),  # same (id, k) as in Vanoise: ids per zone / mod 256
    ("Queyras", "0_1", (100, 101)),  # area 256 cast to uint8
]


def tif(path, array, nodata, x0=6.5, y0=45.2):
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=array.shape[1],
        height=array.shape[0],
        count=1,
        dtype=array.dtype.name,
        crs="EPSG:4326",
        transform=Affine(PS, 0, x0, 0, -PS, y0),
        nodata=nodata,
    ) as dst:
        dst.write(array, 1)


def patch_arrays(shape, seed):
    rng = np.random.default_rng(seed)
    phase = rng.uniform(-np.pi, np.pi, shape).astype(np.float32)
    coh = rng.uniform(0.05, 1, shape).astype(np.float32)
    phase[:, :2] = 0.0  # SNAP nodata
    mask = np.zeros(shape, np.int8)
    mask[40:60, 40:60] = 1
    return phase, coh, mask


def authors_tree(root, extra=True):
    seed = 0
    for delay, ifgs in IFGS.items():
        for ifg in ifgs:
            for zone, name, shape in PATCHES:
                seed += 1
                phase, coh, mask = patch_arrays(shape, seed)
                base = root / f"{delay}days" / zone
                tif(base / ifg / "phase" / f"{name}.tif", phase, 0.0)
                tif(base / ifg / "coherence" / f"{name}.tif", coh, 0.0)
                tif(base / "Segmentations" / ifg / f"{name}.tif", mask, 0)  # nodata 0 quirk
    if extra:
        base = root / "6days" / "Vanoise" / IFGS[6][0]
        tiny, _, _ = patch_arrays((50, 50), 99)
        for sub in ("phase", "coherence"):
            tif(base / sub / "44_9.tif", tiny, 0.0)
        tif(root / "6days/Vanoise/Segmentations" / IFGS[6][0] / "44_9.tif", tiny.astype(np.int8), 0)
        (base / "phase" / "45_10.tif").write_bytes(b"not a tiff")
        (base / "coherence" / "45_10.tif").write_bytes(b"not a tiff")
        (root / "6days/Vanoise/Segmentations" / IFGS[6][0] / "45_10.tif").write_bytes(b"x")
        odd, _, _ = patch_arrays((100, 100), 98)
        tif(base / "phase" / "46_11.tif", odd, 0.0)  # no coherence, no mask
        (base / "phase" / "notes.txt").write_text("ignored")
    return root


def test_dates_in_snaps_style_are_parsed():
    assert parse_dates("02Jul2018_08Jul2018") == ("20180702", "20180708")
    assert parse_dates("20180702_20180708") == ("20180702", "20180708")
    assert parse_dates("Interf_1") == ("", "")


def test_authors_tree_imports_with_odd_patches_fitted(tmp_path):
    root = authors_tree(tmp_path / "ISSLIDE")
    arrays, index, report = read_isslide(str(root))
    n_good = sum(len(v) for v in IFGS.values()) * len(PATCHES)
    assert report["patches_found"] == n_good + 3
    assert report["imported"] == len(index) == n_good
    assert report["patch_size"] == 100
    per_ifg = len(IFGS[6]) + len(IFGS[12])
    assert report["cropped_to_size"] == 2 * per_ifg and report["padded_to_size"] == 1 * per_ifg
    assert report["skipped"] == {
        "no coherence file": 1,
        "not about 100 x 100 pixels": 1,
        "unreadable GeoTIFF": 1,
    }
    assert {f["reason"] for f in report["skipped_files"]} == set(report["skipped"])
    assert report["max_phenomenon_id"] == 17 and report["files_with_id_0"] == per_ifg
    assert report["phenomenon_ids_may_be_modulo_256"] and report["zone_in_sample_id"]
    assert arrays["phase"].shape == (n_good, 100, 100)
    assert len(np.unique(arrays["sample_id"])) == n_good
    assert set(index["reference"]) == {"20180702", "20180708"}
    assert set(index["delay"]) == {6, 12}

    def one(zone, ifg, pid, k):
        sel = (index["zone"] == zone) & (index["interferogram"] == ifg)
        sel &= (index["phenomenon_id"] == pid) & (index["k"] == k)
        (i,) = np.flatnonzero(sel)
        return i

    # the 101-row patch: its first 100 rows kept, values exact where valid
    i = one("Vanoise", IFGS[6][0], 3, 1)
    with rasterio.open(root / "6days/Vanoise" / IFGS[6][0] / "phase/3_1.tif") as src:
        raw = src.read(1)
    valid = arrays["valid"][i].astype(bool)
    np.testing.assert_array_equal(arrays["phase"][i][valid], raw[:100][valid])
    assert not valid[:, :2].any() and valid[:, 2:].all()  # nodata 0 columns; mask nodata 0 ignored
    # the 99-column patch: last column padded invalid
    i = one("Vanoise", IFGS[6][0], 17, 2)
    assert not arrays["valid"][i][:, 99].any() and arrays["valid"][i][:, 50].all()
    assert arrays["label"][i][40:60, 40:60].all() and arrays["label"][i].sum() == 400
    assert index["has_motion"].all()


def test_import_writes_the_manifest_and_never_aborts(tmp_path, capsys):
    root = authors_tree(tmp_path / "ISSLIDE")
    out = tmp_path / "ready"
    assert main(["import-isslide", str(root), "--out", str(out), "--eval-zone", "Queyras"]) == 0
    printed = capsys.readouterr().out
    assert "15 of 18 patches imported (6 cropped, 3 padded to 100 x 100, 3 skipped" in printed
    manifest = json.loads((out / IMPORT_MANIFEST).read_text())
    assert manifest["imported"] == 15 and manifest["cropped_to_size"] == 6
    assert manifest["evaluation_zones"] == ["Queyras"]
    train, ev = read_store(str(out / "train.npz")), read_store(str(out / "eval.npz"))
    assert len(train["sample_id"]) == manifest["train"] > 0
    assert len(ev["sample_id"]) == manifest["eval"] > 0
    assert train["phase"].shape[1:] == (100, 100)


def test_an_import_of_nothing_readable_is_one_error(tmp_path):
    root = tmp_path / "bad" / "6days" / "Z" / "02Jul2018_08Jul2018" / "phase"
    root.mkdir(parents=True)
    (root / "1_0.tif").write_bytes(b"x")
    with pytest.raises(IsslideError, match="no readable phase patch"):
        import_isslide(str(tmp_path / "bad"), str(tmp_path / "o"), ["Z"])


def test_explicit_patch_size(tmp_path):
    root = authors_tree(tmp_path / "ISSLIDE", extra=False)
    _, index, report = read_isslide(str(root), patch_size=101)
    assert report["patch_size"] == 101 and report["imported"] == len(index) == 15


def test_torch_dataset_over_the_imported_store(tmp_path):
    from isslide.dataset.torchdata import ISSLIDE

    root = authors_tree(tmp_path / "ISSLIDE", extra=False)
    out = tmp_path / "ready"
    manifest = import_isslide(str(root), str(out), ["Queyras"])
    ds = ISSLIDE(str(out), split="train")
    assert len(ds) == manifest["train"]
    sample = ds[0]
    assert sample["image"].shape == (3, 100, 100) and sample["image"].dtype.is_floating_point
    assert sample["mask"].shape == (100, 100) and str(sample["mask"].dtype) == "torch.int64"
    assert sample["zone"] == "Vanoise" and sample["reference"] in ("20180702", "20180708")
    v = sample["valid"]
    assert float(sample["image"][:, ~v].abs().max()) == 0.0
    np.testing.assert_allclose(
        (sample["image"][1][v] ** 2 + sample["image"][2][v] ** 2).numpy(), 1.0, atol=1e-5
    )
    assert set(sample["mask"].unique().tolist()) == {0, 1}
    fig = ds.plot({**sample, "prediction": sample["mask"].float()}, suptitle="x")
    assert len(fig.axes) == 4 and fig.axes[1].get_title() == "Phase (rad)"
    ev = ISSLIDE(str(out), split="eval", transforms=lambda s: {**s, "seen": True})
    assert len(ev) == manifest["eval"] and ev[0]["seen"] and ev[0]["zone"] == "Queyras"
    with pytest.raises(IsslideError, match="split"):
        ISSLIDE(str(out), split="test")


def test_import_with_the_authors_split_rule(tmp_path, capsys):
    """last_by_date: in each delay and zone, the latest interferogram(s) evaluate, every zone."""
    root = authors_tree(tmp_path / "ISSLIDE", extra=False)
    out = tmp_path / "ready"
    assert main(["import-isslide", str(root), "--out", str(out), "--split-rule", "last_by_date",
                 "--eval-fraction", "0.2", "--val-fraction", "0"]) == 0  # fmt: skip
    index = pd.read_csv(out / "index.csv", dtype={"reference": str, "secondary": str})
    for (_delay, _zone), group in index.groupby(["delay", "zone"]):
        ifgs = sorted(set(zip(group["reference"], group["secondary"], strict=True)))
        ev = group[group.split == "eval"]
        held = set(zip(ev["reference"], ev["secondary"], strict=True))
        assert held == set(ifgs[-n_held_out(len(ifgs), 0.2) :])
    assert set(index[index.split == "eval"]["zone"]) == set(index["zone"])  # every zone
    # the hash rule still needs an evaluation zone
    assert main(["import-isslide", str(root), "--out", str(tmp_path / "o2")]) == 1
    assert "--eval-zone" in capsys.readouterr().err
