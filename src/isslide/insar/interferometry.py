"""Interferogram formation, flat-earth and topographic phase, coherence.

Phases follow :mod:`isslide.geometry`: an SLC pixel has phase ``-4 pi R / wavelength`` and the
interferogram ``reference * conj(secondary)`` of a ground point P has the phase
``4 pi (R_sec(P) - R_ref(P)) / wavelength`` (plus any line-of-sight motion). That geometric
phase is split as SNAP does:

* flat-earth phase: the same expression for the point P0 on the ellipsoid (height 0) at the
  reference pixel's slant range, removed when the interferogram is formed;
* topographic phase: ``4 pi (R_sec(P) - R_sec(P0)) / wavelength`` with P on the DEM, removed by
  the next step (``R_ref(P) = R_ref(P0)`` is the pixel's slant range).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from ..geometry import Orbit, SarGeometry
from .geocoding import _track, slant_range_from


def flat_earth_phase(
    geometry: SarGeometry, ref_orbit: Orbit, sec_orbit: Orbit, lines, samples
) -> np.ndarray:
    """Flat-earth phase (radians, unwrapped, float64) on the grid ``lines`` x ``samples``."""
    s = geometry.first_line_s + np.asarray(lines, float) * geometry.azimuth_spacing
    rng = geometry.near_range + np.asarray(samples, float) * geometry.range_spacing
    xr, zr = _track(geometry, ref_orbit, s)
    xr = np.broadcast_to(np.asarray(xr, float), s.shape)[:, None]
    zr = np.broadcast_to(np.asarray(zr, float), s.shape)[:, None]
    x0 = xr + np.sqrt(np.maximum(rng[None, :] ** 2 - zr**2, 0.0))
    r_sec = slant_range_from(geometry, sec_orbit, s, x0, np.zeros_like(x0))
    return 4.0 * math.pi / geometry.wavelength * (r_sec - rng[None, :])


def topographic_phase(
    geometry: SarGeometry, ref_orbit: Orbit, sec_orbit: Orbit, lines, samples, s, x, h
) -> np.ndarray:
    """Topographic phase (radians) of ground points (s, x, h) imaged at reference pixels."""
    rng = geometry.near_range + np.asarray(samples, float) * geometry.range_spacing
    xr, zr = _track(geometry, ref_orbit, s)
    xr = np.broadcast_to(np.asarray(xr, float), s.shape)[:, None]
    zr = np.broadcast_to(np.asarray(zr, float), s.shape)[:, None]
    x0 = xr + np.sqrt(np.maximum(rng[None, :] ** 2 - zr**2, 0.0))
    r_sec_p = slant_range_from(geometry, sec_orbit, s, x, h)
    r_sec_0 = slant_range_from(geometry, sec_orbit, s, x0, np.zeros_like(x0))
    return 4.0 * math.pi / geometry.wavelength * (r_sec_p - r_sec_0)


def boxcar_power(
    ref: np.ndarray, sec: np.ndarray, range_window: int, azimuth_window: int
) -> np.ndarray:
    """sqrt(<|r|^2> <|s|^2>) over the boxcar (float32): the coherence estimator's denominator."""
    size = (azimuth_window, range_window)
    p1 = ndimage.uniform_filter(
        (ref.real**2 + ref.imag**2).astype(np.float32), size=size, mode="reflect"
    )
    p2 = ndimage.uniform_filter(
        (sec.real**2 + sec.imag**2).astype(np.float32), size=size, mode="reflect"
    )
    return np.sqrt(p1 * p2)


def coherence_from_power(
    ifg: np.ndarray, power: np.ndarray, range_window: int, azimuth_window: int
) -> np.ndarray:
    """|<ifg>| / power over the boxcar, in [0, 1] (float32)."""
    cross = ndimage.uniform_filter(
        ifg.astype(np.complex64, copy=False), size=(azimuth_window, range_window), mode="reflect"
    )
    good = power > 0
    out = np.where(good, np.abs(cross) / np.where(good, power, 1.0), 0.0)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def coherence(
    ref: np.ndarray, sec: np.ndarray, range_window: int, azimuth_window: int
) -> np.ndarray:
    """|<r s*>| / sqrt(<|r|^2><|s|^2>) over a boxcar of azimuth_window x range_window (float32)."""
    power = boxcar_power(ref, sec, range_window, azimuth_window)
    return coherence_from_power(ref * np.conj(sec), power, range_window, azimuth_window)


def phase_screen(phase: np.ndarray) -> np.ndarray:
    """exp(-i phase) as complex64 (phase reduced modulo 2 pi in float64 first)."""
    p = np.mod(phase, 2 * math.pi)
    return np.exp(-1j * p).astype(np.complex64)
