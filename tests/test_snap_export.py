"""SNAP backend: Terrain-Correction output (BEAM-DIMAP, ENVI rasters) -> interferogram GeoTIFFs."""

from __future__ import annotations

import math
import os
import sys

import numpy as np
import pytest
import rasterio
from affine import Affine

from isslide.errors import IsslideError
from isslide.geometry import output_grid
from isslide.snap import dimap, export

sys.path.insert(0, os.path.dirname(__file__))
from fake_gpt import (  # noqa: E402
    DEFAULT_BOUNDS,
    SPACING,
    SUBSWATH_BOUNDS,
    snap_grid,
    tc_arrays,
    write_dimap,
    write_phase_product,
    write_tc_product,
)


def outputs(tmp_path):
    return {k: str(tmp_path / "ifg" / f"{k}.tif") for k in ("coherence", "phase", "layover_shadow")}


def aligned_bounds(width=40, height=30):
    west = math.floor(6.5 / SPACING) * SPACING
    north = math.ceil(45.0 / SPACING) * SPACING
    return (west, north - height * SPACING, west + width * SPACING, north)


def test_dimap_bands_are_read(tmp_path):
    dim = str(tmp_path / "tc" / "product.dim")
    write_tc_product(dim, bounds=aligned_bounds())
    bands = {b.name: b for b in dimap.bands(dim)}
    assert bands["i_ifg_VV_02Jul2018_08Jul2018"].unit == "real"
    assert bands["coh_VV_02Jul2018_08Jul2018"].nodata == 0.0
    assert bands["layoverShadowMask"].nodata is None
    assert all(os.path.isfile(b.path) for b in bands.values())


