"""Range-Doppler terrain correction: multilooked radar geometry -> WGS84 lon/lat grid.

For every output pixel (centre lon/lat, DEM height resampled onto the output grid) the radar
position is computed with the forward model (:meth:`SarGeometry.ground_to_radar`, reference
precise orbit) and converted to multilooked coordinates. The complex interferogram is then
interpolated bilinearly on its real and imaginary parts (never on the wrapped angle) and the phase
taken from the interpolated complex value; coherence is interpolated bilinearly. Output pixels
that fall outside the radar image, on DEM voids or next to a nodata (zero) multilooked pixel
(outside the SLCs' valid footprint) are nodata. The layover/shadow mask is
:func:`isslide.geometry.layover_shadow` of the DEM on the output grid (255 where nodata).
"""

from __future__ import annotations

import numpy as np
from affine import Affine
from scipy import ndimage

from ..geometry import Orbit, SarGeometry, layover_shadow
from .multilook import multilooked_position

NODATA = -9999.0
MASK_NODATA = 255


def output_lonlat(transform: Affine, width: int, height: int):
    """Pixel-centre lon (width,) and lat (height,) of a north-up grid."""
    cols = np.arange(width) + 0.5
    rows = np.arange(height) + 0.5
    lon = transform.c + transform.a * cols
    lat = transform.f + transform.e * rows
    return lon, lat


def radar_position(
    geometry: SarGeometry,
    orbit: Orbit | None,
    lon,
    lat,
    height,
    looks_azimuth: int,
    looks_range: int,
):
    """Multilooked (line, sample) of ground points."""
    line, sample = geometry.ground_to_radar(lon, lat, height, orbit)
    return multilooked_position(line, looks_azimuth), multilooked_position(sample, looks_range)


def terrain_correct(
    ifg: np.ndarray,
    coh: np.ndarray,
    geometry: SarGeometry,
    orbit: Orbit | None,
    looks_azimuth: int,
    looks_range: int,
    dem: np.ndarray,
    transform: Affine,
    block_rows: int | None = None,
):
    """Geocode a multilooked interferogram and coherence onto the grid of ``dem`` (heights, NaN = void).

    Returns ``phase`` (float32, radians in [-pi, pi]), ``coherence`` (float32 in [0, 1]) with
    ``NODATA`` outside the radar image or on DEM voids, and the layover/shadow mask (uint8, 255 nodata).
    """
    height, width = dem.shape
    phase = np.empty((height, width), np.float32)
    coherence = np.empty((height, width), np.float32)
    mask = np.empty((height, width), np.uint8)
    re_in, im_in = ifg.real.astype(np.float32), ifg.imag.astype(np.float32)
    coh_in = coh.astype(np.float32)
    # 1 where the multilooked interferogram holds data; an output pixel needs all of its
    # bilinear neighbours valid (interpolated validity 1)
    data_in = (ifg != 0).astype(np.float32)
    footprint = data_in.min() < 1.0
    n_l, n_s = ifg.shape
    lon = transform.c + transform.a * (np.arange(width) + 0.5)
    rows_per_block = block_rows or max(
        1, (1 << 21) // max(width, 1)
    )  # bounded memory on large grids
    # the layover mask is not local (a layover slope overlays ground along its azimuth line):
    # computed once on the whole grid
    valid_all = np.isfinite(dem)
    mask_all = layover_shadow(np.where(valid_all, dem, 0.0), transform, geometry)
    for r0 in range(0, height, rows_per_block):
        r1 = min(height, r0 + rows_per_block)
        ls = mask_all[r0:r1].copy()
        h = np.where(valid_all[r0:r1], dem[r0:r1], 0.0)
        valid = valid_all[r0:r1]
        lat = transform.f + transform.e * (np.arange(r0, r1) + 0.5)
        lon2, lat2 = np.meshgrid(lon, lat)
        row, col = radar_position(geometry, orbit, lon2, lat2, h, looks_azimuth, looks_range)
        del lon2, lat2
        inside = valid & (row >= 0) & (row <= n_l - 1) & (col >= 0) & (col <= n_s - 1)
        coords = [row.ravel(), col.ravel()]
        shape = row.shape
        if footprint:
            has = ndimage.map_coordinates(data_in, coords, order=1, mode="nearest", prefilter=False)
            inside &= has.reshape(shape) > 0.999
        re = ndimage.map_coordinates(re_in, coords, order=1, mode="nearest", prefilter=False)
        im = ndimage.map_coordinates(im_in, coords, order=1, mode="nearest", prefilter=False)
        cc = ndimage.map_coordinates(coh_in, coords, order=1, mode="nearest", prefilter=False)
        p = np.arctan2(im, re).reshape(shape).astype(np.float32)
        c = np.clip(cc.reshape(shape), 0.0, 1.0).astype(np.float32)
        p[~inside] = NODATA
        c[~inside] = NODATA
        ls[~inside] = MASK_NODATA
        phase[r0:r1], coherence[r0:r1], mask[r0:r1] = p, c, ls
    return phase, coherence, mask
