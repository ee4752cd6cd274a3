"""Interferograms made elsewhere (SNAP exports, LiCSAR, HyP3...) as a stack source.

``stacks.<name>.source: interferograms`` with ``stacks.<name>.interferograms``::

    phase: data/ifg/{reference}_{secondary}/phase.tif        # wrapped phase, radians
    coherence: data/ifg/{reference}_{secondary}/coherence.tif
    layover_shadow: null          # optional pattern: 0 usable, 1 layover, 2 shadow, else unusable
    coherence_scale: 1.0          # coherence stored as scaled integers: e.g. 255
    bbox: null                    # [west, south, east, north]; null: union of the footprints

``{reference}`` and ``{secondary}`` are YYYYMMDD dates. The pairs are the files found whose
delay is one of ``delays`` and whose dates lie within ``dates``; the others are reported and
ignored. Each pair is imported (:func:`import_interferogram`) onto the workflow's EPSG:4326 grid
(``insar.pixel_spacing_deg``, snapped as :func:`isslide.geometry.output_grid`, one grid per
stack) as the same three files the InSAR backends write, so labels, datasets, training,
evaluation and detection run unchanged. Any input CRS: the wrapped phase is resampled as the
unit complex number ``exp(i phase)`` (bilinear on its real and imaginary parts, never on the
angle), coherence bilinearly, the layover/shadow mask by nearest neighbour; nodata is honoured.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import re
import string

import numpy as np
import rasterio
from affine import Affine
from rasterio.warp import Resampling, reproject, transform_bounds

from .config import schema_default
from .detect.rasters import read_pair
from .errors import IsslideError
from .files import WGS84, write_raster
from .geometry import output_grid
from .plan import DATE_FMT, Pair, StackPlan

NODATA = -9999.0
MASK_NODATA = 255
PLACEHOLDERS = ("reference", "secondary")


def _key(name: str, field: str) -> str:
    return f"stacks.{name}.interferograms.{field}"


def check_pattern(pattern: str | None, key: str, required: tuple[str, ...] = PLACEHOLDERS) -> str:
    if not pattern:
        raise IsslideError(
            f"{key}: missing; give a path pattern with {{reference}} and {{secondary}} (YYYYMMDD),"
            " e.g. data/ifg/{reference}_{secondary}/phase.tif"
        )
    fields = [f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None]
    unknown = sorted(set(fields) - set(PLACEHOLDERS))
    if unknown:
        raise IsslideError(
            f"{key}: unknown placeholder {{{unknown[0]}}} in {pattern!r}; only {{reference}} "
            "and {secondary} are allowed"
        )
    missing = [p for p in required if p not in fields]
    if missing:
        raise IsslideError(
            f"{key}: {pattern!r} lacks {{{missing[0]}}}; the pattern must contain {{reference}} "
            "and {secondary} (YYYYMMDD)"
        )
    return pattern


def pattern_regex(pattern: str) -> re.Pattern:
    out, seen = [], set()
    for literal, field, _, _ in string.Formatter().parse(pattern):
        out.append(re.escape(literal))
        if field is not None:
            out.append(rf"(?P={field})" if field in seen else rf"(?P<{field}>\d{{8}})")
            seen.add(field)
    return re.compile("".join(out) + r"\Z")


def find_pairs(pattern: str, base: str = ".") -> dict[tuple[str, str], str]:
    """(reference, secondary) -> path of every file matching ``pattern``."""
    full = pattern if os.path.isabs(pattern) else os.path.join(base, pattern)
    rx = pattern_regex(full)
    found = {}
    for path in sorted(glob.glob(full.format(reference="*", secondary="*"))):
        m = rx.match(path)
        if not m:
            continue
        found[(m["reference"], m["secondary"])] = path
    return found


def _date(text: str, path: str) -> dt.date:
    try:
        return dt.datetime.strptime(text, DATE_FMT).date()
    except ValueError:
        raise IsslideError(f"{path}: {text!r} is not a date YYYYMMDD; rename the file") from None


def pair_files(name: str, stack: dict, pair: Pair, base: str = ".") -> dict[str, str]:
    """The input files of one pair (paths as the config gives them, relative to ``base``)."""
    cfg = stack.get("interferograms") or {}
    fill = {
        "reference": pair.reference.strftime(DATE_FMT),
        "secondary": pair.secondary.strftime(DATE_FMT),
    }
    files = {k: cfg[k].format(**fill) for k in ("phase", "coherence")}
    if cfg.get("layover_shadow"):
        files["layover_shadow"] = cfg["layover_shadow"].format(**fill)
    return files


def plan_interferogram_stack(name: str, stack: dict, config: dict, base: str = ".") -> StackPlan:
    """The pairs of an ``interferograms`` stack, from the files found."""
    cfg = stack.get("interferograms") or {}
    phase_pattern = check_pattern(cfg.get("phase"), _key(name, "phase"))
    check_pattern(cfg.get("coherence"), _key(name, "coherence"))
    if cfg.get("layover_shadow"):
        check_pattern(cfg["layover_shadow"], _key(name, "layover_shadow"))
    found = find_pairs(phase_pattern, base)
    full = phase_pattern if os.path.isabs(phase_pattern) else os.path.join(base, phase_pattern)
    if not found:
        raise IsslideError(
            f"{_key(name, 'phase')}: no file matches {full.format(reference='YYYYMMDD', secondary='YYYYMMDD')}; "
            "check the pattern (relative to the working directory) and the file names"
        )
    start = dt.date.fromisoformat(config["dates"]["start"])
    end = dt.date.fromisoformat(config["dates"]["end"])
    delays = set(config.get("delays", schema_default("delays")))
    pairs, ignored = [], []
    for (ref_s, sec_s), path in found.items():
        ref, sec = _date(ref_s, path), _date(sec_s, path)
        pair = Pair(name, ref, sec)
        if sec <= ref:
            ignored.append(f"{path} ignored: secondary {sec} not after reference {ref}")
        elif pair.delay not in delays:
            ignored.append(f"{path} ignored: delay {pair.delay} d is not in delays")
        elif ref < start or sec > end:
            ignored.append(f"{path} ignored: outside dates {start}..{end}")
        else:
            pairs.append(pair)
    if not pairs:
        raise IsslideError(
            f"{_key(name, 'phase')}: {len(found)} interferogram(s) found but none with a delay in "
            f"delays {sorted(delays)} within dates {start}..{end}; adjust delays or dates"
        )
    for pair in pairs:
        for kind, path in pair_files(name, stack, pair, base).items():
            full_path = path if os.path.isabs(path) else os.path.join(base, path)
            if not os.path.exists(full_path):
                raise IsslideError(
                    f"{full_path}: {kind} file of interferogram {pair.name} not found; add it or "
                    f"remove that pair's phase file ({_key(name, kind)})"
                )
    pairs.sort(key=lambda p: (p.delay, p.reference))
    dates = sorted({d for p in pairs for d in (p.reference, p.secondary)})
    return StackPlan(
        name, "interferograms", stack.get("track"), dates, dates, pairs=pairs, ignored=ignored
    )


def stack_grid(phase_paths: list[str], spacing: float, bbox=None) -> dict:
    """The stack's EPSG:4326 grid: ``bbox`` or the union of the files' footprints, snapped."""
    if bbox is None:
        boxes = []
        for path in phase_paths:
            try:
                with rasterio.open(path) as src:
                    if src.crs is None:
                        raise IsslideError(
                            f"{path}: raster has no CRS; georeference it (gdal_edit.py -a_srs)"
                        )
                    boxes.append(transform_bounds(src.crs, WGS84, *src.bounds, densify_pts=21))
            except rasterio.errors.RasterioIOError as exc:
                raise IsslideError(f"{path}: not a readable GeoTIFF ({exc})") from None
        b = np.array(boxes)
        bbox = (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())
    transform, width, height = output_grid(*[float(v) for v in bbox], float(spacing))
    return {"transform": list(transform)[:6], "width": int(width), "height": int(height)}


def _warp(data, src_transform, src_crs, grid: dict, resampling, nodata=np.nan, dtype=np.float32):
    dst = np.full((grid["height"], grid["width"]), nodata, dtype)
    reproject(
        data,
        dst,
        src_transform=src_transform,
        src_crs=src_crs,
        src_nodata=nodata,
        dst_transform=Affine(*grid["transform"]),
        dst_crs=WGS84,
        dst_nodata=nodata,
        resampling=resampling,
    )
    return dst


def import_interferogram(
    phase: str,
    coherence: str,
    outputs: dict[str, str],
    grid: dict,
    coherence_scale: float = 1.0,
    layover_shadow: str | None = None,
    scale_key: str = "coherence_scale",
) -> dict:
    """Write ``outputs`` coherence/phase/layover_shadow on ``grid`` (see module docstring)."""
    pair = read_pair(phase, coherence, coherence_scale, None, scale_option=scale_key)
    valid = pair.valid
    nan = np.float32(np.nan)
    re_ = np.where(valid, np.cos(pair.phase), nan).astype(np.float32)
    im_ = np.where(valid, np.sin(pair.phase), nan).astype(np.float32)
    co_ = np.where(valid, pair.coherence, nan).astype(np.float32)
    bil = Resampling.bilinear
    re_w = _warp(re_, pair.transform, pair.crs, grid, bil)
    im_w = _warp(im_, pair.transform, pair.crs, grid, bil)
    co_w = _warp(co_, pair.transform, pair.crs, grid, bil)
    ok = np.isfinite(re_w) & np.isfinite(im_w) & np.isfinite(co_w)
    ph_out = np.where(ok, np.arctan2(im_w, re_w), NODATA).astype(np.float32)
    co_out = np.where(ok, np.clip(co_w, 0.0, 1.0), NODATA).astype(np.float32)
    mask = np.where(ok, 0, MASK_NODATA).astype(np.uint8)
    if layover_shadow:
        with rasterio.open(layover_shadow) as src:
            if src.crs is None:
                raise IsslideError(f"{layover_shadow}: raster has no CRS; georeference it")
            ls = src.read(1).astype(np.float32)
            if src.nodata is not None:
                ls[ls == src.nodata] = np.nan
            ls_w = _warp(ls, src.transform, src.crs, grid, Resampling.nearest)
        known = np.isin(ls_w, (0, 1, 2))
        mask = np.where(ok & known, ls_w, MASK_NODATA).astype(np.uint8)
    transform = Affine(*grid["transform"])
    write_raster(outputs["coherence"], co_out, transform, WGS84, NODATA)
    write_raster(outputs["phase"], ph_out, transform, WGS84, NODATA)
    write_raster(outputs["layover_shadow"], mask, transform, WGS84, MASK_NODATA)
    return {
        "valid_input_pixels": int(valid.sum()),
        "valid_output_pixels": int(ok.sum()),
        "grid": grid,
    }
