"""The eight embedded steps through files: a synthetic pair end to end, and bad inputs."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from test_insar_synth import make_pair, output_grid_for, write_stack

from isslide.errors import IsslideError
from isslide.geometry import Orbit
from isslide.insar import run_step
from isslide.insar.products import ProductReader

PARAMS = {"insar": {}, "backend": "embedded"}
REF, SEC = "20180702", "20180708"


def circ_std(d):
    return math.sqrt(-2 * math.log(abs(np.mean(np.exp(1j * np.asarray(d))))))


def step(name, inputs, outputs):
    run_step(name, "embedded", inputs, outputs, PARAMS, threads=2)


def run_chain(stack: Path, work: Path, out: Path):
    for d in (REF, SEC):
        step(
            "calibrate",
            {"slc": stack / f"slc/{d}.tif", "metadata": stack / f"slc/{d}.json"},
            {"product": work / f"cal/{d}.tif"},
        )
        step(
            "apply_orbit", {"product": work / f"cal/{d}.tif"}, {"product": work / f"orbit/{d}.tif"}
        )
    dem = stack / "dem.tif"
    step(
        "coregister",
        {
            "reference": work / f"orbit/{REF}.tif",
            "secondary": work / f"orbit/{SEC}.tif",
            "dem": dem,
        },
        {"product": work / "coregistered.tif"},
    )
    step(
        "interferogram",
        {"product": work / "coregistered.tif"},
        {"product": work / "interferogram.tif"},
    )
    step(
        "remove_topographic_phase",
        {"product": work / "interferogram.tif", "dem": dem},
        {"product": work / "topo_removed.tif"},
    )
    step("goldstein", {"product": work / "topo_removed.tif"}, {"product": work / "goldstein.tif"})
    step("multilook", {"product": work / "goldstein.tif"}, {"product": work / "multilooked.tif"})
    step(
        "terrain_correct",
        {"product": work / "multilooked.tif", "dem": dem},
        {
            "coherence": out / "coherence.tif",
            "phase": out / "phase.tif",
            "layover_shadow": out / "layover_shadow.tif",
        },
    )


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    root = tmp_path_factory.mktemp("chain")
    pair = make_pair(seed=4, shift=(0.3, -0.4), gamma=0.8)
    write_stack(root / "stack", pair)
    run_chain(root / "stack", root / "work", root / "out")
    return root, pair


def test_chain_recovers_shift_phase_and_coherence(chain):
    root, pair = chain
    with ProductReader(root / "work/coregistered.tif") as r:
        co = r.meta["coregistration"]
    # the synthetic secondary holds at (l, m) what the geometry puts at (l, m) + shift
    assert co["residual_line"] == pytest.approx(-pair["shift"][0], abs=0.05)
    assert co["residual_sample"] == pytest.approx(-pair["shift"][1], abs=0.05)
    with rasterio.open(root / "out/phase.tif") as ds:
        phase = ds.read(1)
        transform, width, height = output_grid_for(pair["geometry"])
        assert ds.crs.to_epsg() == 4326 and ds.nodata == -9999 and ds.dtypes[0] == "float32"
        assert (ds.width, ds.height) == (width, height) and ds.transform.almost_equals(transform)
    with rasterio.open(root / "out/coherence.tif") as ds:
        coh = ds.read(1)
    with rasterio.open(root / "out/layover_shadow.tif") as ds:
        mask = ds.read(1)
        assert ds.nodata == 255 and ds.dtypes[0] == "uint8"
    ok = (phase != -9999) & (mask == 0)
    assert ok.mean() > 0.95
    assert np.all(np.abs(phase[ok]) <= math.pi + 1e-6)
    # no deformation, no atmosphere: flat-earth + topography removed leaves a flat phase
    assert circ_std(phase[ok]) < 0.3
    assert abs(float(coh[ok].mean()) - 0.8) < 0.1
    assert np.all((coh[ok] >= 0) & (coh[ok] <= 1))


def test_intermediate_products_carry_metadata(chain):
    root, _ = chain
    with ProductReader(root / "work/multilooked.tif") as r:
        assert r.meta["kind"] == "multilooked"
        assert r.meta["looks"] == {"azimuth": 2, "range": 8}
        assert r.meta["reference"]["orbit"]["applied"] == "precise"
        assert r.meta["history"][-1] == "multilook"
    with ProductReader(root / f"work/cal/{REF}.tif") as r:
        assert r.meta["orbit"]["applied"] == "annotated" and "truth" not in r.meta
    assert not list((root / "work").rglob("*.tmp"))


# -- bad input: one-line IsslideError naming the file, and no output ---------------------------
@pytest.fixture()
def stack(tmp_path):
    pair = make_pair(seed=9, shift=(0.0, 0.0), relief=150.0)
    return write_stack(tmp_path / "stack", pair), pair


def _calibrate(stack, out):
    step(
        "calibrate",
        {"slc": stack / f"slc/{REF}.tif", "metadata": stack / f"slc/{REF}.json"},
        {"product": out},
    )


def _expect_error(fn, match, output):
    with pytest.raises(IsslideError, match=match) as err:
        fn()
    assert "\n" not in str(err.value)
    assert not Path(output).exists()
    assert (
        not [p for p in Path(output).parent.glob("*.tmp")] if Path(output).parent.exists() else True
    )


def test_corrupt_slc(stack, tmp_path):
    root, _ = stack
    (root / f"slc/{REF}.tif").write_bytes(b"II*\x00garbage" * 10)
    out = tmp_path / "cal.tif"
    _expect_error(lambda: _calibrate(root, out), f"{REF}.tif", out)


def test_truncated_slc(stack, tmp_path):
    root, _ = stack
    path = root / f"slc/{REF}.tif"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    out = tmp_path / "cal.tif"
    _expect_error(lambda: _calibrate(root, out), f"{REF}.tif.*(truncated|corrupt)", out)


@pytest.mark.parametrize("key", ["orbit", "calibration", "geometry"])
def test_missing_metadata(stack, tmp_path, key):
    root, _ = stack
    path = root / f"slc/{REF}.json"
    meta = json.loads(path.read_text())
    del meta[key]
    path.write_text(json.dumps(meta))
    out = tmp_path / "cal.tif"
    _expect_error(lambda: _calibrate(root, out), f"{REF}.json: missing metadata key '{key}", out)


def _orbit_products(root, work):
    for d in (REF, SEC):
        step(
            "calibrate",
            {"slc": root / f"slc/{d}.tif", "metadata": root / f"slc/{d}.json"},
            {"product": work / f"cal/{d}.tif"},
        )
        step(
            "apply_orbit", {"product": work / f"cal/{d}.tif"}, {"product": work / f"orbit/{d}.tif"}
        )


def test_dem_not_covering_the_scene(stack, tmp_path):
    root, pair = stack
    work = tmp_path / "work"
    _orbit_products(root, work)
    small = tmp_path / "small_dem.tif"
    with rasterio.open(root / "dem.tif") as ds:
        profile = ds.profile
        data = ds.read(1)
        half = data[: data.shape[0] // 3]
        profile.update(height=half.shape[0])
    with rasterio.open(small, "w", **profile) as ds:
        ds.write(half, 1)
    out = work / "coregistered.tif"
    _expect_error(
        lambda: step(
            "coregister",
            {
                "reference": work / f"orbit/{REF}.tif",
                "secondary": work / f"orbit/{SEC}.tif",
                "dem": small,
            },
            {"product": out},
        ),
        "small_dem.tif.*covers",
        out,
    )


def test_terrain_correction_with_a_dem_not_covering_the_scene(chain, tmp_path):
    root, _ = chain
    small = tmp_path / "small_dem.tif"
    with rasterio.open(root / "stack/dem.tif") as ds:
        profile = ds.profile
        data = ds.read(1)[:, : ds.width // 3]
        profile.update(width=data.shape[1])
    with rasterio.open(small, "w", **profile) as ds:
        ds.write(data, 1)
    out = tmp_path / "out"
    outputs = {k: out / f"{k}.tif" for k in ("coherence", "phase", "layover_shadow")}
    with pytest.raises(IsslideError, match="small_dem.tif: no height for .* output pixels"):
        step("terrain_correct", {"product": root / "work/multilooked.tif", "dem": small}, outputs)
    assert not out.exists() or not list(out.iterdir())


def test_pair_from_different_tracks(stack, tmp_path):
    root, pair = stack
    meta_path = root / f"slc/{SEC}.json"
    meta = json.loads(meta_path.read_text())
    meta["geometry"]["heading_deg"] = 350.0  # an ascending acquisition
    meta_path.write_text(json.dumps(meta))
    work = tmp_path / "work"
    _orbit_products(root, work)
    out = work / "coregistered.tif"
    _expect_error(
        lambda: step(
            "coregister",
            {
                "reference": work / f"orbit/{REF}.tif",
                "secondary": work / f"orbit/{SEC}.tif",
                "dem": root / "dem.tif",
            },
            {"product": out},
        ),
        f"{SEC}.tif: geometry 'heading_deg'.*one track",
        out,
    )


def test_wrong_product_kind_and_polarisation(stack, tmp_path):
    root, _ = stack
    cal = tmp_path / "cal.tif"
    _calibrate(root, cal)
    out = tmp_path / "ifg.tif"
    _expect_error(
        lambda: step("interferogram", {"product": cal}, {"product": out}),
        "cal.tif: product kind 'calibrated'",
        out,
    )
    with pytest.raises(IsslideError, match="polarisation VV but insar.polarisation is VH"):
        run_step(
            "calibrate",
            "embedded",
            {"slc": root / f"slc/{REF}.tif", "metadata": root / f"slc/{REF}.json"},
            {"product": tmp_path / "vh.tif"},
            {"insar": {"polarisation": "VH"}, "backend": "embedded"},
        )


def test_failed_write_leaves_no_output(tmp_path, monkeypatch):
    from isslide.insar import products

    out = tmp_path / "p.tif"
    with pytest.raises(RuntimeError):
        with products.write_product(out, (4, 5), [("slc", products.COMPLEX)], {"kind": "x"}) as w:
            w.write("slc", np.ones((2, 5), np.complex64), 0)
            raise RuntimeError("boom")
    assert not out.exists() and not list(tmp_path.iterdir())
    with products.write_product(
        out, (4, 5), [("slc", products.COMPLEX), ("c", products.FLOAT)], {"kind": "x"}
    ) as w:
        w.write("slc", np.full((4, 5), 1 - 2j, np.complex64))
        w.write("c", np.arange(20, dtype=np.float32).reshape(4, 5))
    with products.ProductReader(out) as r:
        assert (
            r.read("slc", (1, 3))[0, 0] == 1 - 2j
            and r.read("c")[3, 4] == 19
            and r.meta["kind"] == "x"
        )


def test_orbit_errors_make_fringes_that_the_precise_orbit_removes(tmp_path):
    """Sanity: processing with the annotated (wrong) orbit leaves an orbital ramp; the precise one does not."""
    pair = make_pair(seed=2, shift=(0.0, 0.0), relief=100.0, sec_orbit=Orbit(cross=60.0))
    root = write_stack(tmp_path / "stack", pair)
    run_chain(root, tmp_path / "work", tmp_path / "out")
    with rasterio.open(tmp_path / "out/phase.tif") as ds:
        good = ds.read(1)
    # same data, but claim a secondary orbit drifting by 0.1 m over 2 km along track
    meta_path = root / f"slc/{SEC}.json"
    meta = json.loads(meta_path.read_text())
    meta["orbit"]["precise"]["cross_rate"] += 5e-5
    meta_path.write_text(json.dumps(meta))
    shutil.rmtree(tmp_path / "work")
    run_chain(root, tmp_path / "work", tmp_path / "out2")
    with rasterio.open(tmp_path / "out2/phase.tif") as ds:
        bad = ds.read(1)
    ok = (good != -9999) & (bad != -9999)
    assert circ_std(good[ok]) < 0.3 < circ_std(bad[ok])


def test_nodata_outside_the_slc_footprint_stays_nodata(tmp_path):
    """Zero SLC samples (outside a product's valid swath) end as nodata, not as data."""
    from isslide.insar.terrain import radar_position

    pair = make_pair(seed=5, shift=(0.2, 0.1), gamma=0.9)
    g = pair["geometry"]
    edge = int(0.65 * g.samples)
    pair["ref"][:, edge:] = 0
    pair["sec"][:, edge + 2 :] = 0  # the secondary's footprint a little different
    write_stack(tmp_path / "stack", pair)
    run_chain(tmp_path / "stack", tmp_path / "work", tmp_path / "out")
    with rasterio.open(tmp_path / "out/phase.tif") as ds:
        phase, transform = ds.read(1), ds.transform
    with rasterio.open(tmp_path / "out/coherence.tif") as ds:
        coh = ds.read(1)
    with rasterio.open(tmp_path / "out/layover_shadow.tif") as ds:
        mask = ds.read(1)
    rows, cols = np.indices(phase.shape)
    lon, lat = transform @ (cols + 0.5, rows + 0.5)
    from isslide.insar import geocoding

    dem = geocoding.Dem(pair["dem"].astype(np.float64), pair["transform"])
    _, sample = radar_position(g, pair["ref_orbit"], lon, lat, dem.height(lon, lat), 2, 8)
    full = sample * 8 + 3.5  # full-resolution sample of the output pixel
    outside = full > edge + 16
    inside = (full < edge - 24) & (full > 8)
    assert outside.sum() > 1000 and inside.sum() > 1000
    assert np.all(phase[outside] == -9999) and np.all(coh[outside] == -9999)
    assert np.all(mask[outside] == 255)
    ok = inside & (mask == 0)
    assert (phase[inside] != -9999).mean() > 0.99
    assert circ_std(phase[ok]) < 0.3
    # no zero dragging the coherence down next to the edge
    near = inside & (full > edge - 60)
    assert abs(float(coh[near].mean()) - float(coh[ok].mean())) < 0.1
