"""Annotations -> label rasters.

One annotation file per interferogram (``{annotations}/{stack}/{delay}d/{reference}_{secondary}.shp``
or ``.gpkg``) with polygons and the attributes ``id`` (int > 0, stable across interferograms),
``class`` (Landslide | Rock Glacier | Unknown), ``confidence`` (1-3) and ``repetitions`` (int).
:func:`read_annotations` validates it; :func:`rasterize_labels` burns the phenomenon ids onto
the interferogram's grid:

* int32 GeoTIFF, 0 background, the polygon's ``id`` inside it, -1 (also the nodata value) where
  the interferogram is unusable: layover (1), shadow (2), nodata (255) in ``layover_shadow.tif``
  or nodata coherence;
* the per-id attributes (class, confidence, repetitions) are stored in the raster's
  ``ISSLIDE_PHENOMENA`` tag (JSON), so instance, class and confidence are recoverable from the
  label raster alone.
"""

from __future__ import annotations

import json
import logging
import os
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
from rasterio.features import rasterize
from shapely.geometry import box

from .errors import IsslideError
from .files import (
    WGS84,
    Grid,
    check_same_grid,
    maker_clause,
    read_band,
    remake_fix,
    unreadable_raster,
    write_raster,
)
from .inputs import check_shapefile, variant_hint

log = logging.getLogger("isslide.labels")

