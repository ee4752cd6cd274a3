"""Terrain of the simulated world: scene box, DEM (real file or seeded fractal relief), land cover."""

from __future__ import annotations

import logging
import math
import os

import numpy as np
import rasterio
from affine import Affine
from rasterio.errors import RasterioIOError
from scipy import ndimage

from ..errors import IsslideError
from ..geometry import EARTH_RADIUS
from .fields import power_law_field, rng

log = logging.getLogger("isslide.simulate")

# Land-cover classes (codes in the cover raster); parameters per class in config simulation.surfaces.
COVER = ("rock", "meadow", "forest", "snow", "water", "disturbed")
ROCK, MEADOW, FOREST, SNOW, WATER, DISTURBED = range(len(COVER))

M_PER_DEG = math.pi / 180.0 * EARTH_RADIUS


def scene_bounds(sim: dict) -> tuple[float, float, float, float]:
    """[west, south, east, north] of the simulated scene from its centre and size."""
    lon0, lat0 = sim["center"]
    width_km, height_km = sim["size_km"]
    half_lon = width_km * 500.0 / (M_PER_DEG * math.cos(math.radians(lat0)))
    half_lat = height_km * 500.0 / M_PER_DEG
    return (lon0 - half_lon, lat0 - half_lat, lon0 + half_lon, lat0 + half_lat)


def expand(bounds, margin_m: float, lat0: float):
    dlon = margin_m / (M_PER_DEG * math.cos(math.radians(lat0)))
    dlat = margin_m / M_PER_DEG
    w, s, e, n = bounds
    return (w - dlon, s - dlat, e + dlon, n + dlat)


def grid(bounds, spacing_lon: float, spacing_lat: float):
    """(transform, width, height) of a lon/lat grid covering ``bounds`` (north-up)."""
    w, s, e, n = bounds
    width = int(math.ceil((e - w) / spacing_lon - 1e-9))
    height = int(math.ceil((n - s) / spacing_lat - 1e-9))
    return Affine(spacing_lon, 0.0, w, 0.0, -spacing_lat, n), width, height


def cell_centres(transform: Affine, rows, cols):
    lon = transform.c + (np.asarray(cols) + 0.5) * transform.a
    lat = transform.f + (np.asarray(rows) + 0.5) * transform.e
    return lon, lat


def _open_dem(path: str):
    if not os.path.exists(path):
        raise IsslideError(
            f"{path}: DEM file not found (simulation.dem); point it to a GeoTIFF or SRTM .hgt "
            "file in EPSG:4326, or set simulation.dem: null for procedural relief"
        )
    name = f"/vsigzip/{path}" if path.endswith(".gz") else path
    try:
        return rasterio.open(name)
    except RasterioIOError as exc:
        raise IsslideError(
            f"{path}: cannot read the DEM ({' '.join(str(exc).split())}); give a GeoTIFF or an "
            "SRTM .hgt file (simulation.dem)"
        ) from None


