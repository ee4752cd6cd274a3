"""Patch centres of a stack: distance-transform maxima of each area's global annotation map.

The global annotation map of a stack is the union, over all its interferograms (all delays), of
the pixels labelled with each phenomenon id. Each area (id) is treated on its own: its union
mask -> Euclidean distance transform (``scipy.ndimage.distance_transform_edt``) -> local maxima
at least ``min_separation`` pixels apart (greedy, highest distance first, ties broken by
row/col) -> centres ``(id, k)``. An annotation change therefore moves only the centres of the
ids whose union mask it changes; every other centre stays exactly where it was.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import ndimage
from shapely.geometry import Point

from ..errors import IsslideError
from ..files import Grid, apply, atomic_path, check_same_grid, read_band
from ..labels import read_phenomena

log = logging.getLogger("isslide.dataset")

CENTRE_COLUMNS = [
    "stack",
    "phenomenon_id",
    "k",
    "row",
    "col",
    "lon",
    "lat",
    "distance_px",
    "zone",
    "role",
    "class",
    "confidence",
    "interferograms",
]


def union_masks(label_paths: list[str]):
    """Per id, the sorted unique flat pixel indices labelled in any of the rasters.

    Returns ``(grid, {id: flat_indices}, {id: [attribute dicts]})``; reads one raster at a time.
    """
    if not label_paths:
        raise IsslideError("no label rasters: the stack has no interferogram")
    grid = Grid.of(label_paths[0])
    pixels: dict[int, np.ndarray] = {}
    attributes: dict[int, list[dict]] = {}
    for path in label_paths:
        check_same_grid(grid, label_paths[0], path)
        lab, _ = read_band(path)
        for pid, attrs in read_phenomena(path).items():
            attributes.setdefault(pid, []).append(attrs)
        flat = np.flatnonzero(lab > 0)
        if flat.size == 0:
            continue
        vals = lab.ravel()[flat]
        order = np.argsort(vals, kind="stable")
        vals, flat = vals[order], flat[order]
        ids, starts = np.unique(vals, return_index=True)
        ends = np.append(starts[1:], len(vals))
        for pid, s, e in zip(ids.tolist(), starts, ends, strict=True):
            new = flat[s:e]
            old = pixels.get(pid)
            pixels[pid] = new if old is None else np.union1d(old, new)
    return grid, pixels, attributes


def area_maxima(mask: np.ndarray, min_separation: float) -> list[tuple[int, int, float]]:
    """Local maxima of the distance transform of ``mask``, at least ``min_separation`` px apart.

    Returns ``[(row, col, distance)]`` in the order chosen (largest distance first).
    """
    padded = np.pad(mask, 1)
    dist = ndimage.distance_transform_edt(padded)
    size = 2 * int(np.ceil(min_separation)) + 1
    peak = (dist == ndimage.maximum_filter(dist, size=size, mode="constant", cval=0.0)) & padded
    rows, cols = np.nonzero(peak)
    d = dist[rows, cols]
    order = np.lexsort((cols, rows, -d))
    chosen: list[tuple[int, int, float]] = []
    sep2 = float(min_separation) ** 2
    for i in order:
        r, c = int(rows[i]), int(cols[i])
        if all((r - a) ** 2 + (c - b) ** 2 >= sep2 for a, b, _ in chosen):
            chosen.append((r, c, float(d[i])))
    return [(r - 1, c - 1, dd) for r, c, dd in chosen]


def zone_of(lon: float, lat: float, zones: dict) -> tuple[str, str]:
    """(zone name, role) of the first zone (by name) whose bbox contains the point, or ('', '')."""
    for name in sorted(zones):
        x0, y0, x1, y1 = zones[name]["bbox"]
        if x0 <= lon <= x1 and y0 <= lat <= y1:
            return name, zones[name]["role"]
    return "", ""


def _summary_attributes(attrs: list[dict]) -> tuple[str, int]:
    classes = pd.Series([a["class"] for a in attrs])
    top = classes.value_counts()
    cls = sorted(top[top == top.max()].index)[0]
    return str(cls), int(max(a["confidence"] for a in attrs))


def compute_centres(label_paths: list[str], stack: str, zones: dict, min_separation: float = 10):
    """The centres of a stack as a GeoDataFrame (EPSG of the grid) with CENTRE_COLUMNS."""
    grid, pixels, attributes = union_masks(label_paths)
    counts = {pid: len(v) for pid, v in attributes.items()}
    rows_out = []
    for pid in sorted(pixels):
        r, c = np.divmod(pixels[pid], grid.width)
        r0, c0 = int(r.min()), int(c.min())
        mask = np.zeros((int(r.max()) - r0 + 1, int(c.max()) - c0 + 1), bool)
        mask[r - r0, c - c0] = True
        cls, conf = _summary_attributes(
            attributes.get(pid, [{"class": "Unknown", "confidence": 1}])
        )
        for k, (rr, cc, d) in enumerate(area_maxima(mask, min_separation)):
            row, col = rr + r0, cc + c0
            lon, lat = apply(grid.transform, col + 0.5, row + 0.5)
            zone, role = zone_of(lon, lat, zones)
            rows_out.append(
                (stack, pid, k, row, col, lon, lat, d, zone, role, cls, conf, counts.get(pid, 0))
            )
    frame = pd.DataFrame(rows_out, columns=CENTRE_COLUMNS)
    frame = frame.astype({"phenomenon_id": "int64", "k": "int64", "row": "int64", "col": "int64"})
    geometry = [Point(x, y) for x, y in zip(frame["lon"], frame["lat"], strict=True)]
    out = gpd.GeoDataFrame(frame, geometry=geometry, crs=grid.crs)
    outside = out.loc[out["zone"] == "", "phenomenon_id"].unique()
    if len(outside):
        log.warning(
            "stack %s: %d centre(s) of id(s) %s lie in no zone; they get no patches",
            stack,
            int((out["zone"] == "").sum()),
            ", ".join(map(str, outside[:20])),
        )
    log.info("stack %s: %d areas -> %d centres", stack, len(pixels), len(out))
    return out, grid


def write_centres(frame: gpd.GeoDataFrame, path: str) -> None:
    with atomic_path(path, ".gpkg") as tmp:
        import os

        os.unlink(tmp)  # GDAL refuses to overwrite an empty file as a GeoPackage
        frame.to_file(tmp, driver="GPKG", layer="centres", engine="pyogrio")


def read_centres(path: str) -> gpd.GeoDataFrame:
    try:
        frame = gpd.read_file(path, layer="centres", engine="pyogrio")
    except Exception as exc:
        raise IsslideError(
            f"{path}: unreadable centres GeoPackage ({exc}); rerun patch_centres"
        ) from None
    missing = [c for c in CENTRE_COLUMNS if c not in frame.columns]
    if missing:
        raise IsslideError(
            f"{path}: centres lack column(s) {', '.join(missing)}; rerun patch_centres"
        )
    frame["zone"] = frame["zone"].fillna("")
    frame["role"] = frame["role"].fillna("")
    return frame
