"""Radiometric calibration: complex sigma0 = DN / A, A bilinear in a sparse LUT (ESA convention).

Sentinel-1 calibration vectors give ``A`` (``sigmaNought``) at a sparse set of lines and
samples; the calibrated intensity is ``|DN|^2 / A^2`` and the calibrated complex value, which
keeps the phase, ``DN / A``. Between LUT nodes ``A`` is interpolated bilinearly; beyond the
outermost nodes it is held constant (as SNAP does).
"""

from __future__ import annotations

import numpy as np


def _weights(grid: np.ndarray, x: np.ndarray):
    grid = np.asarray(grid, float)
    if grid.size == 1:
        return np.zeros(x.shape, int), np.zeros(x.shape), 0
    i = np.clip(np.searchsorted(grid, x, side="right") - 1, 0, grid.size - 2)
    t = np.clip((x - grid[i]) / (grid[i + 1] - grid[i]), 0.0, 1.0)
    return i, t, 1


def lut_gain(lut_lines, lut_samples, lut, rows, cols) -> np.ndarray:
    """Bilinear interpolation of ``lut`` (len(lut_lines), len(lut_samples)) at rows x cols."""
    lut = np.asarray(lut, np.float64)
    rows = np.asarray(rows, float)
    cols = np.asarray(cols, float)
    j, u, dj = _weights(lut_samples, cols)
    along = lut[:, j] * (1.0 - u) + lut[:, j + dj] * u  # (n_lut_lines, n_cols)
    i, t, di = _weights(lut_lines, rows)
    return along[i] * (1.0 - t)[:, None] + along[i + di] * t[:, None]


def calibrate_block(i_dn: np.ndarray, q_dn: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """Complex sigma0 (complex64) of digital numbers I + jQ with calibration gain ``A``."""
    out = np.empty(i_dn.shape, np.complex64)
    inv = (1.0 / gain).astype(np.float32)
    out.real = i_dn * inv
    out.imag = q_dn * inv
    return out
