"""Goldstein-Werner adaptive phase filter (as SNAP's Goldstein Phase Filtering).

The interferogram is cut into ``fft_size`` x ``fft_size`` patches with 75% overlap (step
``fft_size / 4``). For each patch ``Z = FFT2(patch)``; its magnitude ``|Z|`` is smoothed by a
``window`` x ``window`` mean (periodic), normalised by its maximum and raised to ``alpha``; the
filtered patch ``IFFT2(Z * S**alpha)`` is weighted by a 2-D triangular (Bartlett) window and the
overlapping patches are summed and normalised by the sum of weights. The image is reflected at its
borders so every pixel is covered by the same 16 patches.

Vectorised over patches: patches are strided views (``sliding_window_view``) transformed by one
batched ``scipy.fft.fft2`` per strip of patch rows, and the overlap-add is 16 whole-array
additions (one per patch quadrant offset). Only the strip loop is in Python, to bound memory.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage


def bartlett2d(n: int) -> np.ndarray:
    """Triangular weights w[k] = 1 - |k - n/2| / (n/2), outer product; overlap-adds to a constant at step n/4."""
    k = np.arange(n)
    w = 1.0 - np.abs(k - n / 2) / (n / 2)
    return np.outer(w, w).astype(np.float32)


def filter_patches(patches: np.ndarray, alpha: float, window: int, workers: int = 1) -> np.ndarray:
    """Goldstein response of a batch of patches (..., n, n) (complex64)."""
    spec = scipy.fft.fft2(patches, workers=workers)
    mag = np.abs(spec)
    size = (1,) * (mag.ndim - 2) + (window, window)
    mag = ndimage.uniform_filter(mag, size=size, mode="wrap")
    peak = mag.max(axis=(-2, -1), keepdims=True)
    mag /= np.where(peak > 0, peak, 1.0)
    if alpha != 1.0:
        mag **= alpha
    spec *= mag
    return scipy.fft.ifft2(spec, workers=workers)


def goldstein(
    ifg: np.ndarray,
    alpha: float = 1.0,
    fft_size: int = 64,
    window: int = 3,
    workers: int = 1,
    strip_patches: int | None = None,
) -> np.ndarray:
    """Goldstein-filtered copy of the complex interferogram ``ifg`` (complex64)."""
    n = int(fft_size)
    step = n // 4
    h, w = ifg.shape
    if alpha == 0:
        return np.array(ifg, np.complex64)
    pad = n - step
    # pad so that (padded - n) is a multiple of step and every pixel is under 16 patches
    ph = pad + h + pad + (-(h + 2 * pad - n)) % step
    pw = pad + w + pad + (-(w + 2 * pad - n)) % step
    mode = "reflect" if min(h, w) > pad else "symmetric"
    padded = np.pad(
        ifg.astype(np.complex64, copy=False), ((pad, ph - h - pad), (pad, pw - w - pad)), mode=mode
    )
    del ifg  # the caller may pass its only reference: keep one copy of the image in memory
    py = (ph - n) // step + 1
    px = (pw - n) // step + 1
    q = n // step  # 4 sub-blocks per patch side
    weights = bartlett2d(n)
    wblocks = weights.reshape(q, step, q, step)
    # every kept pixel is under all q x q patches: the sum of weights is one step x step tile
    wtile = wblocks.sum(axis=(0, 2))
    wrow = np.tile(wtile, (1, px + q - 1))  # (step, padded width)
    out = np.empty((h, w), np.complex64)
    views = sliding_window_view(padded, (n, n))[::step, ::step]  # (py, px, n, n), no copy
    if strip_patches is None:  # about 512 patches per batch (cache-sized), at least two patch
        # rows so the overlap-add carry (3 rows) stays a fraction of each strip on wide images
        strip_patches = max(2, 512 // px)
    carry = np.zeros((q - 1, step, px + q - 1, step), np.complex64)  # rows still receiving patches
    for p0 in range(0, py, strip_patches):
        p1 = min(py, p0 + strip_patches)
        k = p1 - p0
        acc = np.zeros((k + q - 1, step, px + q - 1, step), np.complex64)
        acc[: q - 1] += carry
        filt = filter_patches(np.ascontiguousarray(views[p0:p1]), alpha, window, workers) * weights
        blocks = filt.reshape(k, px, q, step, q, step)
        for a in range(q):
            for b in range(q):
                acc[a : a + k, :, b : b + px, :] += blocks[:, :, a, :, b, :].transpose(0, 2, 1, 3)
        del filt, blocks
        carry = acc[k:].copy()
        done = acc[:k].reshape(k * step, (px + q - 1) * step) / np.tile(wrow, (k, 1))
        # padded rows [p0 * step, p1 * step) are final: keep the image part
        r0, r1 = p0 * step, p1 * step
        i0, i1 = max(r0, pad), min(r1, pad + h)
        if i1 > i0:
            out[i0 - pad : i1 - pad] = done[i0 - r0 : i1 - r0, pad : pad + w]
    # the last q - 1 sub-block rows are all padding (pad = (q - 1) * step >= them)
    return out
