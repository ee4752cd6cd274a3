"""Radar <-> ground mapping with a DEM, on the geometry of :mod:`isslide.geometry`.

``ground_to_radar`` (forward) is :meth:`SarGeometry.ground_to_radar`. This module adds the inverse,
radar -> ground, which DEM-assisted co-registration and topographic phase simulation need: for a
radar line the along-track position ``s`` is known, and the slant range of a sample fixes the
cross-track position ``x`` of the ground point once its height ``h(s, x)`` is known. Each block of
lines is solved at once, without iteration: the slant range is evaluated along a dense cross-track
profile of the DEM, made monotonic (in layover, where range decreases with distance, the first
point imaged at a range is kept) and inverted by a batched linear interpolation.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import rasterio
from affine import Affine
from rasterio.errors import RasterioError
from scipy import ndimage

from ..errors import IsslideError
from ..geometry import Orbit, SarGeometry


@dataclass
class Dem:
    """Heights (float64, NaN where nodata) on a lon/lat grid (pixel-is-area transform)."""

    heights: np.ndarray
    transform: Affine
    path: str = "DEM"

    @property
    def bounds(self):
        h, w = self.heights.shape
        x0, y0 = self.transform @ (0, 0)
        x1, y1 = self.transform @ (w, h)
        return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)

    def pixel(self, lon, lat):
        """Fractional (row, col) of lon/lat, pixel centres at integers."""
        t = ~self.transform
        lon, lat = np.asarray(lon, float), np.asarray(lat, float)
        col = t.a * lon + t.b * lat + t.c
        row = t.d * lon + t.e * lat + t.f
        return row - 0.5, col - 0.5

    def height(self, lon, lat, mode: str = "nearest") -> np.ndarray:
        """Bilinear height; outside the DEM the edge value (``mode='nearest'``) or NaN."""
        row, col = self.pixel(lon, lat)
        heights = self._filled if mode == "nearest" else self.heights
        return ndimage.map_coordinates(
            heights,
            [np.ravel(row), np.ravel(col)],
            order=1,
            mode=mode,
            cval=np.nan,
            prefilter=False,
        ).reshape(np.shape(row))

    @property
    def _filled(self) -> np.ndarray:
        if not hasattr(self, "_filled_cache"):
            h = self.heights
            if np.isnan(h).any():
                idx = ndimage.distance_transform_edt(
                    np.isnan(h), return_distances=False, return_indices=True
                )
                h = h[tuple(idx)]
            self._filled_cache = h
        return self._filled_cache

    def check_covers(self, bounds) -> None:
        """IsslideError unless the DEM has valid heights over the lon/lat box ``bounds``."""
        west, south, east, north = bounds
        dw, ds, de, dn = self.bounds
        tol = 0.5 * max(abs(self.transform.a), abs(self.transform.e))
        if west < dw - tol or south < ds - tol or east > de + tol or north > dn + tol:
            raise IsslideError(
                f"{self.path}: the DEM covers lon {dw:.5f}..{de:.5f}, lat {ds:.5f}..{dn:.5f} but the scene needs "
                f"lon {west:.5f}..{east:.5f}, lat {south:.5f}..{north:.5f}; provide a DEM covering the whole scene"
            )
        r0, c0 = self.pixel(west, north)
        r1, c1 = self.pixel(east, south)
        h, w = self.heights.shape
        r0, r1 = sorted((r0, r1))
        c0, c1 = sorted((c0, c1))
        window = self.heights[
            max(0, int(math.floor(r0))) : min(h, int(math.ceil(r1)) + 1),
            max(0, int(math.floor(c0))) : min(w, int(math.ceil(c1)) + 1),
        ]
        bad = int(np.isnan(window).sum())
        if bad:
            raise IsslideError(
                f"{self.path}: {bad} DEM cells without a height (nodata) inside the scene "
                f"lon {west:.5f}..{east:.5f}, lat {south:.5f}..{north:.5f}; fill the voids or use a complete DEM"
            )


def load_dem(path: str | os.PathLike) -> Dem:
    path = str(path)
    try:
        with rasterio.open(path) as ds:
            if ds.crs is not None and ds.crs.to_epsg() != 4326:
                raise IsslideError(
                    f"{path}: DEM CRS is {ds.crs}, expected EPSG:4326 (lon/lat); reproject it"
                )
            data = ds.read(1).astype(np.float64)
            nodata = ds.nodata
            transform = ds.transform
    except RasterioError as exc:
        raise IsslideError(
            f"{path}: cannot read the DEM ({exc}); provide a readable GeoTIFF"
        ) from exc
    if nodata is not None:
        data[data == nodata] = np.nan
    data[~np.isfinite(data)] = np.nan
    if np.isnan(data).all():
        raise IsslideError(
            f"{path}: the DEM holds no valid height; provide a DEM covering the scene"
        )
    return Dem(data, transform, path)


def scene_bounds(geometry: SarGeometry, dem: Dem) -> tuple[float, float, float, float]:
    """The scene's lon/lat box: ``extra['bounds']`` or the footprint of the radar grid corners."""
    bounds = geometry.extra.get("bounds") if geometry.extra else None
    if bounds:
        return tuple(float(b) for b in bounds)
    h = float(np.nanmedian(dem.heights))
    lines = np.array([0, 0, geometry.lines - 1, geometry.lines - 1], float)
    samples = np.array([0, geometry.samples - 1, 0, geometry.samples - 1], float)
    lon, lat = radar_to_lonlat(geometry, None, lines, samples, np.full(4, h))
    return float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())


