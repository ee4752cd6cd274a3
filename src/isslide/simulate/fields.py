"""Seeded random generators and spatially correlated random fields (numpy FFT)."""

from __future__ import annotations

import zlib

import numpy as np

# Purposes of the random streams: one independent stream per (purpose, keys...).
PURPOSES = {
    "scene": 1,
    "relief": 2,
    "cover": 3,
    "areas": 4,
    "dates": 5,  # per-date draws, keyed by the date's ordinal
    "activity": 6,  # activity periods, keyed by the area id
    "footprint": 7,  # the stack's valid swath / burst footprint
    "texture": 8,  # coherence texture inside the land covers
    "decoys": 9,  # the fixed decoys
    "dither": 15,  # sub-cell land-cover lookup offsets of the ground scatterers, keyed by block
    "common": 10,  # speckle part common to all dates
    "drift": 11,  # innovations of the exponentially correlated part
    "fresh": 12,  # per-date independent part
    "thermal": 13,
    "turbulence": 14,
    "annotator": 20,
}


def rng(seed: int, stack: str, purpose: str, *keys: int) -> np.random.Generator:
    """An independent generator for (seed, stack, purpose, keys): never depends on call order."""
    words = [int(seed), zlib.crc32(stack.encode()), PURPOSES[purpose], *(int(k) for k in keys)]
    return np.random.default_rng(np.random.SeedSequence(words))


def complex_normal(gen: np.random.Generator, n: int) -> np.ndarray:
    """Circular complex Gaussian CN(0, 1) samples (complex64: float32 draws are twice as fast)."""
    out = gen.standard_normal(2 * n, dtype=np.float32).view(np.complex64)
    out *= np.float32(np.sqrt(0.5))
    return out


def power_law_field(
    shape: tuple[int, int],
    gen: np.random.Generator,
    beta: float,
    cell_m: tuple[float, float],
    outer_m: float | None = None,
) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian field with power spectrum ~ k**-beta (FFT filtering).

    ``cell_m`` is the (row, column) cell size in metres; ``outer_m`` an outer scale where the
    spectrum flattens (None: the field size).
    """
    ny, nx = shape
    noise = gen.standard_normal(shape)
    ky = np.fft.fftfreq(ny, d=cell_m[0])
    kx = np.fft.rfftfreq(nx, d=cell_m[1])
    k2 = ky[:, None] ** 2 + kx[None, :] ** 2
    k0 = 1.0 / (outer_m if outer_m else max(ny * cell_m[0], nx * cell_m[1]))
    filt = (k2 + k0**2) ** (-beta / 4.0)
    filt[0, 0] = 0.0
    field = np.fft.irfft2(np.fft.rfft2(noise) * filt, s=shape)
    std = field.std()
    return field / std if std > 0 else field
