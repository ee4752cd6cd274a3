"""Terrain-Correction output (BEAM-DIMAP) -> the interferogram GeoTIFFs of the shared contract.

Terrain-Correction runs with ``outputComplex=true`` and ``saveLayoverShadowMask=true``; its
product holds the interferogram's real (``i_*``, unit ``real``) and imaginary (``q_*``, unit
``imaginary``) parts, the coherence (``coh_*``, unit ``coherence``) and ``layoverShadowMask``
(0 none, bit 1 layover, bit 2 shadow). They are resampled onto
``isslide.geometry.output_grid(*bounds, insar.pixel_spacing_deg)`` (``bounds`` = the stack's AOI,
or the product's own extent without one): i, q and coherence bilinearly, the mask by nearest
neighbour; then phase = atan2(q, i). Outputs: ``coherence.tif`` (float32 [0, 1]), ``phase.tif``
(float32 radians), ``layover_shadow.tif`` (uint8 0/1/2, 255 nodata), EPSG:4326, nodata -9999
for the float rasters. Each file is written under a temporary name and renamed.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import Resampling, reproject
from rasterio.windows import Window

from ..errors import IsslideError
from ..geometry import output_grid
from . import dimap

NODATA = -9999.0
MASK_NODATA = 255
WGS84 = CRS.from_epsg(4326)


def _pick(bands, unit: str, prefix: str, dim_path: str):
    found = [b for b in bands if b.path and (b.unit.lower() == unit or b.name.startswith(prefix))]
    if len(found) > 1:
        found = [b for b in found if b.unit.lower() == unit] or found
    if not found:
        raise IsslideError(
            f"{dim_path}: no '{prefix}*' band ({unit}) in the Terrain-Correction output; "
            "the graph must keep the complex interferogram (outputComplex=true)"
        )
    if len(found) > 1:
        names = ", ".join(b.name for b in found)
        raise IsslideError(
            f"{dim_path}: several {unit} bands ({names}); expected one interferogram"
        )
    return found[0]


def aoi_bounds(aoi: str | None):
    if not aoi:
        return None
    from shapely import wkt

    try:
        return tuple(wkt.loads(aoi).bounds)
    except Exception as exc:  # shapely raises several types for bad WKT
        raise IsslideError(f"stacks.<name>.aoi: not valid WKT ({exc})") from None


BLOCK_ROWS = 512  # output rows per block: memory ~ 40 bytes x width x BLOCK_ROWS
GDAL_CACHE_MB = 64  # GDAL block cache, MB (GDAL default: 5 % of the machine memory)


def _open_source(band) -> rasterio.DatasetReader:
    src = rasterio.open(band.path)
    if src.transform.is_identity:
        src.close()
        raise IsslideError(f"{band.path}: no georeferencing (ENVI map info) in the SNAP output")
    return src


def _resample(src, nodata, transform, width: int, height: int, method) -> np.ndarray:
    dest = np.full((height, width), np.nan, np.float32)
    reproject(
        source=rasterio.band(src, 1),
        destination=dest,
        src_transform=src.transform,
        src_crs=src.crs or WGS84,
        src_nodata=nodata if nodata is not None else src.nodata,
        dst_transform=transform,
        dst_crs=WGS84,
        dst_nodata=np.nan,
        resampling=method,
    )
    return dest


def _profile(transform, width: int, height: int, dtype: str, nodata) -> dict:
    return {
        "driver": "GTiff",
        "height": height,
        "width": width,
        "count": 1,
        "dtype": dtype,
        "crs": WGS84,
        "transform": transform,
        "nodata": nodata,
        "compress": "deflate",
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
    }


def convert_block(i, q, coh, mask):
    """phase, coherence, classes of one block (arrays already on the output grid)."""
    valid = np.isfinite(i) & np.isfinite(q) & np.isfinite(coh) & ((i != 0) | (q != 0))
    phase = np.arctan2(q, i, dtype=np.float32)
    phase[~valid] = NODATA
    coherence = np.clip(coh, 0.0, 1.0).astype(np.float32, copy=False)
    coherence[~valid] = NODATA
    flags = np.nan_to_num(mask, nan=0).astype(np.int16) & 3
    # SNAP flags: 1 layover, 2 shadow, 3 both -> one class per pixel, layover wins
    classes = np.where(flags & 1, 1, np.where(flags & 2, 2, 0)).astype(np.uint8)
    classes[~valid] = MASK_NODATA
    return phase, coherence, classes, int(valid.sum())


def export_interferogram(
    dim_path: str, outputs: dict, *, spacing_deg: float, bounds=None, block_rows: int = BLOCK_ROWS
) -> None:
    """Write ``outputs['coherence'|'phase'|'layover_shadow']`` from a Terrain-Correction product.

    Block by block (``block_rows`` output rows), into temporary files renamed together at the end.
    """
    bands = dimap.bands(dim_path)
    i_band = _pick(bands, "real", "i_", dim_path)
    q_band = _pick(bands, "imaginary", "q_", dim_path)
    c_band = _pick(bands, "coherence", "coh", dim_path)
    m_band = next((b for b in bands if b.name == "layoverShadowMask" and b.path), None)
    if m_band is None:
        raise IsslideError(
            f"{dim_path}: no layoverShadowMask band; Terrain-Correction needs saveLayoverShadowMask=true"
        )
    for band in (i_band, q_band, c_band, m_band):
        if not os.path.isfile(band.path) or os.path.getsize(band.path) == 0:
            raise IsslideError(f"{band.path}: band {band.name} missing or empty in the SNAP output")
    keys = ("phase", "coherence", "layover_shadow")
    tmp = {k: f"{outputs[k]}.tmp-{os.getpid()}.tif" for k in keys}
    with contextlib.ExitStack() as stack:
        stack.enter_context(rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB))
        srcs = [stack.enter_context(_open_source(b)) for b in (i_band, q_band, c_band, m_band)]
        if bounds is None:
            bounds = tuple(srcs[0].bounds)
        transform, width, height = output_grid(*bounds, spacing_deg)
        try:
            for k in keys:
                os.makedirs(os.path.dirname(os.path.abspath(outputs[k])), exist_ok=True)
            dsts = {
                "phase": stack.enter_context(
                    rasterio.open(
                        tmp["phase"], "w", **_profile(transform, width, height, "float32", NODATA)
                    )
                ),
                "coherence": stack.enter_context(
                    rasterio.open(
                        tmp["coherence"],
                        "w",
                        **_profile(transform, width, height, "float32", NODATA),
                    )
                ),
                "layover_shadow": stack.enter_context(
                    rasterio.open(
                        tmp["layover_shadow"],
                        "w",
                        **_profile(transform, width, height, "uint8", MASK_NODATA),
                    )
                ),
            }
            n_valid = 0
            for row0 in range(0, height, block_rows):
                rows = min(block_rows, height - row0)
                t = transform @ Affine.translation(0, row0)
                nodatas = (i_band.nodata, q_band.nodata, c_band.nodata, None)
                methods = (Resampling.bilinear,) * 3 + (Resampling.nearest,)
                i, q, coh, mask = (
                    _resample(src, nd, t, width, rows, m)
                    for src, nd, m in zip(srcs, nodatas, methods, strict=True)
                )
                phase, coherence, classes, count = convert_block(i, q, coh, mask)
                n_valid += count
                window = Window(0, row0, width, rows)
                dsts["phase"].write(phase, 1, window=window)
                dsts["coherence"].write(coherence, 1, window=window)
                dsts["layover_shadow"].write(classes, 1, window=window)
            for ds in dsts.values():
                ds.close()
            if n_valid == 0:
                raise IsslideError(
                    f"{dim_path}: the interferogram has no valid pixel inside {bounds} (check the AOI, "
                    "the subswaths and the DEM coverage)"
                )
            for k in keys:
                os.replace(tmp[k], outputs[k])
        finally:
            for path in tmp.values():
                if os.path.exists(path):
                    os.remove(path)
