"""isslide.dataset: centres, patches, ISSLIDE layout + loader, store, split, raw dataset, manifest."""

from __future__ import annotations

import json
import os
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.windows import Window
from shapely.affinity import translate

from isslide.dataset.centres import area_maxima, compute_centres, read_centres, write_centres
from isslide.dataset.isslide import (
    GeoTiffTemplate,
    import_isslide,
    layout_paths,
    load_isslide,
    write_layout,
)
from isslide.dataset.patches import assemble, extract_stack_patches, window_origin
from isslide.dataset.raw import build_raw, write_manifest
from isslide.dataset.split import (
    assign_split,
    held_out,
    last_by_date,
    n_held_out,
    split_interferograms,
)
from isslide.dataset.store import StoreWriter, decoy_kinds, read_store
from isslide.dataset.synthetic import make_pairs, make_stack
from isslide.errors import IsslideError
from isslide.files import WGS84, apply
from isslide.labels import rasterize_labels

SIZE = 32
# the synthetic grid: lon 6.0 -> 6.0 + 400 px, lat 45.0 -> 45.0 - 300 px (1.315e-4 deg)
ZONES = {
    "west": {"bbox": [5.9, 44.9, 6.026, 45.1], "role": "train"},
    "east": {"bbox": [6.026, 44.9, 6.2, 45.1], "role": "evaluation"},
}


def build(root, n_areas=8, seed=3, pairs=None):
    s = make_stack(
        str(root),
        "demo",
        pairs=pairs or make_pairs("2018-07-02", 5, (6, 12, 18)),
        n_areas=n_areas,
        seed=seed,
    )
    for p in s["pairs"]:
        rasterize_labels(p["annotation"], p["layover_shadow"], p["coherence"], p["label"])
    return s


def labels_of(s):
    return [p["label"] for p in s["pairs"]]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    s = build(root)
    centres, grid = compute_centres(labels_of(s), "demo", ZONES, 10)
    cpath = str(root / "results/dataset/centres/demo.gpkg")
    write_centres(centres, cpath)
    ready = root / "results/dataset/ready"
    index = extract_stack_patches(
        "demo",
        cpath,
        s["pairs"],
        SIZE,
        str(ready / "stacks/demo.npz"),
        str(ready / "stacks/demo.csv"),
        threads=2,
    )
    write_layout(
        str(ready / "stacks/demo.npz"),
        str(ready / "stacks/demo.csv"),
        s["pairs"][0]["label"],
        str(ready / "isslide/demo"),
        str(ready / "isslide/demo/patches.csv"),
    )
    return {
        "root": root,
        "stack": s,
        "centres": cpath,
        "index": index,
        "grid": grid,
        "ready": ready,
    }


# ----------------------------------------------------------------------------- centres
def test_area_maxima_disk_and_ridge():
    yy, xx = np.mgrid[0:41, 0:41]
    disk = (yy - 20) ** 2 + (xx - 20) ** 2 <= 15**2
    assert [(r, c) for r, c, _ in area_maxima(disk, 10)] == [(20, 20)]
    ridge = np.zeros((12, 80), bool)
    ridge[2:9, 3:75] = True  # an elongated area: several centres along its axis
    pts = area_maxima(ridge, 10)
    assert len(pts) >= 5
    rows = {r for r, _, _ in pts}
    assert rows <= {4, 5, 6}
    for i, (r1, c1, _) in enumerate(pts):
        assert ridge[r1, c1]
        for r2, c2, _ in pts[i + 1 :]:
            assert (r1 - r2) ** 2 + (c1 - c2) ** 2 >= 100


def test_centres_gpkg_columns_and_georeference(built):
    c = read_centres(built["centres"])
    assert {"lon", "lat", "row", "col", "phenomenon_id", "k", "zone"} <= set(c.columns)
    assert c.crs == WGS84
    t = built["grid"].transform
    x, y = apply(t, c["col"] + 0.5, c["row"] + 0.5)
    assert np.allclose(x, c["lon"]) and np.allclose(y, c["lat"])
    assert np.allclose(c.geometry.x, c["lon"])
    # every centre lies on a pixel labelled with its id in at least one interferogram
    labs = []
    for p in built["stack"]["pairs"]:
        with rasterio.open(p["label"]) as src:
            labs.append(src.read(1))
    union = np.stack(labs)
    for row in c.itertuples():
        assert (union[:, row.row, row.col] == row.phenomenon_id).any()
    assert set(c["phenomenon_id"]) == set(built["stack"]["ids"].tolist())


