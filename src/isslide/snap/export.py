"""Terrain-Correction output (BEAM-DIMAP) -> the interferogram GeoTIFFs of the shared contract.

The export reads one or several *parts* (:func:`export_parts`):

* ``{"complex": dim}`` (``snap.recipe: esa``): one Terrain-Correction product with
  ``outputComplex=true`` and ``saveLayoverShadowMask=true``: the interferogram's real (``i_*``,
  unit ``real``) and imaginary (``q_*``, unit ``imaginary``) parts, the coherence (``coh_*``,
  unit ``coherence``) and ``layoverShadowMask`` (0 none, bit 1 layover, bit 2 shadow); i, q and
  coherence are resampled bilinearly, the mask by nearest neighbour, then phase = atan2(q, i);
* ``{"coherence": dim, "phase": dim}`` per subswath (``snap.recipe: isslide``): the coherence and
  mask product (bilinear Terrain-Correction) and the product of the BandMaths phase band
  (``Phase``, nodata 0, nearest-neighbour Terrain-Correction); phase and mask are resampled by
  nearest neighbour, the coherence bilinearly. Where subswaths overlap, the first subswath with
  a valid pixel (IW1, IW2, IW3) gives it.

Everything goes onto ``isslide.geometry.output_grid(*bounds, insar.pixel_spacing_deg)``
(``bounds`` = the stack's AOI, or the parts' own extent without one). Terrain-Correction runs
with ``alignToStandardGrid`` at origin (0, 0), whose pixel centres are that grid's, so the
resampling copies pixels (no interpolation) wherever SNAP has data. Outputs: ``coherence.tif``
(float32 [0, 1]), ``phase.tif`` (float32 radians), ``layover_shadow.tif`` (uint8 0/1/2, 255
nodata), EPSG:4326, nodata -9999 for the float rasters. Each file is written under a temporary
name and renamed.
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


def interferogram_bands(bands, dim_path: str):
    """The i, q and coherence bands of an interferogram product (one each)."""
    return (
        _pick(bands, "real", "i_", dim_path),
        _pick(bands, "imaginary", "q_", dim_path),
        _pick(bands, "coherence", "coh", dim_path),
    )


def _mask_band(bands, dim_path: str):
    band = next((b for b in bands if b.name == "layoverShadowMask" and b.path), None)
    if band is None:
        raise IsslideError(
            f"{dim_path}: no layoverShadowMask band; Terrain-Correction needs saveLayoverShadowMask=true"
        )
    return band


def _phase_band(bands, dim_path: str):
    from .chain import PHASE_BAND

    found = [b for b in bands if b.path and b.name == PHASE_BAND]
    if not found:
        raise IsslideError(
            f"{dim_path}: no '{PHASE_BAND}' band in the phase product (BandMaths -> "
            "Terrain-Correction of snap.recipe isslide)"
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


class _Part:
    """The open rasters of one part and how to turn a block of them into phase/coherence/mask."""

    def __init__(self, spec: dict, stack: contextlib.ExitStack):
        from .chain import PHASE_NODATA

        if "complex" in spec:
            dim = spec["complex"]
            bands = dimap.bands(dim)
            chosen = [*interferogram_bands(bands, dim), _mask_band(bands, dim)]
            self.kind = "complex"
            self.nodatas = [b.nodata for b in chosen[:3]] + [None]
            self.methods = [Resampling.bilinear] * 3 + [Resampling.nearest]
        else:
            cbands, pbands = dimap.bands(spec["coherence"]), dimap.bands(spec["phase"])
            phase = _phase_band(pbands, spec["phase"])
            coh = _pick(cbands, "coherence", "coh", spec["coherence"])
            chosen = [phase, coh, _mask_band(cbands, spec["coherence"])]
            self.kind = "split"
            self.nodatas = [
                PHASE_NODATA if phase.nodata is None else phase.nodata,
                coh.nodata,
                None,
            ]
            self.methods = [Resampling.nearest, Resampling.bilinear, Resampling.nearest]
        for band in chosen:
            if not os.path.isfile(band.path) or os.path.getsize(band.path) == 0:
                raise IsslideError(
                    f"{band.path}: band {band.name} missing or empty in the SNAP output"
                )
        self.srcs = [stack.enter_context(_open_source(b)) for b in chosen]

    def own_box(self):
        """A box whose :func:`output_grid` is this part's own (SNAP standard) grid: from the
        first pixel centre (west, north) to the outer edges (east, south)."""
        src = self.srcs[0]
        t = src.transform
        west, north = t @ (0.5, 0.5)
        east, south = t @ (src.width, src.height)
        return (min(west, east), min(south, north), max(west, east), max(south, north))

    def block(self, transform, width: int, rows: int):
        arrays = [
            _resample(src, nd, transform, width, rows, m)
            for src, nd, m in zip(self.srcs, self.nodatas, self.methods, strict=True)
        ]
        if self.kind == "complex":
            return convert_block(*arrays)
        phase, coh, mask = arrays
        valid = np.isfinite(phase) & np.isfinite(coh)
        return _finish(np.where(valid, phase, 0).astype(np.float32), coh, mask, valid)


def _finish(phase, coh, mask, valid):
    phase = phase.astype(np.float32, copy=True)
    phase[~valid] = NODATA
    coherence = np.clip(coh, 0.0, 1.0).astype(np.float32, copy=False)
    coherence[~valid] = NODATA
    flags = np.nan_to_num(mask, nan=0).astype(np.int16) & 3
    # SNAP flags: 1 layover, 2 shadow, 3 both -> one class per pixel, layover wins
    classes = np.where(flags & 1, 1, np.where(flags & 2, 2, 0)).astype(np.uint8)
    classes[~valid] = MASK_NODATA
    return phase, coherence, classes, valid


def convert_block(i, q, coh, mask):
    """phase, coherence, classes, valid of one block (arrays already on the output grid)."""
    valid = np.isfinite(i) & np.isfinite(q) & np.isfinite(coh) & ((i != 0) | (q != 0))
    phase = np.arctan2(q, i, dtype=np.float32)
    return _finish(phase, coh, mask, valid)


def export_interferogram(
    dim_path: str, outputs: dict, *, spacing_deg: float, bounds=None, block_rows: int = BLOCK_ROWS
) -> None:
    """The esa recipe's single complex Terrain-Correction product (see :func:`export_parts`)."""
    export_parts(
        [{"complex": dim_path}],
        outputs,
        spacing_deg=spacing_deg,
        bounds=bounds,
        block_rows=block_rows,
    )


