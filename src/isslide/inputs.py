"""Cheap checks of the annotators' files, made when the workflow is planned (and again by the jobs).

Nothing here reads the polygons themselves (no geopandas): only file names, the shapefile's fixed
headers (``.shp``, ``.shx``, ``.dbf``), its ``.prj`` and bounding box, so checking every expected
annotation file of a 54-interferogram stack takes a fraction of a second. Each problem is an
:class:`~isslide.errors.IsslideError` of one line naming the file and the fix.
"""

from __future__ import annotations

import functools
import os
import struct

from .errors import IsslideError

# Extensions of vector layers an annotator may have saved instead of the expected one.
LAYER_EXTENSIONS = (".shp", ".gpkg", ".geojson", ".json", ".kml", ".gml", ".fgb", ".zip", ".sqlite")
REEXPORT = "re-export the layer from your GIS (all its files: .shp, .shx, .dbf, .prj)"


def variants(path: str) -> list[str]:
    """Other layers standing where ``path`` is expected: the same name with another extension or
    another case (``a.SHP``, ``a.gpkg``, ``A.shp``), sorted."""
    directory, name = os.path.split(path)
    stem = os.path.splitext(name)[0].lower()
    try:
        entries = os.listdir(directory or ".")
    except OSError:
        return []
    out = []
    for entry in entries:
        s, ext = os.path.splitext(entry)
        if s.lower() == stem and ext.lower() in LAYER_EXTENSIONS and entry != name:
            out.append(os.path.join(directory, entry))
    return sorted(out)


def variant_hint(path: str, extension_key: str = "annotations.extension") -> str:
    """'' or the clause of a message saying which other file is there and what to do."""
    found = variants(path)
    if not found:
        return ""
    other = found[0]
    ext = os.path.splitext(other)[1]
    wanted = os.path.splitext(path)[1]
    fix = f"rename it (and its sidecar files) to {os.path.basename(path)}"
    if ext.lower() != wanted.lower() and ext.lower() in (".shp", ".gpkg"):
        fix += f", or set {extension_key}: {ext.lower().lstrip('.')}"
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return f"{other}{more} is there instead; {fix}"


def _read(path: str, n: int, offset: int = 0) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read(n)


def _shape_count(shx: str) -> int:
    size = os.path.getsize(shx)
    head = _read(shx, 100)
    if len(head) < 100 or struct.unpack(">i", head[:4])[0] != 9994:
        raise IsslideError(f"{shx}: not a shapefile index (bad header); {REEXPORT}")
    declared = struct.unpack(">i", head[24:28])[0] * 2
    if size < declared:
        raise IsslideError(
            f"{shx}: truncated shapefile index ({size} of {declared} bytes present); {REEXPORT}"
        )
    return (declared - 100) // 8


def check_shapefile(path: str) -> tuple[float, float, float, float] | None:
    """Check that a shapefile is complete and consistent; return its bounding box (in its own
    CRS) or None when it has no shape.

    Errors: a missing ``.shx``/``.dbf``, a bad header, a record of the index that points beyond
    the end of the ``.shp`` (a truncated file: GDAL would read those shapes as empty geometries),
    a truncated ``.dbf``, and a different number of shapes and attribute records.
    """
    stem = os.path.splitext(path)[0]
    lacking = [s for s in (".shx", ".dbf") if not os.path.exists(stem + s)]
    if lacking:
        raise IsslideError(
            f"{path}: shapefile lacks its {' and '.join(lacking)} file; copy the whole shapefile "
            f"(.shp, .shx, .dbf, .prj) or {REEXPORT}"
        )
    size = os.path.getsize(path)
    head = _read(path, 100)
    if len(head) < 100 or struct.unpack(">i", head[:4])[0] != 9994:
        raise IsslideError(f"{path}: not a shapefile (bad header, {size} bytes); {REEXPORT}")
    declared = struct.unpack(">i", head[24:28])[0] * 2
    shx = stem + ".shx"
    n = _shape_count(shx)
    index = _read(shx, 8 * n, 100)
    for i in range(n):
        offset, length = struct.unpack(">ii", index[8 * i : 8 * i + 8])
        if offset * 2 + 8 + length * 2 > size:
            raise IsslideError(
                f"{path}: truncated shapefile: shape {i + 1} of {n} lies beyond the end of the "
                f"file ({size} of {declared} bytes present); {REEXPORT}"
            )
    if size < declared:
        raise IsslideError(
            f"{path}: truncated shapefile ({size} of {declared} bytes present); {REEXPORT}"
        )
    dbf = stem + ".dbf"
    dhead = _read(dbf, 32)
    if len(dhead) < 32:
        raise IsslideError(f"{dbf}: truncated attribute table (no header); {REEXPORT}")
    records = struct.unpack("<I", dhead[4:8])[0]
    header_len, record_len = struct.unpack("<HH", dhead[8:12])
    expected = header_len + records * record_len
    if os.path.getsize(dbf) < expected:
        raise IsslideError(
            f"{dbf}: truncated attribute table ({os.path.getsize(dbf)} of {expected} bytes "
            f"present); {REEXPORT}"
        )
    if records != n:
        raise IsslideError(
            f"{path}: {n} shapes but {records} attribute records in {os.path.basename(dbf)}; the "
            f"files come from different saves: {REEXPORT}"
        )
    if n == 0:
        return None
    xmin, ymin, xmax, ymax = struct.unpack("<4d", head[36:68])
    return (xmin, ymin, xmax, ymax)