def test_centres_are_deterministic_and_stable_under_an_edit(tmp_path):
    s = build(tmp_path, n_areas=8, seed=5)
    before, _ = compute_centres(labels_of(s), "demo", ZONES, 10)
    again, _ = compute_centres(labels_of(s), "demo", ZONES, 10)
    pd.testing.assert_frame_equal(before.drop(columns="geometry"), again.drop(columns="geometry"))
    # edit one interferogram's annotation: move the first area there
    p = s["pairs"][0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = gpd.read_file(p["annotation"])
        target = int(frame["id"].iloc[0])
        frame.loc[0, "geometry"] = translate(frame.geometry.iloc[0], xoff=0.004)
        frame.to_file(p["annotation"])
    rasterize_labels(p["annotation"], p["layover_shadow"], p["coherence"], p["label"])
    after, _ = compute_centres(labels_of(s), "demo", ZONES, 10)
    cols = ["phenomenon_id", "k", "row", "col"]
    b = before.loc[before["phenomenon_id"] != target, cols].reset_index(drop=True)
    a = after.loc[after["phenomenon_id"] != target, cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    changed = after.loc[after["phenomenon_id"] == target, cols].to_numpy()
    assert not np.array_equal(
        changed, before.loc[before["phenomenon_id"] == target, cols].to_numpy()
    )


# ----------------------------------------------------------------------------- patches
def test_window_origin_shifts_inside_never_pads():
    r0, c0 = window_origin(np.array([0, 50, 99]), np.array([199, 3, 100]), 32, 100, 200)
    assert r0.tolist() == [0, 34, 68] and c0.tolist() == [168, 0, 84]
    with pytest.raises(IsslideError, match="dataset.patch_size"):
        window_origin(np.array([5]), np.array([5]), 128, 100, 200)


def test_patches_match_rasters(built):
    store = read_store(str(built["ready"] / "stacks/demo.npz"))
    index = built["index"]
    assert len(index) == len(store["sample_id"]) == store["coherence"].shape[0]
    assert store["coherence"].shape[1:] == (SIZE, SIZE)
    np.testing.assert_array_equal(store["sample_id"], index["sample_id"].to_numpy())
    pairs = {(p["delay"], p["reference"], p["secondary"]): p for p in built["stack"]["pairs"]}
    rng = np.random.default_rng(0)
    for i in rng.choice(len(index), 25, replace=False):
        row = index.iloc[i]
        p = pairs[(int(row.delay), row.reference, row.secondary)]
        w = Window(int(row.window_col), int(row.window_row), SIZE, SIZE)
        with (
            rasterio.open(p["coherence"]) as a,
            rasterio.open(p["phase"]) as b,
            rasterio.open(p["label"]) as c,
        ):
            coh, pha, lab = a.read(1, window=w), b.read(1, window=w), c.read(1, window=w)
        valid = (lab >= 0) & (coh != -9999)
        np.testing.assert_array_equal(store["valid"][i], valid)
        np.testing.assert_array_equal(store["coherence"][i], np.where(valid, coh, 0))
        np.testing.assert_array_equal(store["phase"][i], np.where(valid, pha, 0))
        np.testing.assert_array_equal(store["label"][i], (lab > 0) & valid)
        assert bool(row.has_motion) == bool(((lab > 0) & valid).any())
        # the centre is inside its window
        assert row.window_row <= row.row < row.window_row + SIZE
        assert row.window_col <= row.col < row.window_col + SIZE


def test_no_move_samples_are_kept(built):
    index = built["index"]
    nomove = index[~index["has_motion"].astype(bool)]
    assert len(nomove) > 0 and index["has_motion"].astype(bool).sum() > 0
    store = read_store(str(built["ready"] / "stacks/demo.npz"))
    assert store["label"][nomove.index.to_numpy()].sum() == 0
    # every centre in a zone appears on every interferogram
    c = read_centres(built["centres"])
    assert len(index) == int((c["zone"] != "").sum()) * len(built["stack"]["pairs"])


def test_isslide_layout_is_georeferenced_and_loads_like_the_store(built):
    root = built["ready"] / "isslide/demo"
    index = built["index"]
    row = index.iloc[0]
    paths = layout_paths(
        int(row.delay),
        row.zone,
        f"{row.reference}_{row.secondary}",
        int(row.phenomenon_id),
        int(row.k),
    )
    assert paths["mask"].split(os.sep)[2] == "Segmentations"
    for key in ("phase", "coherence", "mask"):
        with rasterio.open(root / paths[key]) as src:
            assert src.crs == WGS84 and src.shape == (SIZE, SIZE)
            x0, y0 = apply(built["grid"].transform, row.window_col, row.window_row)
            assert src.transform.almost_equals(
                built["grid"].transform.__class__(
                    built["grid"].transform.a, 0, x0, 0, built["grid"].transform.e, y0
                )
            )
    arrays, loaded = load_isslide(str(root), "demo")
    store = read_store(str(built["ready"] / "stacks/demo.npz"))
    pos = {sid: i for i, sid in enumerate(store["sample_id"])}
    assert set(loaded["sample_id"]) == set(pos)
    order = np.array([pos[s] for s in arrays["sample_id"]])
    for key in ("coherence", "phase", "label", "valid"):
        np.testing.assert_array_equal(arrays[key], store[key][order])
    merged = loaded.merge(
        index[["sample_id", "has_motion", "delay", "zone"]], on="sample_id", suffixes=("", "_s")
    )
    assert (merged["has_motion"] == merged["has_motion_s"]).all() and (
        merged["delay"] == merged["delay_s"]
    ).all()


def test_geotiff_template_matches_rasterio(tmp_path):
    from affine import Affine

    tpl = GeoTiffTemplate((20, 30), np.float32, (1e-4, 1e-4), WGS84, -9999.0)
    assert tpl.fast
    a = np.random.default_rng(1).random((20, 30), dtype=np.float32)
    tpl.write(str(tmp_path / "a.tif"), a, 6.25, 45.5)
    with rasterio.open(tmp_path / "a.tif") as src:
        np.testing.assert_array_equal(src.read(1), a)
        assert src.transform.almost_equals(Affine(1e-4, 0, 6.25, 0, -1e-4, 45.5))
        assert src.nodata == -9999.0 and src.crs == WGS84
    with (
        rasterio.MemoryFile(tpl.encode(a, 6.25, 45.5)) as m1,
        rasterio.MemoryFile(tpl._rasterio_bytes(a, 6.25, 45.5)) as m2,
    ):
        assert m1.read() == m2.read()


def test_loader_errors_name_the_file(tmp_path):
    with pytest.raises(IsslideError, match="not found"):
        load_isslide(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(IsslideError, match="no patches found"):
        load_isslide(str(tmp_path / "empty"))


def test_import_isslide_release(built, tmp_path):
    sizes = import_isslide(
        str(built["ready"] / "isslide/demo"), str(tmp_path / "out"), ["east"], 0.2, 1
    )
    idx = pd.read_csv(tmp_path / "out/index.csv")
    assert sizes["train"] == int((idx["split"] == "train").sum()) > 0
    assert set(idx.loc[idx["split"] == "eval", "zone"]) <= {"east"}
    assert len(read_store(str(tmp_path / "out/train.npz"))["sample_id"]) == sizes["train"]
    with pytest.raises(IsslideError, match="--eval-zone nowhere"):
        import_isslide(str(built["ready"] / "isslide/demo"), str(tmp_path / "o2"), ["nowhere"])


# ----------------------------------------------------------------------------- split / store
def test_held_out_is_stable_when_adding_interferograms():
    keys = [f"p{i:03d}" for i in range(54)]
    first = held_out(keys, 0.2, 11)
    assert len(first) == 11 == n_held_out(54, 0.2)
    assert held_out(keys, 0.2, 11) == first
    grown = held_out(keys + ["new"], 0.2, 11)
    assert len(first ^ grown) <= 2 and len(first - grown) <= 1
    assert held_out(keys, 0.2, 12) != first
    assert n_held_out(2, 0.2) == 1 and n_held_out(5, 0.2) == 1 and n_held_out(1, 0.2) == 1


def test_assign_split_protocol():
    roles = np.array(["train", "train", "evaluation", "evaluation", ""])
    ho = np.array([False, True, True, False, True])
    motion = np.array([True, False, False, True, True])
    assert assign_split(roles, ho, motion).tolist() == [
        "train",
        "unused",
        "eval",
        "unused",
        "unused",
    ]
    assert assign_split(roles, ho, motion, motion_only=True).tolist() == [
        "train",
        "unused",
        "unused",
        "unused",
        "unused",
    ]


def test_validation_split_by_interferogram_seeded_disjoint_stable():
    keys = [f"2018{i:04d}_2018{i + 6:04d}" for i in range(54)]
    ev, val = split_interferograms(keys, 0.2, 0.25, 11)
    assert ev == held_out(keys, 0.2, 11)  # the evaluation set does not depend on validation
    assert not ev & val and val <= set(keys) - ev
    assert len(val) == n_held_out(54 - len(ev), 0.25) == 11
    assert split_interferograms(keys, 0.2, 0.25, 11) == (ev, val)  # seeded: reproducible
    assert split_interferograms(keys, 0.2, 0.25, 12)[1] != val
    # another ranking than the held-out one: not the next keys of the held-out order
    assert val != held_out(keys, (len(ev) + len(val)) / 54, 11) - ev
    # stable: one more interferogram changes validation by at most a swap or two
    ev2, val2 = split_interferograms(keys + ["20190101_20190107"], 0.2, 0.25, 11)
    assert len(val ^ val2) <= 4 and not ev2 & val2
    # no validation asked: none; one interferogram left: it is taken (training empty)
    assert split_interferograms(keys, 0.2, 0.0, 11)[1] == set()
    assert split_interferograms(keys[:2], 0.5, 0.5, 3)[1] == set(keys[:2]) - held_out(
        keys[:2], 0.5, 3
    )
    roles = np.array(["train", "train", "train", "evaluation", "evaluation"])
    ho = np.array([False, False, True, True, False])
    is_val = np.array([True, False, False, False, True])
    assert assign_split(roles, ho, np.ones(5, bool), is_val=is_val).tolist() == [
        "val",
        "train",
        "unused",
        "eval",
        "unused",
    ]


def test_assemble_writes_a_validation_store(built, tmp_path):
    ready = built["ready"]
    stacks = {
        "demo": {"store": str(ready / "stacks/demo.npz"), "index": str(ready / "stacks/demo.csv")}
    }
    out = {k: str(tmp_path / f"{k}.npz") for k in ("train", "val", "eval")}
    index = assemble(
        stacks,
        out["train"],
        out["eval"],
        str(tmp_path / "index.csv"),
        0.2,
        7,
        out_val=out["val"],
        val_fraction=0.34,
    )
    ifg = index["reference"] + "_" + index["secondary"]
    by = {k: set(ifg[index["split"] == k]) for k in ("train", "val", "eval")}
    assert all(by.values())
    assert not by["train"] & by["val"] and not by["val"] & by["eval"]
    assert not by["train"] & by["eval"]
    assert len(by["val"]) == n_held_out(9 - n_held_out(9, 0.2), 0.34) == 2
    assert set(index.loc[index["split"] == "val", "zone"]) == {"west"}  # train-role zone only
    for split in ("train", "val", "eval"):
        st = read_store(out[split], mmap=True)
        ids = index.loc[index["split"] == split, "sample_id"].to_numpy()
        np.testing.assert_array_equal(st["sample_id"], ids)
        assert "truth" not in st  # a stack without the simulator's truth
    again = assemble(
        stacks,
        out["train"],
        out["eval"],
        str(tmp_path / "i2.csv"),
        0.2,
        7,
        out_val=out["val"],
        val_fraction=0.34,
    )
    pd.testing.assert_series_equal(again["split"], index["split"])


def test_truth_and_decoy_members(built, tmp_path):
    """Simulated stacks: the truth rasters are cut at the patch windows into the store."""
    s = built["stack"]
    vis = 1.5
    pairs, expected = [], {}
    with rasterio.open(s["pairs"][0]["label"]) as src:
        h, w, transform = src.height, src.width, src.transform
    rng = np.random.default_rng(0)
    for k, p in enumerate(s["pairs"]):
        base = tmp_path / "truth" / f"{p['reference']}_{p['secondary']}"
        defo = rng.normal(0, 2.0, (h, w)).astype(np.float32)
        tvalid = (rng.random((h, w)) > 0.2).astype(np.uint8)
        decoys = np.zeros((h, w), np.uint8)
        decoys[10:60, 20:90] = 1
        decoys[100:150, 200:260] = 2
        paths = {}
        for name, array, nodata, tags in (
            ("truth_deformation", defo, -9999.0, None),
            ("truth_valid", tvalid, 255, None),
            ("decoys", decoys, 255, {"DECOY_KINDS": json.dumps({"1": "spot", "2": "blob"})}),
        ):
            paths[name] = str(base) + f"_{name}.tif"
            from isslide.files import write_raster

            write_raster(paths[name], array, transform, WGS84, nodata, tags=tags)
        pairs.append({**p, **paths})
        expected[k] = (defo, tvalid, decoys)
    store = str(tmp_path / "s.npz")
    index = extract_stack_patches(
        "demo", built["centres"], pairs, SIZE, store, str(tmp_path / "s.csv"), visibility_rad=vis
    )
    st = read_store(store)
    assert decoy_kinds(st) == {1: "spot", 2: "blob"}
    assert st["truth"].dtype == np.uint8 and st["truth"].shape == st["label"].shape
    plain = read_store(str(built["ready"] / "stacks/demo.npz"))
    np.testing.assert_array_equal(st["label"], plain["label"])  # nothing else changes
    nc = len(index) // len(pairs)
    for i in (0, len(index) - 1):
        r = index.iloc[i]
        defo, tvalid, decoys = expected[i // nc]
        win = np.s_[
            r["window_row"] : r["window_row"] + SIZE, r["window_col"] : r["window_col"] + SIZE
        ]
        valid = st["valid"][i] > 0
        want = (np.abs(defo[win]) >= vis) & (tvalid[win] == 1) & valid
        np.testing.assert_array_equal(st["truth"][i] > 0, want)
        np.testing.assert_array_equal(st["decoy"][i], np.where(valid, decoys[win], 0))
        assert r["truth_pixels"] == want.sum()
    # assemble carries the members and the kinds into the split stores
    stacks = {"demo": {"store": store, "index": str(tmp_path / "s.csv")}}
    out = {k: str(tmp_path / f"{k}.npz") for k in ("train", "val", "eval")}
    assemble(
        stacks,
        out["train"],
        out["eval"],
        str(tmp_path / "i.csv"),
        0.2,
        7,
        out_val=out["val"],
        val_fraction=0.25,
    )
    ev = read_store(out["eval"])
    assert "truth" in ev and "decoy" in ev and decoy_kinds(ev) == {1: "spot", 2: "blob"}
    # a truth raster on another grid, or some pairs without truth, is refused
    broken = [dict(pairs[0])] + [{k: v for k, v in p.items() if k != "decoys"} for p in pairs[1:]]
    with pytest.raises(IsslideError, match="truth rasters for some interferograms only"):
        extract_stack_patches(
            "demo",
            built["centres"],
            broken,
            SIZE,
            store,
            str(tmp_path / "b.csv"),
            visibility_rad=vis,
        )


def test_assemble_split_and_stores(built, tmp_path):
    ready = built["ready"]
    stacks = {
        "demo": {"store": str(ready / "stacks/demo.npz"), "index": str(ready / "stacks/demo.csv")}
    }
    out = {k: str(tmp_path / f"{k}.npz") for k in ("train", "eval")}
    index = assemble(stacks, out["train"], out["eval"], str(tmp_path / "index.csv"), 0.2, 7)
    csv = pd.read_csv(tmp_path / "index.csv", dtype={"reference": str, "secondary": str})
    for col in [
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
    ]:
        assert col in csv.columns
    ifgs = csv[["reference", "secondary", "held_out"]].drop_duplicates()
    assert ifgs["held_out"].sum() == n_held_out(len(ifgs), 0.2)
    train, ev = csv[csv["split"] == "train"], csv[csv["split"] == "eval"]
    assert set(train["zone"]) == {"west"} and set(ev["zone"]) == {"east"}
    assert not train["held_out"].any() and ev["held_out"].all()
    full = read_store(stacks["demo"]["store"])
    pos = {s: i for i, s in enumerate(full["sample_id"])}
    for split, frame in (("train", train), ("eval", ev)):
        st = read_store(out[split], mmap=True)
        np.testing.assert_array_equal(st["sample_id"], frame["sample_id"].to_numpy())
        rows = [pos[s] for s in frame["sample_id"]]
        np.testing.assert_array_equal(np.asarray(st["phase"]), full["phase"][rows])
    # the single-interferogram study keeps only patches with motion
    index = assemble(
        stacks, out["train"], out["eval"], str(tmp_path / "index.csv"), 0.2, 7, motion_only=True
    )
    used = index[index["split"] != "unused"]
    assert len(used) and used["has_motion"].astype(bool).all()


def test_store_writer_is_atomic(tmp_path):
    path = str(tmp_path / "s.npz")
    with pytest.raises(RuntimeError):
        with StoreWriter(path, 3, 4) as w:
            w.put(0, sample_id=[1, 2, 3])
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []
    with StoreWriter(path, 2, 4) as w:
        w.put(0, coherence=np.ones((2, 4, 4)), sample_id=[5, 6])
    a, b = read_store(path), read_store(path, mmap=True)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    open(path, "wb").write(b"garbage")
    with pytest.raises(IsslideError, match="unreadable training store"):
        read_store(path, mmap=True)


# ----------------------------------------------------------------------------- raw + manifest
def test_raw_dataset_and_manifest(built, tmp_path):
    s = built["stack"]
    raw = str(tmp_path / "raw/demo")
    manifest = build_raw("demo", s["pairs"], raw)
    p = s["pairs"][0]
    d = os.path.join(raw, f"{p['delay']}d", f"{p['reference']}_{p['secondary']}")
    for name, src in (("coherence.tif", p["coherence"]), ("labels.tif", p["label"])):
        # independent copies (never hard links) of the same bytes
        assert not os.path.samefile(os.path.join(d, name), src)
        assert open(os.path.join(d, name), "rb").read() == open(src, "rb").read()
    assert os.path.exists(os.path.join(d, "annotations", os.path.basename(p["annotation"])))
    entry = json.load(open(os.path.join(d, "manifest.json")))
    frame = gpd.read_file(p["annotation"])
    assert entry["polygons_total"] == len(frame) == sum(entry["polygons"].values())
    assert entry["reference"] == f"{p['reference'][:4]}-{p['reference'][4:6]}-{p['reference'][6:]}"
    assert manifest["totals"]["interferograms_per_delay"] == {"6": 4, "12": 3, "18": 2}
    assert pd.read_csv(os.path.join(raw, "manifest.csv")).shape[0] == 9

    ready = built["ready"]
    stacks = {
        "demo": {"store": str(ready / "stacks/demo.npz"), "index": str(ready / "stacks/demo.csv")}
    }
    assemble(
        stacks,
        str(tmp_path / "t.npz"),
        str(tmp_path / "e.npz"),
        str(tmp_path / "index.csv"),
        0.2,
        7,
    )
    counts = write_manifest(
        str(tmp_path / "index.csv"),
        [raw],
        {"demo": built["centres"]},
        str(tmp_path / "m.json"),
        str(tmp_path / "m.csv"),
    )
    idx = pd.read_csv(tmp_path / "index.csv")
    assert counts["moving_areas"] == 8
    assert counts["samples"] == len(idx)
    assert counts["samples_with_motion"] + counts["no_move_samples"] == counts["samples"]
    assert counts["train"]["samples"] == int((idx["split"] == "train").sum())
    assert counts["eval"]["samples"] == len(read_store(str(tmp_path / "e.npz"))["sample_id"])
    assert counts["interferograms_per_delay"] == {"6": 4, "12": 3, "18": 2}
    table = pd.read_csv(tmp_path / "m.csv")
    assert table.set_index("metric").loc["samples", "value"] == str(counts["samples"])


def test_layout_refresh_is_incremental(built, tmp_path):
    ready = built["ready"]
    out = tmp_path / "isslide"
    args = (
        str(ready / "stacks/demo.npz"),
        str(ready / "stacks/demo.csv"),
        built["stack"]["pairs"][0]["label"],
    )
    first = write_layout(*args, str(out), str(tmp_path / "list.csv"))
    n = len(built["index"])
    assert first == {"written": 3 * n, "unchanged": 0, "removed": 0}
    mine = out / "notes.txt"
    mine.write_text("a user's file")
    stale = out / "6d/west/19990101_19990107/phase/1_0.tif"
    again = write_layout(*args, str(out), str(tmp_path / "list.csv"))
    assert again == {"written": 0, "unchanged": 3 * n, "removed": 0}
    listing = pd.read_csv(tmp_path / "list.csv")
    assert len(listing) == n and all((out / p).exists() for p in listing["mask"])
    assert mine.read_text() == "a user's file" and not stale.exists()
    # a failed refresh leaves no digests: the next one rewrites everything
    os.unlink(out / ".isslide-digests.json")
    assert write_layout(*args, str(out), str(tmp_path / "list.csv"))["written"] == 3 * n


def test_import_isslide_cli(built, tmp_path, capsys):
    from isslide.cli import main

    root = str(built["ready"] / "isslide/demo")
    assert main(["import-isslide", root, "--out", str(tmp_path), "--eval-zone", "east"]) == 0
    assert (tmp_path / "train.npz").exists() and (tmp_path / "index.csv").exists()
    assert main(["import-isslide", root, "--out", str(tmp_path), "--eval-zone", "nowhere"]) == 1
    assert "isslide: --eval-zone nowhere" in capsys.readouterr().err


def test_a_stack_without_any_annotated_motion(tmp_path):
    s = make_stack(str(tmp_path), "demo", n_areas=3, active=0.0)
    for p in s["pairs"]:
        rasterize_labels(p["annotation"], p["layover_shadow"], p["coherence"], p["label"])
    centres, _ = compute_centres([p["label"] for p in s["pairs"]], "demo", ZONES)
    assert len(centres) == 0
    write_centres(centres, str(tmp_path / "c.gpkg"))
    st, ix = str(tmp_path / "st.npz"), str(tmp_path / "st.csv")
    assert len(extract_stack_patches("demo", str(tmp_path / "c.gpkg"), s["pairs"], 32, st, ix)) == 0
    out = [str(tmp_path / f) for f in ("t.npz", "e.npz", "i.csv")]
    assert len(assemble({"demo": {"store": st, "index": ix}}, *out, 0.2, 1)) == 0
    assert read_store(out[0])["coherence"].shape == (0, 32, 32)


def test_last_by_date_split_rule_holds_out_each_delays_latest_interferograms():
    """The authors' rule: per delay, the last 20 % of interferograms by date evaluate."""
    dates = [f"2018{m:02d}{d:02d}" for m in (7, 8, 9) for d in (1, 7, 13, 19, 25)]
    keys, dated = [], {}
    for delay, step in ((6, 1), (12, 2)):
        for a, b in zip(dates, dates[step:], strict=False):
            keys.append(f"{a}_{b}")
            dated[f"{a}_{b}"] = (delay, a, b)
    ev, val = split_interferograms(keys, 0.2, 0.25, 5, "last_by_date", dated)
    for delay in (6, 12):
        mine = sorted(k for k in keys if dated[k][0] == delay)
        k = n_held_out(len(mine), 0.2)
        assert {x for x in ev if dated[x][0] == delay} == set(mine[-k:])  # the latest, by date
    assert not ev & val and len(val) == n_held_out(len(keys) - len(ev), 0.25)
    # the seed moves validation only; the held-out set is the same for every seed
    assert split_interferograms(keys, 0.2, 0.25, 6, "last_by_date", dated)[0] == ev
    # groups are independent: one group of 4 -> its last 1 (rounded 0.8 -> 1)
    four = {f"k{i}": ("z", f"2018070{i}", f"2018071{i}") for i in range(4)}
    assert last_by_date(four, 0.2) == {"k3"}
    with pytest.raises(ValueError, match="no dates"):
        split_interferograms(keys, 0.2, 0.25, 5, "last_by_date", {})
    with pytest.raises(ValueError, match="dataset.split_rule"):
        split_interferograms(keys, 0.2, 0.25, 5, "by_zone")


def test_assign_split_without_roles_uses_every_zone():
    roles = np.array(["train", "evaluation", "train", "evaluation", ""])
    ho = np.array([True, True, False, False, True])
    is_val = np.array([False, False, True, False, False])
    got = assign_split(roles, ho, np.ones(5, bool), is_val=is_val, use_roles=False)
    assert got.tolist() == ["eval", "eval", "val", "train", "unused"]  # outside any zone: unused
