"""isslide.labels: annotation validation and rasterisation (small GeoTIFF/shapefile fixtures)."""

from __future__ import annotations

import json
import os
import warnings

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from shapely.geometry import Polygon, box

from isslide.errors import IsslideError
from isslide.files import WGS84, apply, write_raster
from isslide.labels import (
    INVALID,
    TAG,
    AnnotationWarning,
    annotation_files,
    rasterize_labels,
    read_annotations,
    read_phenomena,
)

PIX = 0.001
T = Affine(PIX, 0, 6.0, 0, -PIX, 45.0)  # 60 x 80 px: lon 6.0-6.08, lat 44.94-45.0
H, W = 60, 80


def px_box(r0, c0, r1, c1):
    """Polygon covering pixel rows r0..r1-1 and cols c0..c1-1 exactly."""
    x0, y0 = apply(T, c0, r0)
    x1, y1 = apply(T, c1, r1)
    return box(x0, y1, x1, y0)


@pytest.fixture()
def grid(tmp_path):
    ls = np.zeros((H, W), np.uint8)
    ls[0:5, :] = 1  # layover
    ls[:, 75:] = 2  # shadow
    ls[55, 10] = 255  # nodata
    # a varying coherence (a constant one is refused as an unusable interferogram)
    coh = np.linspace(0.3, 0.7, H * W, dtype=np.float32).reshape(H, W)
    coh[50, 50] = -9999.0
    paths = {
        "layover": str(tmp_path / "layover_shadow.tif"),
        "coherence": str(tmp_path / "coherence.tif"),
    }
    write_raster(paths["layover"], ls, T, WGS84, 255)
    write_raster(paths["coherence"], coh, T, WGS84, -9999.0)
    return paths


def write_annotations(path, rows, crs=WGS84, **kw):
    frame = gpd.GeoDataFrame(
        {k: [r[k] for r in rows] for k in rows[0] if k != "geometry"},
        geometry=[r["geometry"] for r in rows],
        crs=crs,
    )
    with warnings.catch_warnings():  # 'repetitions' -> 'repetition': the DBF name limit
        warnings.simplefilter("ignore")
        frame.to_file(path, engine="pyogrio", **kw)
    return str(path)


def area(pid, geom, cls="Landslide", conf=2, rep=1):
    return {"id": pid, "class": cls, "confidence": conf, "repetitions": rep, "geometry": geom}


def test_rasterize_ids_invalid_and_attributes(tmp_path, grid):
    shp = write_annotations(
        tmp_path / "a.shp",
        [area(12, px_box(10, 10, 20, 30)), area(5, px_box(45, 45, 55, 60), "Rock Glacier", 3)],
    )
    out = str(tmp_path / "labels" / "l.tif")
    summary = rasterize_labels(shp, grid["layover"], grid["coherence"], out)
    with rasterio.open(out) as src:
        lab = src.read(1)
        assert src.dtypes[0] == "int32"
        assert src.nodata == INVALID
        assert src.crs == WGS84
        assert src.transform.almost_equals(T)
    assert (lab[10:20, 10:30] == 12).all()
    assert (lab[45:55, 45:60][lab[45:55, 45:60] != INVALID] == 5).all()
    assert lab[50, 50] == INVALID  # nodata coherence inside area 5
    assert (lab[0:5] == INVALID).all() and (lab[:, 75:] == INVALID).all() and lab[55, 10] == INVALID
    assert int((lab == 12).sum()) == 200
    assert set(np.unique(lab)) == {INVALID, 0, 5, 12}
    table = read_phenomena(out)
    assert table[5] == {"class": "Rock Glacier", "confidence": 3, "repetitions": 1}
    assert table[12]["class"] == "Landslide"
    assert summary["polygons"] == 2 and summary["areas"] == 2


def test_all_touched_from_config(tmp_path, grid):
    # a polygon covering only parts of pixels: all_touched labels more pixels
    x0, y0 = apply(T, 20.6, 20.6)
    x1, y1 = apply(T, 24.4, 24.4)
    shp = write_annotations(tmp_path / "a.shp", [area(3, box(x0, y1, x1, y0))])
    a, b = str(tmp_path / "a.tif"), str(tmp_path / "b.tif")
    rasterize_labels(shp, grid["layover"], grid["coherence"], a, all_touched=False)
    rasterize_labels(shp, grid["layover"], grid["coherence"], b, all_touched=True)
    with rasterio.open(a) as s1, rasterio.open(b) as s2:
        na, nb = int((s1.read(1) == 3).sum()), int((s2.read(1) == 3).sum())
    assert na == 9 and nb == 25


def test_missing_crs_is_an_error_naming_file_and_field(tmp_path, grid):
    shp = write_annotations(tmp_path / "a.shp", [area(1, px_box(10, 10, 20, 20))])
    os.unlink(tmp_path / "a.prj")
    with pytest.raises(IsslideError, match=r"a\.shp.*'crs'"):
        rasterize_labels(shp, grid["layover"], grid["coherence"], str(tmp_path / "l.tif"))
    assert not os.path.exists(tmp_path / "l.tif")


@pytest.mark.parametrize("field", ["id", "class", "confidence", "repetitions"])
def test_missing_attribute_is_an_error_naming_file_and_field(tmp_path, field):
    row = area(1, px_box(10, 10, 20, 20))
    del row[field]
    shp = write_annotations(tmp_path / "a.shp", [row])
    with pytest.raises(IsslideError, match=rf"a\.shp: required attribute '{field}' missing"):
        read_annotations(shp)