@functools.lru_cache(maxsize=64)
def _crs(text: str):
    from pyproj import CRS

    return CRS.from_user_input(text)


def layer_crs_bounds(path: str):
    """(CRS or None, bounding box or None) of an annotation layer, read cheaply; a shapefile is
    checked for completeness first (:func:`check_shapefile`)."""
    if path.lower().endswith(".shp"):
        bbox = check_shapefile(path)
        prj = os.path.splitext(path)[0] + ".prj"
        if not os.path.exists(prj):
            return None, bbox
        with open(prj, errors="replace") as fh:
            text = fh.read().strip()
        try:
            return _crs(text), bbox
        except Exception as exc:
            raise IsslideError(
                f"{prj}: not a readable CRS ({' '.join(str(exc).split())[:120]}); save the layer "
                "again with its CRS (EPSG:4326)"
            ) from None
    import pyogrio

    try:
        info = pyogrio.read_info(path, force_total_bounds=True)
    except Exception as exc:
        raise IsslideError(
            f"{path}: unreadable annotation file ({' '.join(str(exc).split())[:200]}); "
            "re-export the layer from your GIS"
        ) from None
    crs = _crs(info["crs"]) if info.get("crs") else None
    bounds = info.get("total_bounds")
    has = info.get("features", 0) and bounds is not None
    return crs, (tuple(float(b) for b in bounds) if has else None)


def _overlaps(a, b) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def _looks_lonlat(bbox) -> bool:
    return -180 <= bbox[0] <= bbox[2] <= 180 and -90 <= bbox[1] <= bbox[3] <= 90


@functools.lru_cache(maxsize=64)
def _to_lonlat(crs):
    """A transformer to EPSG:4326 lon/lat (one per CRS: creating one costs tens of ms)."""
    from pyproj import Transformer

    return Transformer.from_crs(crs, 4326, always_xy=True)


def _area_of_use(crs):
    """The CRS's area of use; a .prj in ESRI WKT carries none, its EPSG equivalent does."""
    if crs.area_of_use is not None:
        return crs.area_of_use
    code = crs.to_epsg(min_confidence=70)
    return _crs(f"EPSG:{code}").area_of_use if code else None


def check_annotation_layer(path: str, aoi: tuple | None = None, aoi_key: str = "") -> None:
    """The planning-time check of one annotation file: complete, with a CRS, and its polygons
    where that CRS is used (a wrong ``.prj``, such as EPSG:2154 declared on lon/lat data, puts
    them elsewhere) and inside the stack's area of interest when one is set."""
    crs, bbox = layer_crs_bounds(path)
    if crs is None:
        raise IsslideError(
            f"{path}: field 'crs' missing (no .prj / no CRS); save the layer with its CRS "
            "(EPSG:4326)"
        )
    if bbox is None:
        return
    w, s, e, n = _to_lonlat(crs).transform_bounds(*bbox)
    name = crs.to_string()
    area = _area_of_use(crs)
    if area is not None and not _overlaps((w, s, e, n), area.bounds):
        hint = (
            "its coordinates look like longitude/latitude: declare EPSG:4326 (save the layer "
            "with EPSG:4326 or replace its .prj)"
            if not crs.is_geographic and _looks_lonlat(bbox)
            else "check the layer's CRS (its .prj)"
        )
        raise IsslideError(
            f"{path}: its polygons, read in the declared CRS {name}, fall at lon {w:.3f}..{e:.3f}, "
            f"lat {s:.3f}..{n:.3f}, outside the area where {name} is used ({area.name[:60]}); "
            f"{hint}"
        )
    if aoi is not None and not _overlaps((w, s, e, n), aoi):
        hint = (
            "; its coordinates would fit as EPSG:4326: fix its .prj"
            if not crs.is_geographic and _overlaps(bbox, aoi)
            else ""
        )
        raise IsslideError(
            f"{path}: every polygon lies outside {aoi_key} (polygons lon {w:.3f}..{e:.3f}, lat "
            f"{s:.3f}..{n:.3f}; area of interest lon {aoi[0]:.3f}..{aoi[2]:.3f}, lat "
            f"{aoi[1]:.3f}..{aoi[3]:.3f}); check that the layer was drawn for this stack and its "
            f"CRS ({name}){hint}"
        )