def read_dem(path: str, bounds, transform: Affine, width: int, height: int) -> np.ndarray:
    """Heights of a DEM file resampled (cubic spline) to the pixel centres of a lon/lat grid."""
    with _open_dem(path) as src:
        if src.crs is None or not src.crs.is_geographic:
            raise IsslideError(
                f"{path}: the DEM must be in geographic coordinates (EPSG:4326), found "
                f"{src.crs}; reproject it with gdalwarp -t_srs EPSG:4326"
            )
        b = src.bounds
        w, s, e, n = bounds
        if not (b.left <= w and b.right >= e and b.bottom <= s and b.top >= n):
            raise IsslideError(
                f"{path}: the DEM covers lon {b.left:.4f}..{b.right:.4f}, lat {b.bottom:.4f}.."
                f"{b.top:.4f} but the scene plus margin needs lon {w:.4f}..{e:.4f}, lat "
                f"{s:.4f}..{n:.4f}; move simulation.center, reduce simulation.size_km or use a "
                "larger DEM"
            )
        win = rasterio.windows.from_bounds(w, s, e, n, src.transform)
        win = win.round_offsets().round_lengths()
        pad = 3
        col0 = max(int(win.col_off) - pad, 0)
        row0 = max(int(win.row_off) - pad, 0)
        col1 = min(int(win.col_off + win.width) + pad, src.width)
        row1 = min(int(win.row_off + win.height) + pad, src.height)
        window = rasterio.windows.Window(col0, row0, col1 - col0, row1 - row0)
        try:
            data = src.read(1, window=window, masked=True).astype(np.float64)
        except RasterioIOError as exc:
            raise IsslideError(f"{path}: cannot read the DEM pixels ({exc})") from None
        src_tr = src.window_transform(window)
    mask = np.ma.getmaskarray(data)
    values = np.ma.getdata(data)
    if mask.any():
        frac = mask.mean()
        if frac > 0.05:
            raise IsslideError(
                f"{path}: {100 * frac:.0f}% of the DEM pixels over the scene are nodata; fill the "
                "voids or choose another DEM (simulation.dem)"
            )
        log.warning(
            "%s: filling %.2f%% nodata pixels with their nearest neighbour", path, 100 * frac
        )
        idx = ndimage.distance_transform_edt(mask, return_distances=False, return_indices=True)
        values = values[tuple(idx)]
    rows, cols = np.indices((height, width))
    lon, lat = cell_centres(transform, rows, cols)
    inv = ~src_tr
    c, r = inv @ (lon, lat)
    heights = ndimage.map_coordinates(values, [r - 0.5, c - 0.5], order=3, mode="nearest")
    return heights.astype(np.float32)


def procedural_dem(sim: dict, seed: int, stack: str, transform: Affine, width: int, height: int):
    """Seeded fractal relief (power spectrum ~ k**-beta), sharpened into peaks and valleys."""
    p = sim["procedural"]
    lat0 = sim["center"][1]
    cell = (abs(transform.e) * M_PER_DEG, transform.a * M_PER_DEG * math.cos(math.radians(lat0)))
    field = power_law_field(
        (height, width), rng(seed, stack, "relief"), p["beta"], cell, p["outer_scale_km"] * 1e3
    )
    lo, hi = field.min(), field.max()
    unit = (field - lo) / (hi - lo) if hi > lo else np.zeros_like(field)
    return (p["base_m"] + p["relief_m"] * unit ** p["sharpness"]).astype(np.float32)


def gradients(dem: np.ndarray, transform: Affine, lat0: float):
    """(dz/deast, dz/dnorth) of a north-up lon/lat DEM, dimensionless."""
    east_m = abs(transform.a) * M_PER_DEG * math.cos(math.radians(lat0))
    north_m = abs(transform.e) * M_PER_DEG
    dz_drow, dz_dcol = np.gradient(dem.astype(np.float64), north_m, east_m)
    return dz_dcol, -dz_drow


def land_cover(dem: np.ndarray, transform: Affine, sim: dict, seed: int, stack: str) -> np.ndarray:
    """Land-cover class per DEM cell from height, slope and seeded patchiness."""
    lc = sim["land_cover"]
    if lc["uniform"]:
        return np.full(dem.shape, COVER.index(lc["uniform"]), np.uint8)
    lat0 = sim["center"][1]
    gx, gy = gradients(dem, transform, lat0)
    slope = np.degrees(np.arctan(np.hypot(gx, gy)))
    gen = rng(seed, stack, "cover")
    cell = (abs(transform.e) * M_PER_DEG, transform.a * M_PER_DEG * math.cos(math.radians(lat0)))
    patches = power_law_field(dem.shape, gen, 3.0, cell, 1500.0)
    wobble = power_law_field(dem.shape, gen, 3.0, cell, 800.0)
    lakes = power_law_field(dem.shape, gen, 3.5, cell, 2000.0)
    h = dem.astype(np.float64)
    span = max(float(h.max() - h.min()), 1.0)
    treeline = np.quantile(h, lc["treeline_quantile"])
    snowline = np.quantile(h, lc["snowline_quantile"])
    h_eff = h + 0.03 * span * wobble
    cover = np.full(dem.shape, ROCK, np.uint8)
    cover[(h_eff >= treeline) & (slope < 30)] = MEADOW
    cover[(h_eff < treeline) & (slope < 42)] = FOREST
    if lc["meadow_fraction"] > 0:
        thr = np.quantile(patches, 1.0 - lc["meadow_fraction"])
        cover[(patches > thr) & (slope < 30)] = MEADOW
    if lc["snowline_quantile"] < 1.0:
        cover[(h_eff > snowline) & (slope < 40)] = SNOW
    if lc["water_fraction"] > 0:
        flat = slope < 4
        if flat.any():
            score = np.where(flat, lakes - (h - h.min()) / span, -np.inf)
            n_water = int(lc["water_fraction"] * dem.size)
            if n_water > 0:
                thr = np.partition(score.ravel(), -n_water)[-n_water]
                cover[(score >= thr) & flat] = WATER
    return cover


