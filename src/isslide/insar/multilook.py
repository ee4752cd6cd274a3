"""Multilooking: complex mean over range x azimuth boxes.

The interferogram is averaged as complex values (its phase is the phase of the mean). Coherence
is multilooked as the plain mean of the coherence band over the same boxes, which is what SNAP's
Multilook operator does with a coherence band; with the 10 x 3 estimation window and 8 x 2 looks,
this equals the coherence of overlapping estimation windows averaged over the look box.
Lines / samples beyond the last complete box are dropped. Multilooked pixel ``(L, S)`` is centred
on full-resolution position ``(L * az + (az - 1) / 2, S * rg + (rg - 1) / 2)``.

Nodata (an SLC's zero samples outside its valid swath and bursts, hence a zero interferogram):
:func:`multilook_valid` averages the valid pixels of a box and gives 0 (nodata) to a box less than
half valid, so the footprint edge stays where it is and no zero drags the mean down.
"""

from __future__ import annotations

import numpy as np


def multilook(data: np.ndarray, azimuth: int, range_: int) -> np.ndarray:
    """Mean over ``azimuth`` x ``range_`` boxes (complex or real), dtype preserved."""
    lines = (data.shape[0] // azimuth) * azimuth
    samples = (data.shape[1] // range_) * range_
    view = data[:lines, :samples].reshape(lines // azimuth, azimuth, samples // range_, range_)
    return view.mean(
        axis=(1, 3), dtype=np.complex128 if np.iscomplexobj(data) else np.float64
    ).astype(data.dtype)


def full_resolution_position(index, looks: int):
    """Full-resolution coordinate of the centre of multilooked index ``index``."""
    return np.asarray(index) * looks + (looks - 1) / 2.0


def multilooked_position(position, looks: int):
    """Multilooked (fractional) index of full-resolution coordinate ``position``."""
    return (np.asarray(position) - (looks - 1) / 2.0) / looks


def multilook_valid(data: np.ndarray, valid: np.ndarray, azimuth: int, range_: int) -> np.ndarray:
    """Mean of the ``valid`` pixels of each box; 0 where less than half of the box is valid.

    Where every pixel is valid this is exactly :func:`multilook`.
    """
    frac = multilook(valid.astype(np.float32), azimuth, range_)
    if frac.min() >= 1.0:
        return multilook(data, azimuth, range_)
    total = multilook(np.where(valid, data, 0).astype(data.dtype), azimuth, range_)
    ok = frac >= 0.5
    return np.where(ok, total / np.where(ok, frac, 1.0), 0).astype(data.dtype)
