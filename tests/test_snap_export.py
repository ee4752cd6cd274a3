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
from fake_gpt import SPACING, tc_arrays, write_dimap, write_tc_product  # noqa: E402


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


def test_export_on_an_aligned_grid_is_exact(tmp_path):
    bounds = aligned_bounds()
    dim = str(tmp_path / "tc" / "product.dim")
    transform, (i, q, coh, mask) = write_tc_product(dim, bounds=bounds)
    out = outputs(tmp_path)
    export.export_interferogram(dim, out, spacing_deg=SPACING)
    grid, width, height = output_grid(*bounds, SPACING)
    with (
        rasterio.open(out["phase"]) as ph,
        rasterio.open(out["coherence"]) as co,
        rasterio.open(out["layover_shadow"]) as ls,
    ):
        for ds in (ph, co, ls):
            assert ds.crs.to_epsg() == 4326
            assert ds.transform.almost_equals(grid) and (ds.width, ds.height) == (width, height)
        assert ph.dtypes[0] == co.dtypes[0] == "float32" and ls.dtypes[0] == "uint8"
        assert ph.nodata == co.nodata == -9999 and ls.nodata == 255
        phase, cohr, classes = ph.read(1), co.read(1), ls.read(1)
    valid = (i != 0) | (q != 0)
    np.testing.assert_allclose(phase[valid], np.arctan2(q, i)[valid], atol=1e-5)
    np.testing.assert_allclose(cohr[valid], 0.6, atol=1e-6)
    assert (phase[~valid] == -9999).all() and (cohr[~valid] == -9999).all()
    expected = np.where(mask & 1, 1, np.where(mask & 2, 2, 0))
    assert (classes[valid] == expected[valid]).all()
    assert (classes[~valid] == 255).all()
    assert set(np.unique(classes)) == {0, 1, 2, 255}
    assert not [f for f in os.listdir(tmp_path / "ifg") if "tmp" in f]


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
