"""Statistics that compare a geocoded interferogram (phase + coherence) with a real one.

Used by ``benchmarks/bench_realism.py`` (the realism report of ``docs/embedded-backend.md``) and
by the simulator's tests. Every function takes north-up EPSG:4326 rasters with a validity mask;
lengths are in metres (a degree of longitude is shorter than a degree of latitude, so pixel
counts would make an isotropic texture look anisotropic).

* :func:`correlation_lengths`: 1/e lengths of the masked autocorrelation of a field along
  north-south and east-west (anisotropy = north-south / east-west);
* :func:`coherence_residual`: coherence minus its masked Gaussian mean (the texture);
* :func:`phase_roughness`: std of the wrapped phase differences of neighbouring pixels;
* :func:`residue_fraction`: share of 2 x 2 pixel loops whose wrapped differences do not sum to 0;
* :func:`phase_noise`: circular std of a phase about a known true phase, by true coherence, and
  the Cramer-Rao bound ``sqrt((1 - g**2) / (2 N g**2))`` of N independent looks.
"""

from __future__ import annotations

import math

import numpy as np
from affine import Affine
from scipy import ndimage

from .terrain import M_PER_DEG


def pixel_size_m(transform: Affine, lat: float) -> tuple[float, float]:
    """(north-south, east-west) size of a pixel in metres at latitude ``lat``."""
    return abs(transform.e) * M_PER_DEG, abs(transform.a) * M_PER_DEG * math.cos(math.radians(lat))


def _masked_acf(field: np.ndarray, mask: np.ndarray, max_lag: int) -> tuple[np.ndarray, ...]:
    """Normalised autocorrelation along rows (north-south) and columns (east-west) at lags
    0..max_lag, over the pairs of pixels that are both in ``mask`` (real or complex field)."""
    f = np.where(mask, field, 0)
    m = mask.astype(np.float64)
    out = []
    for axis in (0, 1):
        n = f.shape[axis]
        lags = min(max_lag, n - 1)
        acf = np.empty(lags + 1)
        for lag in range(lags + 1):
            a = [slice(None)] * 2
            b = [slice(None)] * 2
            a[axis] = slice(0, n - lag)
            b[axis] = slice(lag, n)
            pairs = float((m[tuple(a)] * m[tuple(b)]).sum())
            prod = f[tuple(a)] * np.conj(f[tuple(b)])
            acf[lag] = float(np.real(prod.sum())) / pairs if pairs > 0 else np.nan
        out.append(acf / acf[0] if acf[0] > 0 else acf)
    return tuple(out)


def _efold(acf: np.ndarray, step_m: float) -> float:
    """Lag (m) where the autocorrelation first falls below 1/e (linear interpolation)."""
    target = math.exp(-1.0)
    below = np.flatnonzero(acf < target)
    if not below.size:
        return float("nan")
    k = int(below[0])
    if k == 0:
        return 0.0
    a0, a1 = acf[k - 1], acf[k]
    return step_m * ((k - 1) + (a0 - target) / (a0 - a1))


def correlation_lengths(
    field: np.ndarray, mask: np.ndarray, transform: Affine, lat: float, max_lag: int = 40
) -> dict:
    """1/e correlation lengths (m) north-south and east-west of a zero-mean field over ``mask``."""
    ny, nx = pixel_size_m(transform, lat)
    acf_y, acf_x = _masked_acf(field, mask, max_lag)
    ly, lx = _efold(acf_y, ny), _efold(acf_x, nx)
    return {
        "length_ns_m": ly,
        "length_ew_m": lx,
        "anisotropy": ly / lx if lx and lx > 0 else float("nan"),
        "pixels": int(mask.sum()),
    }


def masked_gaussian(
    field: np.ndarray, mask: np.ndarray, sigma_m: float, transform: Affine, lat: float
) -> np.ndarray:
    """Gaussian mean of ``field`` over ``mask`` (sigma in metres on both axes)."""
    ny, nx = pixel_size_m(transform, lat)
    sigma = (sigma_m / ny, sigma_m / nx)
    m = mask.astype(np.float64)
    num = ndimage.gaussian_filter(np.where(mask, field, 0.0).astype(np.float64), sigma)
    den = ndimage.gaussian_filter(m, sigma)
    return np.where(den > 1e-6, num / np.maximum(den, 1e-6), 0.0)


def coherence_residual(
    coherence: np.ndarray, mask: np.ndarray, transform: Affine, lat: float, sigma_m: float = 150.0
) -> np.ndarray:
    """Coherence minus its masked Gaussian mean: the texture (0 outside ``mask``)."""
    return np.where(mask, coherence - masked_gaussian(coherence, mask, sigma_m, transform, lat), 0)


def _pairs(a: np.ndarray, axis: int):
    n = a.shape[axis]
    lo = [slice(None)] * 2
    hi = [slice(None)] * 2
    lo[axis] = slice(0, n - 1)
    hi[axis] = slice(1, n)
    return a[tuple(lo)], a[tuple(hi)]


