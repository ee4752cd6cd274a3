"""Reading and checking a phase / coherence GeoTIFF pair made anywhere (SNAP, LiCSAR, HyP3...).

:func:`read_pair` returns the two bands on their common grid with one validity mask; every
problem is an :class:`~isslide.errors.IsslideError` naming the file and the fix:

* a file missing or unreadable, without a CRS, or phase and coherence on different grids/CRSs;
* a phase outside [-pi, pi] (degrees, or an unwrapped phase);
* a coherence outside [0, 1] once divided by ``coherence_scale`` (scaled integers: 255, 1000...).

Invalid pixels: NaN/inf, either file's nodata value, and (when given) a layover/shadow mask
other than 0. The check is done on the valid pixels only.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS

from ..errors import IsslideError

PHASE_TOLERANCE = 1e-3  # radians beyond pi still taken as wrapped (float rounding of exports)
COHERENCE_TOLERANCE = 1e-4
DEFAULT_NODATA = -9999.0


@dataclass
class Band:
    path: str
    data: np.ndarray  # float64
    valid: np.ndarray  # bool
    transform: Affine
    crs: CRS
    nodata: float | None
    dtype: str

    @property
    def shape(self) -> tuple[int, int]:
        return self.data.shape

    def describe(self) -> str:
        t = self.transform
        h, w = self.shape
        return f"{w}x{h} px, {self.crs.to_string()}, origin ({t.c:.6f}, {t.f:.6f}), pixel {t.a:.4g}"


@dataclass
class InterferogramPair:
    """Phase (radians, wrapped) and coherence (0-1) on one grid, with the usable pixels."""

    phase: np.ndarray  # float32, 0 where invalid
    coherence: np.ndarray  # float32, 0 where invalid
    valid: np.ndarray  # bool
    transform: Affine
    crs: CRS
    nodata: float  # the value outputs use for invalid pixels (the phase file's nodata)
    phase_path: str
    coherence_path: str

    @property
    def shape(self) -> tuple[int, int]:
        return self.phase.shape


def read_band(path: str, what: str) -> Band:
    if not os.path.exists(path):
        raise IsslideError(f"{path}: {what} file not found; check the path")
    try:
        with rasterio.open(path) as src:
            if src.count < 1:
                raise IsslideError(f"{path}: {what} raster has no band")
            data = src.read(1).astype(np.float64)
            transform, crs, nodata, dtype = src.transform, src.crs, src.nodata, src.dtypes[0]
            mask = src.read_masks(1) if src.nodata is None else None
    except rasterio.errors.RasterioIOError as exc:
        msg = " ".join(str(exc).split())[:160]
        raise IsslideError(f"{path}: not a readable GeoTIFF ({msg}); give a GeoTIFF") from None
    if crs is None:
        raise IsslideError(
            f"{path}: {what} raster has no CRS; georeference it (e.g. gdal_edit.py -a_srs "
            "EPSG:4326) before detection"
        )
    valid = np.isfinite(data)
    if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
        valid &= data != nodata
    elif mask is not None:  # an internal mask band / alpha
        valid &= mask > 0
    return Band(path, data, valid, transform, crs, nodata, dtype)


def same_grid(a: Band, b: Band, tol: float = 1e-9) -> bool:
    return a.shape == b.shape and a.crs == b.crs and a.transform.almost_equals(b.transform, tol)


def check_phase(band: Band) -> None:
    values = band.data[band.valid]
    if values.size == 0:
        return
    lo, hi = float(values.min()), float(values.max())
    limit = math.pi + PHASE_TOLERANCE
    if lo >= -limit and hi <= limit:
        return
    if lo >= -180.0 - 1e-3 and hi <= 180.0 + 1e-3 and hi - lo > 270.0:  # wrapped, in degrees
        kind = "looks like degrees; convert it to radians (x pi/180)"
    elif lo >= -1e-3 and hi <= 2 * math.pi + PHASE_TOLERANCE:
        kind = "looks like [0, 2 pi); wrap it to [-pi, pi] (angle(exp(i phase)))"
    else:
        kind = "looks unwrapped; give the wrapped phase (angle(exp(i phase)))"
    raise IsslideError(
        f"{band.path}: phase ranges {lo:.4g}..{hi:.4g}, outside [-pi, pi] ({kind}); "
        "the detectors take the wrapped interferometric phase in radians"
    )


def scaled_coherence(band: Band, scale: float = 1.0, option: str = "--coherence-scale") -> None:
    """Divide by ``scale`` in place and check the valid values lie in [0, 1]."""
    if not scale or scale <= 0:
        raise IsslideError(f"{option}: {scale!r} is not a positive number")
    band.data /= float(scale)
    values = band.data[band.valid]
    if values.size == 0:
        return
    lo, hi = float(values.min()), float(values.max())
    if lo >= -COHERENCE_TOLERANCE and hi <= 1.0 + COHERENCE_TOLERANCE:
        np.clip(band.data, 0.0, 1.0, out=band.data)
        return
    hint = ""
    if hi > 1.0 and lo >= 0:
        guess = next((s for s in (100, 255, 1000, 10000, 65535) if hi <= s * 1.0001), None)
        if guess:
            hint = f"; if it holds scaled integers, set {option} {guess}"
    raise IsslideError(
        f"{band.path}: coherence ranges {lo:.4g}..{hi:.4g} after dividing by {scale:g}, outside "
        f"[0, 1]{hint or '; give a coherence in 0-1'}"
    )


def read_layover(path: str, reference: Band) -> np.ndarray:
    """Usable pixels of a layover/shadow mask (0 = usable; 1 layover, 2 shadow, nodata: not)."""
    band = read_band(path, "layover/shadow mask")
    if not same_grid(band, reference):
        raise IsslideError(
            f"{path}: grid {band.describe()} differs from {reference.path} "
            f"({reference.describe()}); give the mask on the phase grid"
        )
    return band.valid & (band.data == 0)


def read_pair(
    phase_path: str,
    coherence_path: str,
    coherence_scale: float = 1.0,
    layover_shadow: str | None = None,
    scale_option: str = "--coherence-scale",
) -> InterferogramPair:
    """Read and check a phase/coherence pair (same grid and CRS required)."""
    phase = read_band(phase_path, "phase")
    coh = read_band(coherence_path, "coherence")
    if not same_grid(phase, coh):
        raise IsslideError(
            f"{coherence_path}: grid {coh.describe()} differs from the phase {phase_path} "
            f"({phase.describe()}); give phase and coherence on one grid and CRS (resample one "
            "onto the other, e.g. gdalwarp)"
        )
    check_phase(phase)
    scaled_coherence(coh, coherence_scale, scale_option)
    valid = phase.valid & coh.valid
    if layover_shadow:
        valid &= read_layover(layover_shadow, phase)
    if not valid.any():
        raise IsslideError(
            f"{phase_path}: no valid pixel (every pixel is nodata in the phase or the coherence"
            f"{' or masked by the layover/shadow file' if layover_shadow else ''}); check the "
            "files' nodata values"
        )
    nodata = phase.nodata
    if nodata is None or not np.isfinite(nodata):
        nodata = DEFAULT_NODATA
    return InterferogramPair(
        phase=np.where(valid, phase.data, 0.0).astype(np.float32),
        coherence=np.where(valid, coh.data, 0.0).astype(np.float32),
        valid=valid,
        transform=phase.transform,
        crs=phase.crs,
        nodata=float(nodata),
        phase_path=phase_path,
        coherence_path=coherence_path,
    )
