"""Slow-moving areas (landslides, rock glaciers) and decoys: shapes, "bubble" profiles, placement.

A lobe is star-shaped around its centre: an ellipse with semi-axes ``a`` (along the long axis,
oriented downslope) and ``b``, whose radius is modulated by low-order harmonics
``r(phi) = r_ellipse(phi) * (1 + sum_k c_k cos(k phi + p_k))``. The normalised radius
``rho = |p - centre| / r(phi)`` is < 1 inside; the motion profile ``(1 - rho**2) ** 1.5`` is 1 at
the centre and fades to 0 on the border (the "bubble" of a landslide in an interferogram).

A moving area is its main lobe plus up to ``areas.extra_lobes`` smaller lobes overlapping it
(an irregular outline: the union). Each lobe has a velocity factor (the area's centre velocity
times it) and a tilt ``t`` that makes it faster towards one end, ``(1 + t x / a)`` along its
axis: the motion varies inside the area (:func:`lobes_sum`).
"""

from __future__ import annotations

import math

import numpy as np
import shapely

from .terrain import M_PER_DEG

N_HARMONICS = 4
PROFILE_EXPONENT = 1.5
CLASSES = ("Landslide", "Rock Glacier")
LANDSLIDE, ROCK_GLACIER = 0, 1


def local_xy(lon, lat, clon, clat, orient):
    """Coordinates (m) along / across the long axis (orientation ``orient``, rad from east)."""
    e = (np.asarray(lon) - clon) * M_PER_DEG * math.cos(math.radians(clat))
    n = (np.asarray(lat) - clat) * M_PER_DEG
    c, s = math.cos(orient), math.sin(orient)
    return e * c + n * s, -e * s + n * c


def radius(phi, a, b, harm):
    """Boundary radius (m) at polar angle ``phi`` of the local frame; ``harm`` (K, 2) amp/phase."""
    r = a * b / np.sqrt((b * np.cos(phi)) ** 2 + (a * np.sin(phi)) ** 2)
    mod = np.ones_like(phi)
    for k, (amp, ph) in enumerate(harm, start=1):
        mod = mod + amp * np.cos(k * phi + ph)
    return r * mod


def normalised_radius(lon, lat, clon, clat, orient, a, b, harm):
    x, y = local_xy(lon, lat, clon, clat, orient)
    phi = np.arctan2(y, x)
    return np.hypot(x, y) / radius(phi, a, b, harm)


def profile(lon, lat, clon, clat, orient, a, b, harm):
    """Bubble profile in [0, 1] (1 at the centre, 0 on and outside the border)."""
    rho = normalised_radius(lon, lat, clon, clat, orient, a, b, harm)
    return np.clip(1.0 - rho**2, 0.0, None) ** PROFILE_EXPONENT


def extent_m(a, b, harm) -> float:
    """Upper bound of the boundary radius (m)."""
    return max(a, b) * (1.0 + float(np.abs(np.asarray(harm)[:, 0]).sum()))


def polygon(clon, clat, orient, a, b, harm, n_vertices: int = 72, jitter=None):
    """The boundary as a shapely Polygon in lon/lat; ``jitter`` (n_vertices,) metres added to r."""
    phi = np.linspace(-math.pi, math.pi, n_vertices, endpoint=False)
    r = radius(phi, a, b, harm)
    if jitter is not None:
        r = np.maximum(r + jitter, 0.2 * r)
    x, y = r * np.cos(phi), r * np.sin(phi)
    c, s = math.cos(orient), math.sin(orient)
    e, n = x * c - y * s, x * s + y * c
    lon = clon + e / (M_PER_DEG * math.cos(math.radians(clat)))
    lat = clat + n / M_PER_DEG
    return shapely.Polygon(np.column_stack([lon, lat]))


def random_harmonics(gen: np.random.Generator, lobate: bool) -> np.ndarray:
    """(K, 2) amplitudes and phases; lobate shapes get a strong order-1 (tongue) term."""
    amps = gen.uniform(0.0, 1.0, N_HARMONICS) * np.array([0.12, 0.08, 0.05, 0.03])
    if lobate:
        amps[0] = gen.uniform(0.1, 0.2)
        amps[2] = gen.uniform(0.03, 0.08)
    return np.column_stack([amps, gen.uniform(-math.pi, math.pi, N_HARMONICS)])


def active_time(gen: np.random.Generator, t_days: float, cfg: dict, revisit_days: int) -> float:
    """Days of activity in [0, t_days] of an area, on a continuous time axis from dates.start.

    A two-state (active / dormant) process with exponential sojourns: ``gen`` (keyed by the
    area alone) first draws the initial state, then successive durations, so the periods before
    any time never depend on how far the stack extends. The per-interval config probabilities
    are the chances of switching within ``revisit_days``: rate = -ln(1 - p) / revisit_days.
    """
    if t_days <= 0:
        return 0.0

    def mean_days(p):
        p = float(p)
        if p <= 0:
            return math.inf
        return revisit_days / -math.log(max(1.0 - p, 1e-12))

    means = {True: mean_days(cfg["stop_probability"]), False: mean_days(cfg["restart_probability"])}
    state = bool(gen.random() < cfg["start_active_probability"])
    t = 0.0
    total = 0.0
    while t < t_days:
        m = means[state]
        d = math.inf if math.isinf(m) else float(gen.exponential(m))
        end = min(t + d, t_days)
        if state:
            total += end - t
        t = end
        state = not state
    return total