def phase_roughness(phase: np.ndarray, mask: np.ndarray) -> dict:
    """Std (rad) of wrapped neighbour differences along east-west, north-south and pooled."""
    out = {}
    pooled = []
    for name, axis in (("ns", 0), ("ew", 1)):
        p0, p1 = _pairs(phase, axis)
        m0, m1 = _pairs(mask, axis)
        d = np.angle(np.exp(1j * (p1 - p0)[m0 & m1]))
        pooled.append(d)
        out[f"std_{name}_rad"] = float(d.std()) if d.size else float("nan")
    d = np.concatenate(pooled)
    out["std_rad"] = float(d.std()) if d.size else float("nan")
    out["pairs"] = int(d.size)
    return out


def wrap(x):
    return (np.asarray(x) + math.pi) % (2 * math.pi) - math.pi


def residue_fraction(phase: np.ndarray, mask: np.ndarray) -> float:
    """Share of 2 x 2 loops of valid pixels with a non-zero residue (phase unwrapping charge)."""
    p = phase
    a, b, c, d = p[:-1, :-1], p[:-1, 1:], p[1:, 1:], p[1:, :-1]
    ok = mask[:-1, :-1] & mask[:-1, 1:] & mask[1:, 1:] & mask[1:, :-1]
    charge = wrap(b - a) + wrap(c - b) + wrap(d - c) + wrap(a - d)
    n = int(ok.sum())
    return float((np.abs(charge[ok]) > math.pi).sum() / n) if n else float("nan")


def phase_correlation_length(
    phase: np.ndarray, mask: np.ndarray, transform: Affine, lat: float, max_lag: int = 80
) -> dict:
    """1/e lengths (m) of the autocorrelation of exp(i phase) minus its mean over ``mask``."""
    z = np.exp(1j * phase.astype(np.float64))
    mean = z[mask].mean() if mask.any() else 0.0
    r = correlation_lengths(z - mean, mask, transform, lat, max_lag)
    r["length_m"] = (
        math.sqrt(r["length_ns_m"] * r["length_ew_m"])
        if np.isfinite(r["length_ns_m"]) and np.isfinite(r["length_ew_m"])
        else float("nan")
    )
    return r


def crb_std(coherence, looks: float):
    """Cramer-Rao bound of the phase std (rad) for ``looks`` independent looks."""
    g = np.asarray(coherence, float)
    return np.sqrt((1.0 - g * g) / (2.0 * looks * g * g))


def circular_std(d) -> float:
    r = abs(np.mean(np.exp(1j * np.asarray(d))))
    return math.sqrt(-2.0 * math.log(max(r, 1e-12)))


def phase_noise(
    phase: np.ndarray,
    true_phase: np.ndarray,
    true_coherence: np.ndarray,
    mask: np.ndarray,
    looks: float,
    bins=((0.3, 0.4), (0.4, 0.5), (0.5, 0.6)),
) -> list[dict]:
    """Per true-coherence bin: circular std of ``phase - true_phase`` (one constant offset
    removed over the whole mask) against the Cramer-Rao bound at the bin's mean coherence."""
    d = np.angle(np.exp(1j * (phase - true_phase)))
    d = np.angle(np.exp(1j * (d - np.angle(np.mean(np.exp(1j * d[mask]))))))
    rows = []
    for lo, hi in bins:
        sel = mask & (true_coherence >= lo) & (true_coherence < hi)
        n = int(sel.sum())
        if n < 50:
            rows.append({"coherence": [lo, hi], "pixels": n})
            continue
        g = float(true_coherence[sel].mean())
        std = circular_std(d[sel])
        bound = float(crb_std(g, looks))
        rows.append(
            {
                "coherence": [lo, hi],
                "pixels": n,
                "mean_true_coherence": g,
                "std_rad": std,
                "crb_rad": bound,
                "ratio": std / bound,
            }
        )
    return rows


ROUGHNESS_BINS = ((0.6, 0.7), (0.7, 0.8), (0.8, 0.9))


def quartiles(values: np.ndarray) -> list[float]:
    return [float(q) for q in np.percentile(values, [25, 50, 75])] if values.size else []


def interferogram_statistics(
    phase: np.ndarray,
    coherence: np.ndarray,
    valid: np.ndarray,
    transform: Affine,
    gentle: np.ndarray | None = None,
    residual_sigma_m: float = 150.0,
    high_coherence: float = 0.6,
) -> dict:
    """The realism table's statistics of one geocoded interferogram.

    ``valid``: inside the footprint (not nodata); ``gentle``: optional mask of gentle slopes
    (its texture anisotropy is reported separately).
    """
    lat = transform.f + transform.e * phase.shape[0] / 2.0
    resid = coherence_residual(coherence, valid, transform, lat, residual_sigma_m)
    whole = correlation_lengths(resid, valid, transform, lat)
    out = {
        "valid_fraction": float(valid.mean()),
        "coherence_quartiles": quartiles(coherence[valid]),
        "texture": whole,
        "phase_roughness_high_coherence": phase_roughness(
            phase, valid & (coherence > high_coherence)
        ),
        "phase_roughness_by_coherence": [
            {
                "coherence": [lo, hi],
                **phase_roughness(phase, valid & (coherence >= lo) & (coherence < hi)),
            }
            for lo, hi in ROUGHNESS_BINS
        ],
        "residue_fraction": residue_fraction(phase, valid),
        "phase_correlation": phase_correlation_length(phase, valid, transform, lat),
        "pixel_size_m": list(pixel_size_m(transform, lat)),
    }
    if gentle is not None:
        out["texture_gentle"] = correlation_lengths(resid, valid & gentle, transform, lat)
    return out
