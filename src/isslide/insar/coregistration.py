"""Co-registration: sub-pixel offset estimation and resampling of a complex image.

* :func:`estimate_carrier` -- the spectral centroid of a complex image along one axis (cycles per
  sample), from the phase of its lag-one autocorrelation (Madsen's correlation Doppler estimator).
  Resampling is done on the deramped (baseband) signal and the carrier put back afterwards, so a
  signal whose spectrum is not centred on zero is interpolated without loss.
* :func:`resample_axis` -- per-pixel fractional resampling along one axis with an 8-tap
  Hann-windowed sinc kernel (tabulated at 1/1024 sample), vectorised over the whole block.
* :func:`estimate_shift` -- the sub-pixel shift between batches of windows by FFT
  cross-correlation of the amplitudes of the (2x oversampled) complex windows, with the peak
  refined by a matrix-multiply upsampled DFT (Guizar-Sicairos et al. 2008) around the integer peak.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft

TAPS = 8
TABLE_STEPS = 1024


def estimate_carrier(z: np.ndarray, axis: int) -> float:
    """Spectral centroid of ``z`` along ``axis`` in cycles per sample, in [-0.5, 0.5)."""
    z = np.asarray(z)
    a = np.moveaxis(z, axis, -1)
    acc = np.vdot(a[..., :-1], a[..., 1:])  # sum conj(z[n]) z[n+1]
    if acc == 0:
        return 0.0
    return float(np.angle(acc) / (2 * math.pi))


def kernel_table(taps: int = TAPS, steps: int = TABLE_STEPS) -> np.ndarray:
    """Weights (steps + 1, taps) of the windowed sinc for fractions 0, 1/steps, ..., 1.

    Tap ``k`` multiplies sample ``floor(x) - taps/2 + 1 + k``.
    """
    frac = np.arange(steps + 1) / steps
    k = np.arange(taps) - (taps // 2 - 1)
    d = k[None, :] - frac[:, None]  # distance from the sample to the target
    w = np.sinc(d) * (0.5 + 0.5 * np.cos(math.pi * d / (taps / 2)))
    w[np.abs(d) >= taps / 2] = 0.0
    return (w / w.sum(axis=1, keepdims=True)).astype(np.float32)


_TABLE = kernel_table()


def resample_axis(
    data: np.ndarray, coords: np.ndarray, axis: int = 1, carrier: float = 0.0, origin: float = 0.0
) -> np.ndarray:
    """Values of ``data`` at fractional positions ``coords`` along ``axis``.

    ``data`` is a 2-D block; ``coords`` has the block's shape with ``axis`` replaced by the number
    of output samples, in the block's index units. ``carrier`` (cycles per sample) is removed
    before and restored after interpolation; ``origin`` is the global index of the block's first
    sample along ``axis`` so the carrier phase is the same in every block. Positions outside the
    block give 0 (callers read a halo of ``TAPS`` samples).
    """
    if axis == 0:
        return resample_axis(data.T, coords.T, 1, carrier, origin).T
    n = data.shape[1]
    z = data.astype(np.complex64, copy=True)
    if carrier:
        ramp = np.exp(-2j * math.pi * ((carrier * (origin + np.arange(n))) % 1.0)).astype(
            np.complex64
        )
        z *= ramp[None, :]
    coords = np.asarray(coords, np.float64)
    base = np.floor(coords)
    q = np.rint((coords - base) * TABLE_STEPS).astype(np.int64)
    base = base.astype(np.int64)
    out = np.zeros(coords.shape, np.complex64)
    first = base - (TAPS // 2 - 1)
    for k in range(TAPS):
        idx = first + k
        np.clip(idx, 0, n - 1, out=idx)
        out += _TABLE[q, k] * np.take_along_axis(z, idx, axis=1)
    outside = (coords < 0) | (coords > n - 1)
    out[outside] = 0
    if carrier:
        out *= np.exp(2j * math.pi * ((carrier * (origin + coords)) % 1.0)).astype(np.complex64)
    return out


def oversample2(z: np.ndarray) -> np.ndarray:
    """2x FFT oversampling of a batch of baseband windows (..., N, M) -> (..., 2N, 2M)."""
    n, m = z.shape[-2:]
    f = scipy.fft.fftshift(scipy.fft.fft2(z), axes=(-2, -1))
    pad = [(0, 0)] * (z.ndim - 2) + [(n // 2, n - n // 2), (m // 2, m - m // 2)]
    f = np.pad(f, pad)
    return scipy.fft.ifft2(scipy.fft.ifftshift(f, axes=(-2, -1))) * 4


def _upsampled_dft(cp: np.ndarray, centre: np.ndarray, upsample: int, half_width: float = 1.0):
    """Cross-correlation (B, T, T) at centre +- half_width, from cross-power spectra (B, N, M)."""
    b, n, m = cp.shape
    t = np.arange(-half_width, half_width + 1e-9, 1.0 / upsample)
    ky = scipy.fft.fftfreq(n) * n
    kx = scipy.fft.fftfreq(m) * m
    ty = centre[:, 0, None] + t[None, :]  # (B, T)
    tx = centre[:, 1, None] + t[None, :]
    ey = np.exp(2j * math.pi * ty[:, :, None] * ky[None, None, :] / n)  # (B, T, N)
    ex = np.exp(2j * math.pi * tx[:, :, None] * kx[None, None, :] / m)  # (B, T, M)
    xc = np.einsum("btn,bnm,bsm->bts", ey, cp, ex, optimize=True)
    return xc.real / (n * m), t


def _parabola(a, b, c):
    """Vertex offset (-0.5..0.5) of the parabola through (-1, a), (0, b), (1, c)."""
    den = a - 2 * b + c
    off = np.where(den < 0, 0.5 * (a - c) / np.where(den < 0, den, -1.0), 0.0)
    return np.clip(off, -0.5, 0.5)


def estimate_shift(
    ref: np.ndarray, sec: np.ndarray, upsample: int = 20, max_shift: float = 4.0, batch: int = 8
):
    """Shift (dy, dx) per window with ``sec(p + shift) ~ ref(p)``, and peak quality.

    ``ref`` and ``sec`` are complex baseband windows (B, N, M). Returns ``shifts`` (B, 2) and
    ``quality`` (B,), the normalised amplitude cross-correlation at the peak (0..1).
    """
    ref = np.asarray(ref)
    sec = np.asarray(sec)
    if ref.shape[0] > batch:  # bounded memory: a few windows at a time
        parts = [
            estimate_shift(ref[i : i + batch], sec[i : i + batch], upsample, max_shift, batch)
            for i in range(0, ref.shape[0], batch)
        ]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    a = np.abs(oversample2(ref))
    c = np.abs(oversample2(sec))
    a -= a.mean(axis=(-2, -1), keepdims=True)
    c -= c.mean(axis=(-2, -1), keepdims=True)
    fa = scipy.fft.fft2(a)
    fc = scipy.fft.fft2(c)
    cp = np.conj(fa) * fc
    xc = scipy.fft.ifft2(cp).real
    b, n, m = xc.shape
    # restrict the integer search to +- max_shift (oversampled pixels: x2)
    lim = int(math.ceil(2 * max_shift))
    ky = np.abs(scipy.fft.fftfreq(n) * n)
    kx = np.abs(scipy.fft.fftfreq(m) * m)
    allowed = (ky[:, None] <= lim) & (kx[None, :] <= lim)
    masked = np.where(allowed[None], xc, -np.inf).reshape(b, -1)
    peak = np.argmax(masked, axis=1)
    py, px = np.unravel_index(peak, (n, m))
    py = np.where(py > n // 2, py - n, py)
    px = np.where(px > m // 2, px - m, px)
    centre = np.stack([py, px], axis=1).astype(float)
    fine, t = _upsampled_dft(cp, centre, upsample)
    best = fine.reshape(b, -1).argmax(axis=1)
    iy, ix = np.unravel_index(best, fine.shape[1:])
    # parabolic refinement on the upsampled grid (sub-grid accuracy)
    k = np.arange(b)
    ty = np.clip(iy, 1, t.size - 2)
    tx = np.clip(ix, 1, t.size - 2)
    dy = _parabola(fine[k, ty - 1, ix], fine[k, ty, ix], fine[k, ty + 1, ix]) + (ty - iy)
    dx = _parabola(fine[k, iy, tx - 1], fine[k, iy, tx], fine[k, iy, tx + 1]) + (tx - ix)
    step = t[1] - t[0]
    shifts = (centre + np.stack([t[iy] + dy * step, t[ix] + dx * step], axis=1)) / 2.0
    norm = np.sqrt((a**2).sum(axis=(-2, -1)) * (c**2).sum(axis=(-2, -1)))
    quality = fine.reshape(b, -1).max(axis=1) / np.where(norm > 0, norm, 1.0)
    return shifts, quality


def window_origins(lines: int, samples: int, size: int, count: int, margin: int = 16):
    """Top-left corners of about ``count`` windows of ``size`` spread evenly over the image."""
    ny = max(1, int(round(math.sqrt(count * lines / max(samples, 1)))))
    nx = max(1, int(round(count / ny)))
    span_y = lines - size - 2 * margin
    span_x = samples - size - 2 * margin
    if span_y < 0 or span_x < 0:
        return np.zeros((0, 2), int)
    ys = margin + np.linspace(0, span_y, ny).astype(int)
    xs = margin + np.linspace(0, span_x, nx).astype(int)
    return np.array([(y, x) for y in ys for x in xs], int)