CLASSES = ("Landslide", "Rock Glacier", "Unknown")
REQUIRED = ("id", "class", "confidence", "repetitions")
INVALID = -1
SHAPEFILE_SIDECARS = (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qpj")
TAG = "ISSLIDE_PHENOMENA"


class AnnotationWarning(UserWarning):
    """A problem in an annotation file that was repaired or is only reported."""


def _warn(message: str) -> None:
    log.warning(message)
    warnings.warn(message, AnnotationWarning, stacklevel=3)


def annotation_files(path: str) -> list[str]:
    """The files that make up an annotation layer (a shapefile's existing sidecars, or the .gpkg)."""
    stem, ext = os.path.splitext(path)
    if ext.lower() != ".shp":
        return [path]
    return [stem + s for s in SHAPEFILE_SIDECARS if os.path.exists(stem + s)]


def _column(frame: pd.DataFrame, field: str) -> str | None:
    """The column holding ``field``; DBF truncates names to 10 characters ('repetition')."""
    for col in frame.columns:
        low = str(col).lower()
        if low == field or (len(low) == 10 and field.startswith(low)):
            return col
    return None


def _as_int(values: pd.Series, path: str, field: str, ids) -> np.ndarray:
    numeric = pd.to_numeric(values, errors="coerce")
    bad = numeric.isna() | (numeric != np.round(numeric))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise IsslideError(
            f"{path}: field '{field}' of feature {i} (id {ids[i]}) is {values.iloc[i]!r}, not an "
            f"integer; fill it in"
        )
    return numeric.to_numpy().astype(np.int64)


def _class_name(value, path: str, i: int) -> str:
    text = " ".join(str(value).split()).lower() if value is not None else ""
    for c in CLASSES:
        if text == c.lower():
            return c
    raise IsslideError(
        f"{path}: field 'class' of feature {i} is {value!r}; expected one of {', '.join(CLASSES)}"
    )


def _polygonal(geom):
    """The polygonal part of a (repaired) geometry, or None."""
    if geom is None or geom.is_empty:
        return None
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    if geom.geom_type == "GeometryCollection":
        parts = [g for g in geom.geoms if g.geom_type in ("Polygon", "MultiPolygon")]
        if parts:
            return shapely.union_all(parts)
    return None


def _all_outside(path, crs, frame, bounds, bounds_crs, extent) -> str:
    """The message for a layer none of whose polygons falls on its interferogram, with the CRS
    under which they would (a wrong .prj is the usual cause) or the other likely causes."""
    raw = frame.to_crs(crs).geometry  # the coordinates as stored in the file
    declared = crs.to_string()
    candidates = [WGS84] + ([bounds_crs] if bounds_crs is not None else [])
    for cand in candidates:
        if cand == crs:
            continue
        moved = gpd.GeoSeries(raw.to_numpy(), crs=cand).to_crs(WGS84)
        if moved.intersects(extent).any():
            name = cand.to_string()
            return (
                f"{path}: all {len(frame)} polygons lie outside the interferogram's extent in the "
                f"declared CRS {declared}, but fall inside it read as {name}: the layer's CRS "
                f"(.prj) is wrong; save it with {name}"
            )
    w, s, e, n = frame.total_bounds
    return (
        f"{path}: all {len(frame)} polygons (lon {w:.4f}..{e:.4f}, lat {s:.4f}..{n:.4f}) lie "
        f"outside the interferogram's extent {[round(float(b), 4) for b in bounds]}; check that "
        f"they were drawn on this pair and that the layer's CRS ({declared}) is right"
    )


def read_annotations(
    path: str,
    bounds: tuple[float, float, float, float] | None = None,
    bounds_crs=WGS84,
) -> gpd.GeoDataFrame:
    """Read and validate one annotation layer; return polygons in EPSG:4326.

    Columns: ``id`` (int64), ``class``, ``confidence``, ``repetitions``, ``geometry``. Errors
    (IsslideError, one line naming the file and field): missing file, incomplete or truncated
    shapefile, no CRS, missing required attribute, bad attribute value, non-polygon geometry,
    every polygon outside ``bounds`` (west, south, east, north of the raster, in ``bounds_crs``;
    the message suggests the CRS under which they would fall inside). Warnings: invalid
    geometries repaired with ``make_valid``, empty geometries dropped, some polygons outside
    ``bounds``.
    """
    if not os.path.exists(path):
        hint = variant_hint(path)
        raise IsslideError(f"{path}: annotation file not found" + (f", but {hint}" if hint else ""))
    if path.lower().endswith(".shp"):
        check_shapefile(path)  # a truncated .shp reads as empty geometries: refuse it
    try:
        frame = gpd.read_file(path, engine="pyogrio")
    except Exception as exc:
        raise IsslideError(
            f"{path}: unreadable annotation file ({' '.join(str(exc).split())})"
        ) from None
    if frame.crs is None:
        raise IsslideError(
            f"{path}: field 'crs' missing (no .prj / no CRS); save the layer with its CRS (EPSG:4326)"
        )
    columns = {}
    for field in REQUIRED:
        col = _column(frame, field)
        if col is None:
            raise IsslideError(
                f"{path}: required attribute '{field}' missing (have: {', '.join(map(str, frame.columns.drop('geometry')))}); "
                f"add it (id, class, confidence, repetitions)"
            )
        columns[field] = col
    out = gpd.GeoDataFrame(geometry=frame.geometry.copy(), crs=frame.crs)
    if len(frame) == 0:
        for field in REQUIRED:
            out[field] = pd.Series(dtype="int64" if field != "class" else "object")
        return out[list(REQUIRED) + ["geometry"]].to_crs(WGS84)
    raw_ids = frame[columns["id"]].tolist()
    ids = _as_int(frame[columns["id"]], path, "id", raw_ids)
    if (ids <= 0).any():
        i = int(np.flatnonzero(ids <= 0)[0])
        raise IsslideError(
            f"{path}: field 'id' of feature {i} is {ids[i]}; ids must be integers > 0"
        )
    out["id"] = ids
    out["class"] = [_class_name(v, path, i) for i, v in enumerate(frame[columns["class"]])]
    conf = _as_int(frame[columns["confidence"]], path, "confidence", raw_ids)
    if ((conf < 1) | (conf > 3)).any():
        i = int(np.flatnonzero((conf < 1) | (conf > 3))[0])
        raise IsslideError(
            f"{path}: field 'confidence' of feature {i} (id {ids[i]}) is {conf[i]}; expected 1, 2 or 3"
        )
    out["confidence"] = conf
    out["repetitions"] = _as_int(frame[columns["repetitions"]], path, "repetitions", raw_ids)

    geoms = []
    keep = []
    for i, geom in enumerate(out.geometry):
        if geom is None or geom.is_empty:
            _warn(f"{path}: feature {i} (id {ids[i]}) has an empty geometry; ignored")
            continue
        if geom.geom_type not in ("Polygon", "MultiPolygon"):
            raise IsslideError(
                f"{path}: feature {i} (id {ids[i]}) is a {geom.geom_type}; annotations must be polygons"
            )
        if not geom.is_valid:
            reason = shapely.is_valid_reason(geom)
            geom = _polygonal(shapely.make_valid(geom))
            _warn(
                f"{path}: feature {i} (id {ids[i]}) had an invalid geometry ({reason}); repaired with make_valid"
            )
            if geom is None:
                _warn(
                    f"{path}: feature {i} (id {ids[i]}) has no polygonal part after repair; ignored"
                )
                continue
        geoms.append(geom)
        keep.append(i)
    out = out.iloc[keep].copy()
    out = out.set_geometry(gpd.GeoSeries(geoms, index=out.index, crs=frame.crs))
    if out.crs != WGS84:
        log.info("%s: reprojecting annotations from %s to EPSG:4326", path, out.crs.to_string())
        out = out.to_crs(WGS84)
    if bounds is not None and len(out):
        extent = gpd.GeoSeries([box(*bounds)], crs=bounds_crs).to_crs(WGS84).iloc[0]
        outside = ~out.geometry.intersects(extent)
        if outside.all():
            raise IsslideError(_all_outside(path, frame.crs, out, bounds, bounds_crs, extent))
        if outside.any():
            lost = ", ".join(str(i) for i in out.loc[outside, "id"].tolist())
            _warn(
                f"{path}: polygon(s) with id {lost} lie outside the interferogram's extent; they cannot be labelled"
            )
    attrs = pd.DataFrame({"id": out["id"].to_numpy(), "class": out["class"].to_numpy()})
    mixed = attrs.groupby("id")["class"].nunique()
    for pid in mixed.index[mixed > 1]:
        classes = sorted(attrs.loc[attrs["id"] == pid, "class"].unique())
        _warn(f"{path}: id {pid} has several classes {classes}; using the first polygon's")
    return out[list(REQUIRED) + ["geometry"]].reset_index(drop=True)


def phenomena_table(annotations: gpd.GeoDataFrame) -> dict[str, dict]:
    """id -> {class, confidence, repetitions} (first polygon's class, highest confidence)."""
    frame = pd.DataFrame(
        {
            "id": annotations["id"].to_numpy(),
            "class": annotations["class"].to_numpy(),
            "confidence": annotations["confidence"].to_numpy(),
            "repetitions": annotations["repetitions"].to_numpy(),
        }
    )
    agg = frame.groupby("id", sort=True).agg(
        {"class": "first", "confidence": "max", "repetitions": "max"}
    )
    return {
        str(int(pid)): {
            "class": str(row["class"]),
            "confidence": int(row["confidence"]),
            "repetitions": int(row["repetitions"]),
        }
        for pid, row in agg.iterrows()
    }


def read_phenomena(label_path: str) -> dict[int, dict]:
    """The id -> attributes table stored in a label raster."""
    try:
        with rasterio.open(label_path) as src:
            text = src.tags().get(TAG)
    except rasterio.errors.RasterioError as exc:
        raise IsslideError(unreadable_raster(label_path, exc)) from None
    if text is None:
        raise IsslideError(
            f"{label_path}: no {TAG} tag; not a label raster made by isslide, rerun rasterize_labels"
        )
    return {int(k): v for k, v in json.loads(text).items()}


def check_band(path: str, data: np.ndarray, nodata, what: str) -> None:
    """Refuse an interferogram band with no valid pixel (all NaN or nodata) or one value only:
    it would silently give invalid or meaningless samples."""
    ok = np.isfinite(data)
    if nodata is not None:
        ok &= data != nodata
    full = os.path.abspath(path)
    step = maker_clause(path)
    if not ok.any():
        raise IsslideError(
            f"{full}: every pixel of the {what} is NaN or nodata{step}; the interferogram is "
            f"unusable: check that step's inputs and log (AOI, subswaths, DEM coverage), then "
            f"{remake_fix(path)}"
        )
    valid = data[ok]
    if valid.min() == valid.max():
        raise IsslideError(
            f"{full}: the {what} has the single value {valid.flat[0]:g} on all {valid.size} valid "
            f"pixels{step}; the interferogram is unusable: check that step's inputs and log, then "
            f"{remake_fix(path)}"
        )


def invalid_mask(layover_path: str, coherence_path: str) -> tuple[np.ndarray, Grid]:
    """True where the interferogram is unusable (layover, shadow, nodata). A coherence with no
    valid pixel or a single value is an error (:func:`check_band`)."""
    grid = Grid.of(layover_path)
    if grid.crs is None:
        raise IsslideError(
            f"{layover_path}: raster has no CRS{maker_clause(layover_path)}; "
            f"{remake_fix(layover_path)}"
        )
    check_same_grid(grid, layover_path, coherence_path)
    ls, _ = read_band(layover_path)
    coh, nodata = read_band(coherence_path)
    check_band(coherence_path, coh, nodata, "coherence")
    bad = (ls == 1) | (ls == 2) | (ls == 255) | ~np.isfinite(coh)
    if nodata is not None:
        bad |= coh == nodata
    if bad.all():
        raise IsslideError(
            f"{os.path.abspath(layover_path)}: every pixel is layover, shadow or nodata"
            f"{maker_clause(layover_path)}; the interferogram is unusable: check that step's "
            f"inputs and log (AOI, DEM), then {remake_fix(layover_path)}"
        )
    return bad, grid


def default_all_touched() -> bool:
    """``labels.all_touched`` as the config schema states it (the one place of that default)."""
    from .config import schema_default

    return bool(schema_default("labels", "all_touched"))


def burn(annotations: gpd.GeoDataFrame, grid: Grid, all_touched: bool) -> np.ndarray:
    """Rasterise polygon ids (int32, 0 background); larger polygons first so small ones stay visible."""
    labels = np.zeros((grid.height, grid.width), np.int32)
    if len(annotations) == 0:
        return labels
    frame = annotations
    if grid.crs is not None and frame.crs is not None and grid.crs != frame.crs:
        frame = frame.to_crs(grid.crs)
    order = np.lexsort((frame["id"].to_numpy(), -shapely.area(frame.geometry.to_numpy())))
    shapes = [(frame.geometry.iloc[i], int(frame["id"].iloc[i])) for i in order]
    return rasterize(
        shapes,
        out=labels,
        transform=grid.transform,
        all_touched=bool(all_touched),
        dtype=np.int32,
    )


def rasterize_labels(
    annotation: str | None,
    layover_shadow: str,
    coherence: str,
    output: str,
    all_touched: bool | None = None,
    missing: str = "error",
    phase: str | None = None,
) -> dict:
    """Write the label raster of one interferogram; return a small summary.

    ``all_touched`` None: the config schema's ``labels.all_touched`` default.

    ``annotation``: the expected annotation file; None or a path that does not exist means no
    annotation file, allowed only when ``missing`` is ``"no_motion"`` (all-background labels), an
    error otherwise, and always an error when a file of another extension or case stands there.
    ``phase`` (the workflow gives it): checked like the coherence, so an interferogram with no
    valid pixel, a single value or a corrupt file stops here, before the dataset.
    """
    if annotation is None or not os.path.exists(annotation):
        hint = variant_hint(annotation) if annotation else ""
        if hint:
            raise IsslideError(f"{annotation}: annotation file not found, but {hint}")
        if missing != "no_motion":
            raise IsslideError(
                f"{annotation or 'annotation'}: annotation file not found for the interferogram "
                f"of {output}; add it, or set annotations.missing: no_motion if it has no "
                "annotated motion"
            )
        log.info(
            "%s: no annotation file; no annotated motion (annotations.missing: no_motion)",
            annotation,
        )
        annotations = gpd.GeoDataFrame(
            {f: pd.Series(dtype="int64") for f in REQUIRED}, geometry=gpd.GeoSeries([], crs=WGS84)
        )
    else:
        annotations = None
    invalid, grid = invalid_mask(layover_shadow, coherence)
    if phase is not None:
        check_same_grid(grid, layover_shadow, phase)
        check_band(phase, *read_band(phase), "phase")
    if annotations is None:
        t = grid.transform
        bounds = (t.c, t.f + t.e * grid.height, t.c + t.a * grid.width, t.f)
        annotations = read_annotations(annotation, bounds=bounds, bounds_crs=grid.crs)
    if all_touched is None:
        all_touched = default_all_touched()
    labels = burn(annotations, grid, all_touched)
    burnt = np.unique(labels[labels > 0])
    lost = sorted(set(annotations["id"].astype(int)) - set(burnt.tolist()))
    labels[invalid] = INVALID
    after = set(np.unique(labels[labels > 0]).tolist())
    masked = sorted(set(burnt.tolist()) - after)
    if lost:
        log.warning("%s: id(s) %s cover no pixel centre of the grid", annotation, lost)
    if masked:
        log.warning("%s: id(s) %s lie entirely in layover/shadow/nodata", annotation, masked)
    table = phenomena_table(annotations)
    write_raster(
        output,
        labels,
        grid.transform,
        grid.crs,
        nodata=INVALID,
        tags={
            TAG: table,
            "ISSLIDE_ANNOTATION": os.path.basename(annotation) if annotation else "none",
        },
    )
    summary = {
        "polygons": int(len(annotations)),
        "areas": len(table),
        "labelled_pixels": int((labels > 0).sum()),
        "invalid_pixels": int(invalid.sum()),
    }
    log.info("%s: %s", output, summary)
    return summary