def flow_accumulation(h: np.ndarray) -> np.ndarray:
    """Number of cells draining through each cell (D8: each cell drains to its steepest lower
    neighbour; pits and the border drain nowhere). One pass from the highest cell down."""
    ny, nx = h.shape
    hp = np.pad(h, 1, mode="edge")
    idx = np.pad(np.arange(ny * nx).reshape(ny, nx), 1, mode="constant", constant_values=-1)
    best = np.zeros(h.shape)
    recv = np.full(h.shape, -1, np.int64)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy == dx == 0:
                continue
            drop = (h - hp[1 + dy : 1 + dy + ny, 1 + dx : 1 + dx + nx]) / math.hypot(dy, dx)
            nb = idx[1 + dy : 1 + dy + ny, 1 + dx : 1 + dx + nx]
            better = (drop > best) & (nb >= 0)
            best[better] = drop[better]
            recv[better] = nb[better]
    acc = [1.0] * (ny * nx)
    to = recv.ravel().tolist()
    for c in np.argsort(-h.ravel(), kind="stable").tolist():  # plain lists: fast scalar loop
        t = to[c]
        if t >= 0:
            acc[t] += acc[c]
    return np.asarray(acc).reshape(h.shape)


def _lines(acc: np.ndarray, start_cells: float) -> np.ndarray:
    """0..1 strength of the drainage lines: 0 below ``start_cells`` of catchment, 1 from ten
    times that (a network of thin lines, one cell wide, softened over half a cell)."""
    strength = np.clip(np.log10(np.maximum(acc, 1.0) / start_cells), 0.0, 1.0)
    return ndimage.gaussian_filter(strength, 0.5)


def coherence_texture(
    dem: np.ndarray, transform: Affine, sim: dict, seed: int, stack: str
) -> np.ndarray:
    """Multiplicative coherence factor of each DEM cell (``simulation.texture``).

    The product of a correlated log-normal field (coherence varying continuously inside a land
    cover, ``amplitude`` = std of its logarithm, correlation scale ``scale_m``) and thin
    decorrelated lines: streams (the D8 drainage network of the relief from a catchment of
    ``stream_area_km2``, coherence times ``1 - stream_depth``) and ridges (the drainage network
    of the inverted relief from ``ridge_area_km2``, ``1 - ridge_depth``).
    """
    tx = sim["texture"]
    lat0 = sim["center"][1]
    cell = (abs(transform.e) * M_PER_DEG, transform.a * M_PER_DEG * math.cos(math.radians(lat0)))
    q = np.ones(dem.shape)
    if tx["amplitude"] > 0:
        field = power_law_field(
            dem.shape, rng(seed, stack, "texture"), 4.0, cell, float(tx["scale_m"])
        )
        q *= np.exp(float(tx["amplitude"]) * field)
    h = ndimage.gaussian_filter(dem.astype(np.float64), 1.0)
    if float(h.max() - h.min()) <= 0:
        return q.astype(np.float32)
    cell_km2 = cell[0] * cell[1] / 1e6
    for key, depth, sign in (
        ("stream", tx["stream_depth"], 1.0),
        ("ridge", tx["ridge_depth"], -1.0),
    ):
        area = float(tx[f"{key}_area_km2"])
        if area > 0 and depth > 0:
            q *= 1.0 - float(depth) * _lines(flow_accumulation(sign * h), area / cell_km2)
    return q.astype(np.float32)