def test_output_grid_is_snaps_standard_grid():
    """Centre of the first pixel on a multiple of the spacing; same size as SNAP's grid."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        west, south = rng.uniform(5, 7), rng.uniform(44, 46)
        box = (west, south, west + rng.uniform(0.001, 0.05), south + rng.uniform(0.001, 0.05))
        transform, width, height = output_grid(*box, SPACING)
        centre_x, centre_y = transform @ (0.5, 0.5)
        assert centre_x / SPACING == pytest.approx(round(centre_x / SPACING), abs=1e-6)
        assert centre_y / SPACING == pytest.approx(round(centre_y / SPACING), abs=1e-6)
        assert centre_x <= box[0] < centre_x + SPACING and centre_y - SPACING < box[3] <= centre_y
        snap, snap_w, snap_h = snap_grid(*box)
        assert transform.almost_equals(snap, precision=1e-12) and (width, height) == (
            snap_w,
            snap_h,
        )


def test_snap_envi_header_is_read_with_snaps_geocoding(tmp_path):
    """The ENVI map info SNAP writes (reference pixel at the image centre) is read as the
    CrsGeoCoding it came from: pixel (0, 0) centred on (easting, northing) of CRSGeoCodingHandler."""
    dim = str(tmp_path / "tc" / "product.dim")
    transform, _ = write_tc_product(dim)
    hdr = next((tmp_path / "tc" / "product.data").glob("i_ifg*.hdr")).read_text()
    assert "Geographic Lat/Lon" in hdr and "units=Degrees" in hdr
    band = next(b for b in dimap.bands(dim) if b.unit == "real")
    with rasterio.open(band.path) as src:
        assert src.transform.almost_equals(transform, precision=1e-12)
        centre = src.transform @ (0.5, 0.5)
    west, _, _, north = DEFAULT_BOUNDS
    assert centre == pytest.approx(
        (math.floor(west / SPACING) * SPACING, math.ceil(north / SPACING) * SPACING), abs=1e-12
    )


@pytest.mark.parametrize("use_bounds", [True, False])
def test_export_onto_snaps_own_grid_copies_pixels(tmp_path, use_bounds):
    """A SNAP product on the standard grid comes out on the same grid, values copied (no
    half-pixel shift, no interpolation)."""
    dim = str(tmp_path / "tc" / "product.dim")
    transform, (i, q, coh, mask) = write_tc_product(dim)
    out = outputs(tmp_path)
    bounds = DEFAULT_BOUNDS if use_bounds else None
    export.export_interferogram(dim, out, spacing_deg=SPACING, bounds=bounds)
    _, width, height = snap_grid(*DEFAULT_BOUNDS)
    with (
        rasterio.open(out["phase"]) as ph,
        rasterio.open(out["coherence"]) as co,
        rasterio.open(out["layover_shadow"]) as ls,
    ):
        for ds in (ph, co, ls):
            assert ds.crs.to_epsg() == 4326
            assert ds.transform.almost_equals(transform, precision=1e-12)
            assert (ds.width, ds.height) == (width, height)
        assert ph.dtypes[0] == co.dtypes[0] == "float32" and ls.dtypes[0] == "uint8"
        assert ph.nodata == co.nodata == -9999 and ls.nodata == 255
        phase, cohr, classes = ph.read(1), co.read(1), ls.read(1)
    valid = (i != 0) | (q != 0)
    np.testing.assert_allclose(phase[valid], np.arctan2(q, i)[valid], atol=1e-6)
    np.testing.assert_allclose(cohr[valid], 0.6, atol=1e-6)
    assert (phase[~valid] == -9999).all() and (cohr[~valid] == -9999).all()
    expected = np.where(mask & 1, 1, np.where(mask & 2, 2, 0))
    assert (classes[valid] == expected[valid]).all()
    assert (classes[~valid] == 255).all()
    assert set(np.unique(classes)) == {0, 1, 2, 255}
    assert not [f for f in os.listdir(tmp_path / "ifg") if "tmp" in f]


def test_isslide_subswaths_are_mosaicked_phase_nearest(tmp_path):
    """isslide recipe: one coherence and one phase product per subswath; the phase (BandMaths,
    nearest) is copied exactly, the first subswath wins where two overlap."""
    parts = []
    for sw, box in SUBSWATH_BOUNDS.items():
        coh_dim, ph_dim = str(tmp_path / f"coh_{sw}.dim"), str(tmp_path / f"phase_{sw}.dim")
        write_tc_product(coh_dim, box)
        write_phase_product(ph_dim, box)
        parts.append({"coherence": coh_dim, "phase": ph_dim})
    out = outputs(tmp_path)
    export.export_parts(parts, out, spacing_deg=SPACING, bounds=DEFAULT_BOUNDS)
    grid, width, height = output_grid(*DEFAULT_BOUNDS, SPACING)
    with rasterio.open(out["phase"]) as ph, rasterio.open(out["layover_shadow"]) as ls:
        assert ph.transform.almost_equals(grid) and ph.shape == (height, width)
        phase, classes = ph.read(1), ls.read(1)
    expected = np.full((height, width), -9999.0, np.float32)
    for box in reversed(list(SUBSWATH_BOUNDS.values())):  # the first subswath overwrites
        t, w, h = snap_grid(*box)
        col0 = round((t.c - grid.c) / SPACING)
        i, q, _, _ = tc_arrays(w, h)
        ok = (i != 0) | (q != 0)
        sub = expected[:h, col0 : col0 + w]
        sub[ok] = np.arctan2(q, i)[ok]
    np.testing.assert_array_equal(phase, expected)
    assert (classes[phase == -9999] == 255).all() and (classes[phase != -9999] < 3).all()


def test_export_onto_the_aoi_grid(tmp_path):
    dim = str(tmp_path / "tc" / "product.dim")
    write_tc_product(dim)  # not aligned to the output grid: bilinear resampling
    out = outputs(tmp_path)
    aoi = "POLYGON((6.49 44.995, 6.53 44.995, 6.53 45.02, 6.49 45.02, 6.49 44.995))"
    bounds = export.aoi_bounds(aoi)
    export.export_interferogram(dim, out, spacing_deg=SPACING, bounds=bounds)
    grid, width, height = output_grid(*bounds, SPACING)
    with rasterio.open(out["phase"]) as ph, rasterio.open(out["layover_shadow"]) as ls:
        assert ph.transform.almost_equals(grid) and ph.shape == (height, width)
        phase = ph.read(1, masked=True)
        classes = ls.read(1)
    # outside the SNAP footprint: nodata; inside: wrapped phase
    assert phase.mask[0, 0] and classes[0, 0] == 255
    footprint = (round(0.02 / SPACING) - 3) * round(0.015 / SPACING)  # less the nodata stripe
    assert phase.count() == pytest.approx(footprint, rel=0.03)
    assert float(np.abs(phase).max()) <= math.pi + 1e-5


def test_bad_aoi(tmp_path):
    with pytest.raises(IsslideError, match="aoi: not valid WKT"):
        export.aoi_bounds("POLYGON((1 2, 3")


def test_missing_mask_band(tmp_path):
    bounds = aligned_bounds()
    i, q, coh, _ = tc_arrays(40, 30)
    dim = str(tmp_path / "product.dim")
    t = Affine(SPACING, 0, bounds[0], 0, -SPACING, bounds[3])
    write_dimap(
        dim,
        [("i_ifg", "real", i, 0.0), ("q_ifg", "imaginary", q, 0.0), ("coh", "coherence", coh, 0.0)],
        transform=t,
    )
    with pytest.raises(IsslideError, match="layoverShadowMask"):
        export.export_interferogram(dim, outputs(tmp_path), spacing_deg=SPACING)
    assert not os.path.exists(outputs(tmp_path)["phase"])


def test_intensity_only_output_is_rejected(tmp_path):
    """What Terrain-Correction writes with outputComplex=false and no sourceBands: no phase."""
    bounds = aligned_bounds()
    t = Affine(SPACING, 0, bounds[0], 0, -SPACING, bounds[3])
    _, _, coh, mask = tc_arrays(40, 30)
    dim = str(tmp_path / "product.dim")
    write_dimap(
        dim,
        [
            ("Intensity_ifg", "intensity", coh, 0.0),
            ("coh", "coherence", coh, 0.0),
            ("layoverShadowMask", "bit", mask, None),
        ],
        transform=t,
    )
    with pytest.raises(IsslideError, match="outputComplex=true"):
        export.export_interferogram(dim, outputs(tmp_path), spacing_deg=SPACING)


def test_missing_header(tmp_path):
    with pytest.raises(IsslideError, match="product header not found"):
        dimap.bands(str(tmp_path / "none.dim"))


def test_utc_parsing():
    assert dimap.parse_utc("02-JUL-2018 05:40:20.123456").minute == 40
    with pytest.raises(IsslideError, match="unreadable SNAP UTC"):
        dimap.parse_utc("2018-07-02")


def test_missing_phase_band_is_named(tmp_path):
    coh_dim = str(tmp_path / "coh_IW1.dim")
    write_tc_product(coh_dim)
    with pytest.raises(IsslideError, match="no 'Phase' band"):
        export.export_parts(
            [{"coherence": coh_dim, "phase": coh_dim}], outputs(tmp_path), spacing_deg=SPACING
        )


def test_blocks_do_not_change_the_result(tmp_path):
    dim = str(tmp_path / "tc" / "product.dim")
    write_tc_product(dim)
    bounds = (6.49, 44.995, 6.53, 45.02)
    whole, blocks = outputs(tmp_path / "a"), outputs(tmp_path / "b")
    export.export_interferogram(dim, whole, spacing_deg=SPACING, bounds=bounds, block_rows=100000)
    export.export_interferogram(dim, blocks, spacing_deg=SPACING, bounds=bounds, block_rows=7)
    for key in whole:
        with rasterio.open(whole[key]) as a, rasterio.open(blocks[key]) as b:
            np.testing.assert_array_equal(a.read(1), b.read(1))
