"""Synthetic dataset inputs (interferograms + annotation shapefiles) for tests and benchmarks.

Not a simulator of InSAR physics (that is :mod:`isslide.simulate`): only rasters and shapefiles
with the workflow's formats and path patterns, fast to make at any size::

    {root}/results/interferograms/{stack}/{delay}d/{ref}_{sec}/coherence.tif, phase.tif, layover_shadow.tif
    {root}/annotations/{stack}/{delay}d/{ref}_{sec}.shp

Areas are ellipses at seeded random places; each is active (annotated) on a seeded random
subset of the interferograms, so some patches are "no-move" samples.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import warnings

import geopandas as gpd
import numpy as np
from affine import Affine
from shapely.geometry import Polygon

from ..files import WGS84, apply, write_raster
from ..labels import CLASSES


def ellipse(lon, lat, a, b, angle, n=24) -> Polygon:
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    x, y = a * np.cos(t), b * np.sin(t)
    c, s = math.cos(angle), math.sin(angle)
    return Polygon(np.column_stack([lon + c * x - s * y, lat + s * x + c * y]))


def make_pairs(start: str, n_dates: int, delays, revisit: int = 6):
    d0 = dt.date.fromisoformat(start)
    dates = [d0 + dt.timedelta(days=revisit * i) for i in range(n_dates)]
    out = []
    for delay in delays:
        for ref in dates:
            sec = ref + dt.timedelta(days=delay)
            if sec in dates:
                out.append((delay, ref.strftime("%Y%m%d"), sec.strftime("%Y%m%d")))
    return out


def make_stack(
    root: str,
    stack: str = "demo",
    pairs=None,
    height: int = 300,
    width: int = 400,
    n_areas: int = 6,
    seed: int = 0,
    west: float = 6.0,
    north: float = 45.0,
    pixel: float = 1.315e-4,
    area_px: tuple[float, float] = (6, 20),
    active: float = 0.7,
    compress: str | None = None,
) -> dict:
    """Write a synthetic stack under ``root``; return paths and the truth (areas, activity)."""
    rng = np.random.default_rng(seed)
    pairs = pairs or make_pairs("2018-07-02", 4, (6, 12))
    transform = Affine(pixel, 0, west, 0, -pixel, north)
    margin = area_px[1] + 2
    rows = rng.uniform(margin, height - margin, n_areas)
    cols = rng.uniform(margin, width - margin, n_areas)
    axes = rng.uniform(*area_px, size=(n_areas, 2)) * pixel
    angles = rng.uniform(0, math.pi, n_areas)
    classes = rng.choice(len(CLASSES), n_areas)
    confidence = rng.integers(1, 4, n_areas)
    polys = []
    for i in range(n_areas):
        lon, lat = apply(transform, cols[i], rows[i])
        polys.append(ellipse(lon, lat, axes[i, 0], axes[i, 1], angles[i]))
    ids = np.arange(1, n_areas + 1) * 7  # ids need not be contiguous
    activity = rng.random((len(pairs), n_areas)) < active
    out = {
        "pairs": [],
        "transform": transform,
        "height": height,
        "width": width,
        "ids": ids,
        "polygons": polys,
    }
    yy, xx = np.mgrid[0:height, 0:width]
    layover = np.zeros((height, width), np.uint8)
    layover[: max(1, height // 50), :] = 1  # a strip of layover
    layover[:, -max(1, width // 60) :] = 2  # and of shadow
    for p, (delay, ref, sec) in enumerate(pairs):
        base = os.path.join(root, "results", "interferograms", stack, f"{delay}d", f"{ref}_{sec}")
        os.makedirs(base, exist_ok=True)
        coh = rng.random((height, width), dtype=np.float32)
        phase = ((xx * 0.01 * (p + 1) + yy * 0.003) % (2 * math.pi) - math.pi).astype(np.float32)
        coh[-1, :5] = -9999.0  # a few nodata pixels
        write_raster(
            os.path.join(base, "coherence.tif"), coh, transform, WGS84, -9999.0, compress=compress
        )
        write_raster(
            os.path.join(base, "phase.tif"), phase, transform, WGS84, -9999.0, compress=compress
        )
        write_raster(
            os.path.join(base, "layover_shadow.tif"),
            layover,
            transform,
            WGS84,
            255,
            compress=compress,
        )
        sel = np.flatnonzero(activity[p])
        ann_dir = os.path.join(root, "annotations", stack, f"{delay}d")
        os.makedirs(ann_dir, exist_ok=True)
        ann = os.path.join(ann_dir, f"{ref}_{sec}.shp")
        frame = gpd.GeoDataFrame(
            {
                "id": ids[sel].astype(np.int64),
                "class": [CLASSES[c] for c in classes[sel]],
                "confidence": confidence[sel].astype(np.int64),
                "repetitions": np.ones(len(sel), np.int64),
            },
            geometry=[polys[i] for i in sel],
            crs=WGS84,
        )
        with warnings.catch_warnings():  # 'repetitions' -> 'repetition' (DBF name limit)
            warnings.simplefilter("ignore")
            frame.to_file(ann, engine="pyogrio")
        out["pairs"].append(
            {
                "delay": delay,
                "reference": ref,
                "secondary": sec,
                "coherence": os.path.join(base, "coherence.tif"),
                "phase": os.path.join(base, "phase.tif"),
                "layover_shadow": os.path.join(base, "layover_shadow.tif"),
                "annotation": ann,
                "label": os.path.join(
                    root, "results", "labels", stack, f"{delay}d", f"{ref}_{sec}.tif"
                ),
                "active": sel,
            }
        )
    return out