@pytest.mark.parametrize(
    "field,value,pattern",
    [
        ("class", "Glacier", "field 'class'"),
        ("confidence", 7, "field 'confidence'"),
        ("id", 0, "field 'id'"),
    ],
)
def test_bad_values_are_errors(tmp_path, field, value, pattern):
    row = area(1, px_box(10, 10, 20, 20))
    row[field] = value
    shp = write_annotations(tmp_path / "a.shp", [row])
    with pytest.raises(IsslideError, match=pattern):
        read_annotations(shp)


def test_class_names_are_normalised_and_truncated_dbf_field_accepted(tmp_path):
    shp = write_annotations(
        tmp_path / "a.shp", [area(1, px_box(10, 10, 20, 20), cls="rock  glacier")]
    )
    # the DBF format truncates 'repetitions' to 10 characters
    assert "repetition" in gpd.read_file(shp).columns
    frame = read_annotations(shp)
    assert frame["class"].tolist() == ["Rock Glacier"]
    assert frame["repetitions"].tolist() == [1]


def test_invalid_geometry_is_repaired_with_a_warning(tmp_path, grid):
    a, b = apply(T, 10, 10), apply(T, 30, 30)
    c, d = apply(T, 30, 10), apply(T, 10, 30)
    bowtie = Polygon([a, b, c, d])  # self-intersecting
    assert not bowtie.is_valid
    shp = write_annotations(tmp_path / "a.shp", [area(4, bowtie)])
    out = str(tmp_path / "l.tif")
    with pytest.warns(AnnotationWarning, match="invalid geometry.*make_valid"):
        rasterize_labels(shp, grid["layover"], grid["coherence"], out)
    with rasterio.open(out) as src:
        assert int((src.read(1) == 4).sum()) > 100


def test_polygons_outside_the_raster_are_reported(tmp_path, grid):
    far = box(7.0, 46.0, 7.01, 46.01)
    shp = write_annotations(tmp_path / "a.shp", [area(1, px_box(10, 10, 20, 20)), area(99, far)])
    with pytest.warns(AnnotationWarning, match=r"id 99 lie outside"):
        rasterize_labels(shp, grid["layover"], grid["coherence"], str(tmp_path / "l.tif"))


def test_other_crs_is_reprojected(tmp_path, grid):
    poly = px_box(20, 20, 40, 50)
    ref = write_annotations(tmp_path / "ref.shp", [area(8, poly)])
    utm = gpd.GeoSeries([poly], crs=WGS84).to_crs(32632).iloc[0]
    other = write_annotations(tmp_path / "utm.shp", [area(8, utm)], crs="EPSG:32632")
    a, b = str(tmp_path / "a.tif"), str(tmp_path / "b.tif")
    rasterize_labels(ref, grid["layover"], grid["coherence"], a)
    rasterize_labels(other, grid["layover"], grid["coherence"], b)
    with rasterio.open(a) as s1, rasterio.open(b) as s2:
        la, lb = s1.read(1) == 8, s2.read(1) == 8
    assert la.sum() == 600
    assert (la != lb).sum() <= 4  # reprojection round-off at the edges only


def test_geopackage_input(tmp_path, grid):
    gpkg = write_annotations(tmp_path / "a.gpkg", [area(2, px_box(10, 10, 20, 20))], driver="GPKG")
    out = str(tmp_path / "l.tif")
    rasterize_labels(gpkg, grid["layover"], grid["coherence"], out)
    with rasterio.open(out) as src:
        assert int((src.read(1) == 2).sum()) == 100
    assert annotation_files(gpkg) == [gpkg]


def test_missing_annotation_file_policy(tmp_path, grid):
    out = str(tmp_path / "l.tif")
    missing = str(tmp_path / "none.shp")
    with pytest.raises(
        IsslideError, match=r"none\.shp: annotation file not found.*annotations.missing: no_motion"
    ):
        rasterize_labels(missing, grid["layover"], grid["coherence"], out)
    assert not os.path.exists(out)
    rasterize_labels(missing, grid["layover"], grid["coherence"], out, missing="no_motion")
    with rasterio.open(out) as src:
        lab = src.read(1)
        assert json.loads(src.tags()[TAG]) == {}
    assert set(np.unique(lab)) == {INVALID, 0}


def test_grid_mismatch_is_an_error(tmp_path, grid):
    other = str(tmp_path / "coh2.tif")
    write_raster(other, np.zeros((H, W + 1), np.float32), T, WGS84, -9999.0)
    shp = write_annotations(tmp_path / "a.shp", [area(1, px_box(10, 10, 20, 20))])
    with pytest.raises(IsslideError, match=r"coh2\.tif: grid .* differs"):
        rasterize_labels(shp, grid["layover"], other, str(tmp_path / "l.tif"))


def test_shapefile_sidecars_listed(tmp_path):
    shp = write_annotations(tmp_path / "a.shp", [area(1, px_box(10, 10, 20, 20))])
    exts = sorted(os.path.splitext(p)[1] for p in annotation_files(shp))
    assert {".shp", ".shx", ".dbf", ".prj"} <= set(exts)