def export_parts(
    parts: list[dict],
    outputs: dict,
    *,
    spacing_deg: float,
    bounds=None,
    block_rows: int = BLOCK_ROWS,
) -> None:
    """Write ``outputs['coherence'|'phase'|'layover_shadow']`` from Terrain-Correction parts.

    Block by block (``block_rows`` output rows), into temporary files renamed together at the end.
    """
    keys = ("phase", "coherence", "layover_shadow")
    tmp = {k: f"{outputs[k]}.tmp-{os.getpid()}.tif" for k in keys}
    names = ", ".join(sorted({p for spec in parts for p in spec.values()}))
    with contextlib.ExitStack() as stack:
        stack.enter_context(rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB))
        opened = [_Part(spec, stack) for spec in parts]
        if bounds is None:
            boxes = [p.own_box() for p in opened]
            bounds = (
                min(b[0] for b in boxes),
                min(b[1] for b in boxes),
                max(b[2] for b in boxes),
                max(b[3] for b in boxes),
            )
        transform, width, height = output_grid(*bounds, spacing_deg)
        try:
            for k in keys:
                os.makedirs(os.path.dirname(os.path.abspath(outputs[k])), exist_ok=True)
            dsts = {
                k: stack.enter_context(
                    rasterio.open(
                        tmp[k],
                        "w",
                        **(
                            _profile(transform, width, height, "uint8", MASK_NODATA)
                            if k == "layover_shadow"
                            else _profile(transform, width, height, "float32", NODATA)
                        ),
                    )
                )
                for k in keys
            }
            n_valid = 0
            for row0 in range(0, height, block_rows):
                rows = min(block_rows, height - row0)
                t = transform @ Affine.translation(0, row0)
                phase = np.full((rows, width), NODATA, np.float32)
                coherence = np.full((rows, width), NODATA, np.float32)
                classes = np.full((rows, width), MASK_NODATA, np.uint8)
                filled = np.zeros((rows, width), bool)
                for part in opened:
                    ph, co, cl, valid = part.block(t, width, rows)
                    take = valid & ~filled
                    phase[take], coherence[take], classes[take] = ph[take], co[take], cl[take]
                    filled |= take
                n_valid += int(filled.sum())
                window = Window(0, row0, width, rows)
                dsts["phase"].write(phase, 1, window=window)
                dsts["coherence"].write(coherence, 1, window=window)
                dsts["layover_shadow"].write(classes, 1, window=window)
            for ds in dsts.values():
                ds.close()
            if n_valid == 0:
                raise IsslideError(
                    f"{names}: the interferogram has no valid pixel inside {bounds} (check the AOI, "
                    "the subswaths and the DEM coverage)"
                )
            for k in keys:
                os.replace(tmp[k], outputs[k])
        finally:
            for path in tmp.values():
                if os.path.exists(path):
                    os.remove(path)