def bubble_sum(lon, lat, centres, params, weights):
    """Sum over shapes of ``weight * profile``; ``params`` rows (orient, a, b), harmonics list.

    Only the points inside each shape's bounding box are evaluated (no loop over pixels).
    ``lon``/``lat`` are 1-D arrays of points.
    """
    lon = np.asarray(lon)
    lat = np.asarray(lat)
    out = np.zeros(lon.shape, np.float64)
    if not len(centres):
        return out
    for (clon, clat), (orient, a, b, harm), w in zip(centres, params, weights, strict=True):
        if w == 0:
            continue
        ext = extent_m(a, b, harm)
        dlon = ext / (M_PER_DEG * math.cos(math.radians(clat)))
        dlat = ext / M_PER_DEG
        sel = np.flatnonzero(
            (lon >= clon - dlon)
            & (lon <= clon + dlon)
            & (lat >= clat - dlat)
            & (lat <= clat + dlat)
        )
        if sel.size:
            out[sel] += w * profile(lon[sel], lat[sel], clon, clat, orient, a, b, harm)
    return out


LOBE_KEYS = ("area", "lon", "lat", "orient", "a", "b", "harm", "factor", "tilt")


def lobe_profile(lon, lat, clon, clat, orient, a, b, harm, tilt):
    """Bubble profile of a lobe with its along-axis tilt, and the normalised radius."""
    x, y = local_xy(lon, lat, clon, clat, orient)
    rho = np.hypot(x, y) / radius(np.arctan2(y, x), a, b, harm)
    prof = np.clip(1.0 - rho**2, 0.0, None) ** PROFILE_EXPONENT
    if tilt:
        prof = prof * np.clip(1.0 + tilt * x / a, 0.0, None)
    return prof, rho


def lobes_sum(lon, lat, lobes: dict, weights, with_rho: bool = False):
    """Sum over lobes of ``weight * lobe profile`` at the 1-D points ``lon``/``lat``.

    Lobes whose bounding box misses the points' box are skipped without touching the points;
    the others evaluate only the points inside their own box. ``with_rho``: also the smallest
    normalised radius over the lobes (< 1 inside the union).
    """
    lon = np.asarray(lon)
    lat = np.asarray(lat)
    out = np.zeros(lon.shape, np.float64)
    rho_min = np.full(lon.shape, np.inf) if with_rho else None
    n = len(lobes.get("lon", []))
    if not n or not lon.size:
        return (out, rho_min) if with_rho else out
    lo_lon, hi_lon = float(lon.min()), float(lon.max())
    lo_lat, hi_lat = float(lat.min()), float(lat.max())
    for k in range(n):
        w = float(weights[k])
        if w == 0 and not with_rho:
            continue
        clon, clat = float(lobes["lon"][k]), float(lobes["lat"][k])
        a, b, harm = float(lobes["a"][k]), float(lobes["b"][k]), lobes["harm"][k]
        ext = extent_m(a, b, harm)
        dlon = ext / (M_PER_DEG * math.cos(math.radians(clat)))
        dlat = ext / M_PER_DEG
        if clon + dlon < lo_lon or clon - dlon > hi_lon or clat + dlat < lo_lat:
            continue
        if clat - dlat > hi_lat:
            continue
        sel = np.flatnonzero(
            (lon >= clon - dlon)
            & (lon <= clon + dlon)
            & (lat >= clat - dlat)
            & (lat <= clat + dlat)
        )
        if not sel.size:
            continue
        prof, rho = lobe_profile(
            lon[sel], lat[sel], clon, clat, float(lobes["orient"][k]), a, b, harm,
            float(lobes["tilt"][k]),
        )  # fmt: skip
        out[sel] += w * prof
        if with_rho:
            rho_min[sel] = np.minimum(rho_min[sel], rho)
    return (out, rho_min) if with_rho else out


def lobe_polygons(lobes: dict, area_index: int):
    """The lobes of one area as shapely polygons (main lobe first)."""
    return [
        polygon(
            lobes["lon"][k],
            lobes["lat"][k],
            lobes["orient"][k],
            lobes["a"][k],
            lobes["b"][k],
            lobes["harm"][k],
        )
        for k in np.flatnonzero(np.asarray(lobes["area"]) == area_index)
    ]


def outline(lobes: dict, area_index: int):
    """The area's outline: the union of its lobes."""
    polys = lobe_polygons(lobes, area_index)
    return shapely.union_all(polys) if len(polys) > 1 else polys[0]


def reach_m(lobes: dict, area_index: int, clon: float, clat: float) -> float:
    """Largest distance (m) from the area's centre that one of its lobes can reach."""
    best = 0.0
    for k in np.flatnonzero(np.asarray(lobes["area"]) == area_index):
        e = (lobes["lon"][k] - clon) * M_PER_DEG * math.cos(math.radians(clat))
        n = (lobes["lat"][k] - clat) * M_PER_DEG
        ext = extent_m(lobes["a"][k], lobes["b"][k], lobes["harm"][k])
        best = max(best, math.hypot(e, n) + ext)
    return best


def single_lobes(areas: dict) -> dict:
    """Lobes of areas made of their main lobe only (velocity factor 1, no tilt)."""
    n = len(areas.get("id", []))
    return {
        "area": np.arange(n, dtype=np.int32),
        "lon": np.asarray(areas["lon"], float),
        "lat": np.asarray(areas["lat"], float),
        "orient": np.asarray(areas["orient"], float),
        "a": np.asarray(areas["a"], float),
        "b": np.asarray(areas["b"], float),
        "harm": np.asarray(areas["harm"], float).reshape(n, N_HARMONICS, 2),
        "factor": np.ones(n),
        "tilt": np.zeros(n),
    }