def _track(geometry: SarGeometry, orbit: Orbit | None, s):
    dx, dz = (0.0, 0.0) if orbit is None else orbit.offsets(s)
    return geometry.x_sat + dx, geometry.altitude + dz


def along_cross_to_lonlat(geometry: SarGeometry, s, x):
    a, r = geometry.along, geometry.right
    return geometry.from_enu(s * a[0] + x * r[0], s * a[1] + x * r[1])


def radar_to_lonlat(geometry: SarGeometry, orbit: Orbit | None, lines, samples, heights):
    """lon/lat of radar pixels whose ground heights are known (flat-earth inverse)."""
    s = geometry.first_line_s + np.asarray(lines, float) * geometry.azimuth_spacing
    rng = geometry.near_range + np.asarray(samples, float) * geometry.range_spacing
    xs, zs = _track(geometry, orbit, s)
    x = xs + np.sqrt(np.maximum(rng**2 - (zs - np.asarray(heights)) ** 2, 0.0))
    return along_cross_to_lonlat(geometry, s, x)


def radar_to_ground(
    geometry: SarGeometry, orbit: Orbit | None, dem: Dem, lines, samples, oversample: float = 2.0
):
    """Ground points imaged by radar pixels ``lines`` x ``samples`` (1-D float arrays).

    Returns ``(s, x, h)``: along-track (n_lines,), cross-track and height (n_lines, n_samples),
    in the local frame of ``geometry`` (metres), seen from ``orbit``.
    """
    lines = np.asarray(lines, float)
    samples = np.asarray(samples, float)
    s = geometry.first_line_s + lines * geometry.azimuth_spacing
    xs, zs = _track(geometry, orbit, s)
    xs = np.broadcast_to(xs, s.shape)
    zs = np.broadcast_to(zs, s.shape)
    target = geometry.near_range + samples * geometry.range_spacing
    hmin, hmax = float(np.nanmin(dem.heights)), float(np.nanmax(dem.heights))
    # cross-track interval that can hold the ground points of these ranges
    x_lo = float(np.min(xs + np.sqrt(np.maximum(target.min() ** 2 - (zs - hmin) ** 2, 0.0))))
    x_hi = float(np.max(xs + np.sqrt(np.maximum(target.max() ** 2 - (zs - hmax) ** 2, 0.0))))
    sin_inc = math.sin(math.radians(geometry.incidence_deg))
    step = geometry.range_spacing / sin_inc / oversample
    x_lo -= 4 * step
    x_hi += 4 * step
    nx = int(math.ceil((x_hi - x_lo) / step)) + 1
    xg = x_lo + step * np.arange(nx)
    lon, lat = along_cross_to_lonlat(geometry, s[:, None], xg[None, :])
    h = dem.height(lon, lat)
    rng = np.hypot(xg[None, :] - xs[:, None], zs[:, None] - h)
    rng = np.maximum.accumulate(rng, axis=1)  # layover: keep the first point seen at each range
    n = s.size
    lo = min(rng.min(), target.min())
    span = max(rng.max(), target.max()) - lo + 1.0
    offsets = span * np.arange(n)[:, None]
    keys = (rng - lo + offsets).ravel()
    query = (target[None, :] - lo + offsets).ravel()
    idx = np.searchsorted(keys, query, side="right").reshape(n, -1) - 1
    idx -= (np.arange(n) * nx)[:, None]
    idx = np.clip(idx, 0, nx - 2)
    rows = np.arange(n)[:, None]
    r0, r1 = rng[rows, idx], rng[rows, idx + 1]
    denom = r1 - r0
    frac = np.where(denom > 0, (target[None, :] - r0) / np.where(denom > 0, denom, 1.0), 0.0)
    frac = np.clip(frac, 0.0, 1.0)
    x = xg[idx] + frac * step
    height = h[rows, idx] * (1.0 - frac) + h[rows, idx + 1] * frac
    return s, x, height


def slant_range_from(geometry: SarGeometry, orbit: Orbit | None, s, x, h):
    """Slant range from ``orbit`` to ground points given in the local frame (s along, x cross)."""
    xs, zs = _track(geometry, orbit, np.asarray(s))
    xs = np.asarray(xs)
    zs = np.asarray(zs)
    if xs.ndim == 1 and np.ndim(x) == 2:
        xs, zs = xs[:, None], zs[:, None]
    return np.hypot(np.asarray(x) - xs, zs - np.asarray(h))
