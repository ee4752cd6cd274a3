"""Candidate polygons for the annotators: connected detections, their scores, and repetitions.

A candidate is an 8-connected group of pixels at or above the threshold with at least
``min_size`` pixels, vectorised on the interferogram's grid and stored in EPSG:4326 with the
fields of :data:`FIELDS`: the annotation fields of :mod:`isslide.labels` (``id``, ``class``
``Unknown``, ``confidence``, ``repetitions``) plus what an annotator needs to sort them
(``score_max``, ``score_mean``, ``area_m2``: geodesic on the WGS84 ellipsoid, ``pixels``) and the
interferogram (``reference``, ``secondary`` as YYYYMMDD, ``delay`` in days).

``confidence`` comes from the mean probability ``s`` of the candidate relative to the threshold
``t``: ``u = (s - t) / (1 - t)``; 1 below 1/3, 2 below 2/3, 3 above.

Across a stack (:func:`stack_candidates`): ``repetitions`` is the number of interferograms of the
stack (its own included) holding a candidate that overlaps it (shares area), and ``id`` numbers
the groups of overlapping candidates, so one phenomenon keeps one id in every interferogram, as
the annotation files require.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Geod
from rasterio.features import shapes
from scipy import ndimage
from shapely.geometry import shape

from ..files import WGS84
from .defaults import default

MIN_SIZE = default("min_size")
FIELDS = [
    "id",
    "score_max",
    "score_mean",
    "area_m2",
    "pixels",
    "reference",
    "secondary",
    "delay",
    "class",
    "confidence",
    "repetitions",
]
_GEOD = Geod(ellps="WGS84")
_EIGHT = np.ones((3, 3), bool)


def empty_frame() -> gpd.GeoDataFrame:
    cols = {
        "id": "int64",
        "score_max": "float64",
        "score_mean": "float64",
        "area_m2": "float64",
        "pixels": "int64",
        "reference": "object",
        "secondary": "object",
        "delay": "Int64",
        "class": "object",
        "confidence": "int64",
        "repetitions": "int64",
    }
    data = {k: pd.Series(dtype=t) for k, t in cols.items()}
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries([], crs=WGS84), crs=WGS84)


def confidence_from_score(score: np.ndarray, threshold: float) -> np.ndarray:
    u = (np.asarray(score, float) - threshold) / max(1.0 - threshold, 1e-9)
    return (1 + (u >= 1 / 3) + (u >= 2 / 3)).astype(np.int64)


def geodesic_area(geom) -> float:
    return abs(_GEOD.geometry_area_perimeter(geom)[0])


def find_candidates(
    probability: np.ndarray,
    mask: np.ndarray,
    transform,
    crs,
    threshold: float,
    min_size: int = MIN_SIZE,
    reference: str | None = None,
    secondary: str | None = None,
    delay: int | None = None,
) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """(candidates in EPSG:4326, label raster of the kept components: 0 none, id inside)."""
    labels, n = ndimage.label(mask.astype(bool), structure=_EIGHT)
    if n == 0:
        return empty_frame(), labels.astype(np.int32)
    index = np.arange(1, n + 1)
    pixels = ndimage.sum_labels(np.ones_like(labels), labels, index).astype(np.int64)
    keep = pixels >= int(min_size)
    remap = np.zeros(n + 1, np.int32)
    remap[index[keep]] = np.arange(1, int(keep.sum()) + 1)
    labels = remap[labels]
    m = int(keep.sum())
    if m == 0:
        return empty_frame(), labels
    index = np.arange(1, m + 1)
    prob = np.nan_to_num(probability, nan=0.0)
    score_max = ndimage.maximum(prob, labels, index)
    score_mean = ndimage.mean(prob, labels, index)
    pixels = pixels[keep]
    parts: dict[int, list] = {}
    for geom, value in shapes(labels, mask=labels > 0, transform=transform, connectivity=8):
        parts.setdefault(int(value), []).append(shape(geom))
    geoms = [shapely.union_all(parts[i]) if len(parts[i]) > 1 else parts[i][0] for i in index]
    frame = gpd.GeoDataFrame(
        {
            "id": index.astype(np.int64),
            "score_max": np.asarray(score_max, float),
            "score_mean": np.asarray(score_mean, float),
            "pixels": pixels,
        },
        geometry=gpd.GeoSeries(geoms, crs=crs),
        crs=crs,
    )
    if frame.crs != WGS84:
        frame = frame.to_crs(WGS84)
    frame["area_m2"] = [geodesic_area(g) for g in frame.geometry]
    frame["reference"] = reference
    frame["secondary"] = secondary
    frame["delay"] = pd.array([delay] * m, dtype="Int64")
    frame["class"] = "Unknown"
    frame["confidence"] = confidence_from_score(frame["score_mean"].to_numpy(), threshold)
    frame["repetitions"] = np.ones(m, np.int64)
    return frame[FIELDS + ["geometry"]], labels


def stack_candidates(frames: list[gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    """All candidates of a stack (one frame per interferogram, in plan order) with
    ``repetitions`` and a stack-wide ``id`` shared by overlapping candidates."""
    frames = [f.to_crs(WGS84) if f.crs != WGS84 else f for f in frames if len(f)]
    if not frames:
        return empty_frame()
    allc = pd.concat([f.assign(_ifg=k) for k, f in enumerate(frames)], ignore_index=True)
    allc = gpd.GeoDataFrame(allc, geometry="geometry", crs=WGS84)
    n = len(allc)
    geoms = allc.geometry.to_numpy()
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    sel = left < right
    left, right = left[sel], right[sel]
    if left.size:
        inter = shapely.area(shapely.intersection(geoms[left], geoms[right])) > 0
        left, right = left[inter], right[inter]
    ifg = allc["_ifg"].to_numpy()
    seen = [{int(ifg[i])} for i in range(n)]
    parent = np.arange(n)

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in zip(left.tolist(), right.tolist(), strict=False):
        seen[a].add(int(ifg[b]))
        seen[b].add(int(ifg[a]))
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([root(i) for i in range(n)])
    _, group = np.unique(roots, return_inverse=True)  # roots are first members: plan order
    allc["id"] = (group + 1).astype(np.int64)
    allc["repetitions"] = np.array([len(s) for s in seen], np.int64)
    return allc.drop(columns="_ifg")[FIELDS + ["geometry"]]


def pair_subset(frame: gpd.GeoDataFrame, reference: str, secondary: str) -> gpd.GeoDataFrame:
    sel = (frame["reference"].astype(str) == str(reference)) & (
        frame["secondary"].astype(str) == str(secondary)
    )
    out = frame.loc[sel].reset_index(drop=True)
    return out if len(out) else empty_frame()
