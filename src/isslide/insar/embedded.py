"""The embedded (numpy/scipy) backend of the eight InSAR steps.

Each step reads its inputs (the simulated stack's SLC GeoTIFF + JSON, the previous step's product
in the format of :mod:`isslide.insar.products`, the DEM), runs the array algorithms of the sibling
modules block by block of lines (bounded memory), and writes its output atomically. See
``docs/embedded-backend.md`` for the product chain and the conventions.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import RasterioError
from rasterio.warp import Resampling, reproject
from rasterio.windows import Window

from ..errors import IsslideError
from ..geometry import Orbit, SarGeometry, output_grid
from . import calibration, coregistration, geocoding, goldstein, interferometry, multilook, terrain
from .products import (
    COMPLEX,
    FLOAT,
    META_TAG,
    ProductReader,
    block_lines,
    line_blocks,
    open_radar,
    write_product,
)

log = logging.getLogger("isslide.insar")

SLC_FORMAT = "isslide-slc/1"
BLOCK_BUDGET = 48 << 20  # bytes of working set per block of lines

# geometry keys that must agree between the two products of a pair
PAIR_GEOMETRY_KEYS = (
    "lon0",
    "lat0",
    "heading_deg",
    "incidence_deg",
    "altitude",
    "wavelength",
    "azimuth_spacing",
    "range_spacing",
    "first_line_s",
    "near_range",
    "lines",
    "samples",
)

DEFAULT_COREGISTRATION = {
    "window": 128,
    "windows": 36,
    "upsample": 20,
    "max_shift": 4.0,
    "min_quality": 0.2,
}


# ---------------------------------------------------------------------------------------------
# metadata helpers
def _require(meta: dict, keys: str, path: str):
    cur = meta
    for key in keys.split("."):
        if not isinstance(cur, dict) or key not in cur or cur[key] is None:
            raise IsslideError(
                f"{path}: missing metadata key '{keys}'; regenerate the acquisition's metadata"
            )
        cur = cur[key]
    return cur


def read_slc_metadata(path: str, polarisation: str | None = None) -> dict:
    """The SLC's JSON metadata, checked (one-line IsslideError naming the file and key)."""
    try:
        with open(path) as fh:
            meta = json.load(fh)
    except FileNotFoundError as exc:
        raise IsslideError(f"{path}: metadata file not found; regenerate the acquisition") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IsslideError(
            f"{path}: metadata is not valid JSON ({exc}); regenerate the acquisition"
        ) from exc
    if not isinstance(meta, dict):
        raise IsslideError(f"{path}: metadata must be a JSON object; regenerate the acquisition")
    fmt = meta.get("format")
    if fmt != SLC_FORMAT:
        raise IsslideError(f"{path}: metadata format {fmt!r}, expected {SLC_FORMAT!r}")
    for key in (
        "date",
        "polarisation",
        "geometry",
        "orbit.annotated",
        "orbit.precise",
        "calibration.lines",
        "calibration.samples",
        "calibration.sigma0",
    ):
        _require(meta, key, path)
    if polarisation and meta["polarisation"] != polarisation:
        raise IsslideError(
            f"{path}: polarisation {meta['polarisation']} but insar.polarisation is {polarisation}; "
            "set insar.polarisation to a polarisation the products have"
        )
    try:
        SarGeometry.from_dict(meta["geometry"])
        Orbit.from_dict(meta["orbit"]["annotated"])
        Orbit.from_dict(meta["orbit"]["precise"])
    except TypeError as exc:
        raise IsslideError(
            f"{path}: bad geometry/orbit metadata ({exc}); regenerate the acquisition"
        ) from exc
    cal = meta["calibration"]
    lut = np.asarray(cal["sigma0"], float)
    if lut.shape != (len(cal["lines"]), len(cal["samples"])) or not np.all(lut > 0):
        raise IsslideError(
            f"{path}: calibration.sigma0 must be a {len(cal['lines'])} x {len(cal['samples'])} table of positive "
            f"values (got shape {lut.shape}); regenerate the acquisition"
        )
    return meta


def _geometry(meta: dict) -> SarGeometry:
    return SarGeometry.from_dict(meta["geometry"])


def _applied_orbit(acq: dict) -> Orbit:
    return Orbit.from_dict(acq["orbit"][acq["orbit"]["applied"]])


def _acq(meta: dict) -> dict:
    return {k: meta[k] for k in ("date", "mission", "polarisation", "orbit") if k in meta}


def check_same_geometry(ref_meta: dict, sec_meta: dict, ref_path: str, sec_path: str) -> None:
    """A pair must share track and radar grid; IsslideError naming the secondary otherwise."""
    a, b = ref_meta["geometry"], sec_meta["geometry"]
    for key in PAIR_GEOMETRY_KEYS:
        va, vb = a.get(key), b.get(key)
        same = (
            (va == vb)
            if not isinstance(va, float)
            else (vb is not None and math.isclose(va, vb, rel_tol=1e-9, abs_tol=1e-9))
        )
        if not same:
            raise IsslideError(
                f"{sec_path}: geometry '{key}' is {vb} but {va} in the reference {ref_path}; "
                "a pair must come from one track and radar grid (check the stack's products/track)"
            )
    ta, tb = ref_meta.get("track"), sec_meta.get("track")
    if ta is not None and tb is not None and ta != tb:
        raise IsslideError(
            f"{sec_path}: track {tb} but the reference {ref_path} is on track {ta}; pair products of one track"
        )


def _insar(params: dict) -> dict:
    return dict(params.get("insar") or {})


def _coreg_options(params: dict) -> dict:
    opts = dict(DEFAULT_COREGISTRATION)
    opts.update(_insar(params).get("coregistration") or {})
    return opts


def _workers(threads) -> int:
    return max(1, int(threads or 1))


# ---------------------------------------------------------------------------------------------
# per acquisition
def calibrate(*, inputs, outputs, params, threads=1, resources=None):
    slc_path, meta_path = str(inputs["slc"]), str(inputs["metadata"])
    pol = _insar(params).get("polarisation", "VV")
    meta = read_slc_metadata(meta_path, pol)
    geom = _geometry(meta)
    cal = meta["calibration"]
    try:
        ds = open_radar(slc_path)
    except RasterioError as exc:
        raise IsslideError(
            f"{slc_path}: cannot open the SLC ({exc}); the file is corrupt, regenerate it"
        ) from exc
    with ds:
        if ds.count != 2 or ds.dtypes[0] != "int16":
            raise IsslideError(
                f"{slc_path}: expected 2 int16 bands (I, Q), found {ds.count} {ds.dtypes[0]} band(s); regenerate the SLC"
            )
        if (ds.height, ds.width) != (geom.lines, geom.samples):
            raise IsslideError(
                f"{slc_path}: {ds.height} x {ds.width} pixels but its metadata {meta_path} says "
                f"{geom.lines} x {geom.samples}; regenerate the acquisition"
            )
        out_meta = {
            "kind": "calibrated",
            "date": meta["date"],
            "mission": meta.get("mission"),
            "polarisation": meta["polarisation"],
            "track": meta.get("track"),
            "geometry": meta["geometry"],
            "orbit": {
                "annotated": meta["orbit"]["annotated"],
                "precise": meta["orbit"]["precise"],
                "applied": "annotated",
            },
            "source": os.path.basename(slc_path),
            "history": ["calibrate"],
        }
        cols = np.arange(geom.samples)
        size = block_lines(geom.samples, BLOCK_BUDGET, 40)
        with write_product(
            outputs["product"], (geom.lines, geom.samples), [("slc", COMPLEX)], out_meta
        ) as out:
            for a, b in line_blocks(geom.lines, size):
                try:
                    iq = ds.read([1, 2], window=Window(0, a, geom.samples, b - a))
                except RasterioError as exc:
                    raise IsslideError(
                        f"{slc_path}: read error at lines {a}-{b} ({exc}); the SLC is truncated or corrupt, regenerate it"
                    ) from exc
                gain = calibration.lut_gain(
                    cal["lines"], cal["samples"], cal["sigma0"], np.arange(a, b), cols
                )
                out.write("slc", calibration.calibrate_block(iq[0], iq[1], gain), a)


def apply_orbit(*, inputs, outputs, params, threads=1, resources=None):
    src = str(inputs["product"])
    with ProductReader(src, kinds=("calibrated",)) as reader:
        meta = dict(reader.meta)
    precise = (meta.get("orbit") or {}).get("precise")
    if not precise:
        raise IsslideError(
            f"{src}: no precise orbit in the product metadata; regenerate the acquisition's metadata"
        )
    meta["orbit"] = dict(meta["orbit"], applied="precise")
    meta["kind"] = "orbit"
    meta["history"] = list(meta.get("history", [])) + ["apply_orbit"]
    dst = Path(outputs["product"])
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.parent / f".{dst.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        shutil.copyfile(src, tmp)
        with open_radar(tmp, "r+") as ds:
            ds.update_tags(**{META_TAG: json.dumps(meta)})
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------------
# per pair
def _pair_meta(ref: ProductReader, sec: ProductReader) -> dict:
    check_same_geometry(ref.meta, sec.meta, ref.path, sec.path)
    for r in (ref, sec):
        if r.meta.get("orbit", {}).get("applied") != "precise":
            raise IsslideError(
                f"{r.path}: the precise orbit was not applied; run apply_orbit first"
            )
    return {
        "geometry": ref.meta["geometry"],
        "polarisation": ref.meta.get("polarisation"),
        "track": ref.meta.get("track"),
        "reference": _acq(ref.meta),
        "secondary": _acq(sec.meta),
    }


def _load_dem_for(path: str, geom: SarGeometry) -> geocoding.Dem:
    dem = geocoding.load_dem(path)
    dem.check_covers(geocoding.scene_bounds(geom, dem))
    return dem


def _secondary_coords(geom, ref_orbit, sec_orbit, dem, lines, samples):
    """Geometric (DEM-assisted) secondary line/sample of reference pixels lines x samples."""
    s, x, h = geocoding.radar_to_ground(geom, ref_orbit, dem, lines, samples)
    r_sec = geocoding.slant_range_from(geom, sec_orbit, s, x, h)
    sc = (r_sec - geom.near_range) / geom.range_spacing
    lc = np.broadcast_to(((s - geom.first_line_s) / geom.azimuth_spacing)[:, None], sc.shape)
    return lc, sc


def _resample_secondary(reader: ProductReader, lc: np.ndarray, sc: np.ndarray, carriers, cols=None):
    """Secondary values at (lc, sc) (2-D arrays), two separable passes (azimuth, then range)."""
    halo = coregistration.TAPS
    n_lines, n_samples = reader.shape
    r0 = max(0, int(math.floor(lc.min())) - halo)
    r1 = min(n_lines, int(math.ceil(lc.max())) + halo + 1)
    c0 = max(0, int(math.floor(sc.min())) - halo)
    c1 = min(n_samples, int(math.ceil(sc.max())) + halo + 1)
    block = reader.read("slc", (r0, r1), (c0, c1))
    # azimuth pass: each output line at its (constant along range) line coordinate
    line_coords = lc[:, :1] - r0
    az = coregistration.resample_axis(
        block,
        np.broadcast_to(line_coords, (lc.shape[0], block.shape[1])),
        axis=0,
        carrier=carriers[0],
        origin=r0,
    )
    # line coordinates outside the image
    bad_l = (lc[:, 0] < 0) | (lc[:, 0] > n_lines - 1)
    out = coregistration.resample_axis(az, sc - c0, axis=1, carrier=carriers[1], origin=c0)
    out[bad_l] = 0
    out[(sc < 0) | (sc > n_samples - 1)] = 0
    return out


def _estimate_residual(ref, sec, geom, ref_orbit, sec_orbit, dem, carriers_ref, carriers_sec, opts):
    size = int(opts["window"])
    origins = coregistration.window_origins(geom.lines, geom.samples, size, int(opts["windows"]))
    if len(origins) == 0:
        log.warning(
            "coregister: image smaller than one %d px window; no residual offset estimated", size
        )
        return np.zeros(2), {"windows": 0}
    ref_w, sec_w = [], []
    yy, xx = np.mgrid[0:size, 0:size]
    for y, x in origins:  # a few dozen windows, each vectorised
        lines, samples = np.arange(y, y + size), np.arange(x, x + size)
        lc, sc = _secondary_coords(geom, ref_orbit, sec_orbit, dem, lines, samples)
        s_win = _resample_secondary(sec, lc, sc, carriers_sec)
        r_win = ref.read("slc", (y, y + size), (x, x + size))
        # baseband both windows for the 2x oversampling
        r_win = r_win * np.exp(
            -2j * np.pi * (carriers_ref[0] * (y + yy) + carriers_ref[1] * (x + xx))
        )
        s_win = s_win * np.exp(-2j * np.pi * (carriers_sec[0] * lc + carriers_sec[1] * sc))
        ref_w.append(r_win)
        sec_w.append(s_win)
    shifts, quality = coregistration.estimate_shift(
        np.stack(ref_w),
        np.stack(sec_w),
        upsample=int(opts["upsample"]),
        max_shift=float(opts["max_shift"]),
    )
    good = quality >= float(opts["min_quality"])
    info = {
        "windows": int(len(origins)),
        "accepted": int(good.sum()),
        "median_quality": float(np.median(quality)),
    }
    if not good.any():
        log.warning(
            "coregister: no window correlates (best quality %.2f); residual offset set to 0",
            quality.max(),
        )
        return np.zeros(2), info
    residual = np.median(shifts[good], axis=0)
    info["spread_px"] = [float(v) for v in np.median(np.abs(shifts[good] - residual), axis=0)]
    return residual, info


def coregister(*, inputs, outputs, params, threads=1, resources=None):
    opts = _coreg_options(params)
    with (
        ProductReader(inputs["reference"], kinds=("orbit",)) as ref,
        ProductReader(inputs["secondary"], kinds=("orbit",)) as sec,
    ):
        if ref.shape != sec.shape:
            raise IsslideError(
                f"{sec.path}: {sec.shape} pixels but the reference {ref.path} has {ref.shape}; pair products of one radar grid"
            )
        meta = _pair_meta(ref, sec)
        geom = _geometry(ref.meta)
        ref_orbit, sec_orbit = _applied_orbit(ref.meta), _applied_orbit(sec.meta)
        dem = _load_dem_for(str(inputs["dem"]), geom)
        # spectral centroids (range carrier / Doppler) from a central block
        mid = geom.lines // 2
        probe_r = ref.read("slc", (mid - 128, mid + 128))
        probe_s = sec.read("slc", (mid - 128, mid + 128))
        carriers_ref = (
            coregistration.estimate_carrier(probe_r, 0),
            coregistration.estimate_carrier(probe_r, 1),
        )
        carriers_sec = (
            coregistration.estimate_carrier(probe_s, 0),
            coregistration.estimate_carrier(probe_s, 1),
        )
        del probe_r, probe_s
        residual, info = _estimate_residual(
            ref, sec, geom, ref_orbit, sec_orbit, dem, carriers_ref, carriers_sec, opts
        )
        log.info(
            "coregister: residual offset azimuth %.4f px, range %.4f px (%s)",
            residual[0],
            residual[1],
            info,
        )
        meta.update(
            kind="coregistered",
            history=["calibrate", "apply_orbit", "coregister"],
            coregistration={
                "method": "DEM-assisted geometry + amplitude cross-correlation residual",
                "residual_line": float(residual[0]),
                "residual_sample": float(residual[1]),
                "carrier_ref": list(carriers_ref),
                "carrier_sec": list(carriers_sec),
                **info,
            },
        )
        samples = np.arange(geom.samples)
        size = block_lines(geom.samples, BLOCK_BUDGET, 160)
        fields = [("reference", COMPLEX), ("secondary", COMPLEX)]
        with write_product(outputs["product"], ref.shape, fields, meta) as out:
            for a, b in line_blocks(geom.lines, size):
                lc, sc = _secondary_coords(
                    geom, ref_orbit, sec_orbit, dem, np.arange(a, b), samples
                )
                resampled = _resample_secondary(
                    sec, lc + residual[0], sc + residual[1], carriers_sec
                )
                out.write("secondary", resampled, a)
                out.write("reference", ref.read("slc", (a, b)), a)


def _window(params):
    cw = _insar(params).get("coherence_window") or {}
    return int(cw.get("range", 10)), int(cw.get("azimuth", 3))


def interferogram(*, inputs, outputs, params, threads=1, resources=None):
    rg_win, az_win = _window(params)
    with ProductReader(inputs["product"], kinds=("coregistered",)) as src:
        meta = dict(src.meta)
        geom = _geometry(meta)
        ref_orbit, sec_orbit = _applied_orbit(meta["reference"]), _applied_orbit(meta["secondary"])
        halo = az_win // 2 + 1
        samples = np.arange(geom.samples)
        meta.update(
            kind="interferogram",
            history=meta["history"] + ["interferogram"],
            coherence_window={"range": rg_win, "azimuth": az_win},
        )
        fields = [("ifg", COMPLEX), ("coherence", FLOAT), ("power", FLOAT)]
        size = block_lines(geom.samples, BLOCK_BUDGET, 96)
        with write_product(outputs["product"], src.shape, fields, meta) as out:
            for a, b in line_blocks(geom.lines, size):
                h0, h1 = max(0, a - halo), min(geom.lines, b + halo)
                r = src.read("reference", (h0, h1))
                s = src.read("secondary", (h0, h1))
                flat = interferometry.flat_earth_phase(
                    geom, ref_orbit, sec_orbit, np.arange(h0, h1), samples
                )
                ifg = r * np.conj(s) * interferometry.phase_screen(flat)
                del flat
                power = interferometry.boxcar_power(r, s, rg_win, az_win)
                del r, s
                coh = interferometry.coherence_from_power(ifg, power, rg_win, az_win)
                k0, k1 = a - h0, a - h0 + (b - a)
                out.write("ifg", ifg[k0:k1], a)
                out.write("coherence", coh[k0:k1], a)
                out.write("power", power[k0:k1], a)


def remove_topographic_phase(*, inputs, outputs, params, threads=1, resources=None):
    with ProductReader(inputs["product"], kinds=("interferogram",)) as src:
        meta = dict(src.meta)
        geom = _geometry(meta)
        ref_orbit, sec_orbit = _applied_orbit(meta["reference"]), _applied_orbit(meta["secondary"])
        dem = _load_dem_for(str(inputs["dem"]), geom)
        rg_win, az_win = meta["coherence_window"]["range"], meta["coherence_window"]["azimuth"]
        halo = az_win // 2 + 1
        samples = np.arange(geom.samples)
        meta.update(kind="topo_removed", history=meta["history"] + ["remove_topographic_phase"])
        fields = [("ifg", COMPLEX), ("coherence", FLOAT)]
        size = block_lines(geom.samples, BLOCK_BUDGET, 160)
        with write_product(outputs["product"], src.shape, fields, meta) as out:
            for a, b in line_blocks(geom.lines, size):
                h0, h1 = max(0, a - halo), min(geom.lines, b + halo)
                lines = np.arange(h0, h1)
                s, x, h = geocoding.radar_to_ground(geom, ref_orbit, dem, lines, samples)
                topo = interferometry.topographic_phase(
                    geom, ref_orbit, sec_orbit, lines, samples, s, x, h
                )
                del x, h
                ifg = src.read("ifg", (h0, h1)) * interferometry.phase_screen(topo)
                del topo
                coh = interferometry.coherence_from_power(
                    ifg, src.read("power", (h0, h1)), rg_win, az_win
                )
                k0, k1 = a - h0, a - h0 + (b - a)
                out.write("ifg", ifg[k0:k1], a)
                out.write("coherence", coh[k0:k1], a)


def goldstein_step(*, inputs, outputs, params, threads=1, resources=None):
    g = _insar(params).get("goldstein") or {}
    alpha, n, win = float(g.get("alpha", 1.0)), int(g.get("fft_size", 64)), int(g.get("window", 3))
    with ProductReader(inputs["product"], kinds=("topo_removed",)) as src:
        meta = dict(src.meta)
        held = [src.read("ifg")]
        nodata = held[0] == 0  # outside the SLCs' valid footprint
        # goldstein() drops its argument once padded: hand it the only reference
        filtered = goldstein.goldstein(held.pop(), alpha, n, win, workers=_workers(threads))
        filtered[nodata] = 0  # the filter leaks into nodata; it stays nodata
        del nodata
        meta.update(
            kind="goldstein",
            history=meta["history"] + ["goldstein"],
            goldstein={"alpha": alpha, "fft_size": n, "window": win, "overlap": 0.75},
        )
        size = block_lines(src.shape[1], BLOCK_BUDGET, 16)
        with write_product(
            outputs["product"], src.shape, [("ifg", COMPLEX), ("coherence", FLOAT)], meta
        ) as out:
            for a, b in line_blocks(src.shape[0], size):
                out.write("ifg", filtered[a:b], a)
                out.write("coherence", src.read("coherence", (a, b)), a)


def multilook_step(*, inputs, outputs, params, threads=1, resources=None):
    ml = _insar(params).get("multilook") or {}
    rg, az = int(ml.get("range", 8)), int(ml.get("azimuth", 2))
    with ProductReader(inputs["product"], kinds=("goldstein",)) as src:
        meta = dict(src.meta)
        lines, samples = src.shape
        if lines < az or samples < rg:
            raise IsslideError(
                f"{src.path}: {lines} x {samples} pixels, smaller than one {az} x {rg} look; check insar.multilook"
            )
        shape = (lines // az, samples // rg)
        meta.update(
            kind="multilooked",
            history=meta["history"] + ["multilook"],
            looks={"azimuth": az, "range": rg},
        )
        size = block_lines(samples, BLOCK_BUDGET, 24, multiple=az)
        with write_product(
            outputs["product"], shape, [("ifg", COMPLEX), ("coherence", FLOAT)], meta
        ) as out:
            for a, b in line_blocks(shape[0] * az, size, multiple=az):
                ifg = src.read("ifg", (a, b))
                valid = ifg != 0  # zero: outside the SLCs' valid footprint (nodata)
                out.write("ifg", multilook.multilook_valid(ifg, valid, az, rg), a // az)
                coh = src.read("coherence", (a, b))
                out.write("coherence", multilook.multilook_valid(coh, valid, az, rg), a // az)


def reproject_dem(path: str, transform, width: int, height: int) -> np.ndarray:
    """The DEM bilinearly resampled onto an EPSG:4326 grid (NaN where it has no height)."""
    dest = np.full((height, width), np.nan, np.float32)
    try:
        with rasterio.open(path) as ds:
            reproject(
                rasterio.band(ds, 1),
                dest,
                dst_transform=transform,
                dst_crs="EPSG:4326",
                dst_nodata=np.nan,
                src_nodata=ds.nodata,
                resampling=Resampling.bilinear,
                src_crs=ds.crs or "EPSG:4326",
            )
    except RasterioError as exc:
        raise IsslideError(
            f"{path}: cannot read the DEM ({exc}); provide a readable GeoTIFF"
        ) from exc
    return dest


def _write_geotiffs(items: dict, transform) -> None:
    """Write {path: (array, nodata)} as EPSG:4326 GeoTIFFs, all renamed into place at the end."""
    tmps = {}
    try:
        for path, (data, nodata) in items.items():
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
            tmps[path] = tmp
            profile = dict(
                driver="GTiff",
                dtype=data.dtype.name,
                count=1,
                height=data.shape[0],
                width=data.shape[1],
                crs="EPSG:4326",
                transform=transform,
                nodata=nodata,
                compress="deflate",
                tiled=True,
                blockxsize=256,
                blockysize=256,
            )
            if data.dtype == np.float32:
                profile["predictor"] = 3
            with rasterio.open(tmp, "w", **profile) as ds:
                ds.write(data, 1)
        for path, tmp in tmps.items():
            os.replace(tmp, path)
    except BaseException:
        for tmp in tmps.values():
            tmp.unlink(missing_ok=True)
        raise


def terrain_correct(*, inputs, outputs, params, threads=1, resources=None):
    insar = _insar(params)
    spacing = float(insar.get("pixel_spacing_deg", 1.315e-4))
    with ProductReader(inputs["product"], kinds=("multilooked",)) as src:
        meta = src.meta
        ifg = src.read("ifg")
        coh = src.read("coherence")
    geom = _geometry(meta)
    ref_orbit = _applied_orbit(meta["reference"])
    dem_path = str(inputs["dem"])
    bounds = geom.extra.get("bounds") if geom.extra else None
    if not bounds:
        bounds = geocoding.scene_bounds(geom, geocoding.load_dem(dem_path))
    transform, width, height = output_grid(*bounds, spacing)
    heights = reproject_dem(dem_path, transform, width, height)
    missing = int(np.isnan(heights).sum())
    if missing:
        west, south, east, north = bounds
        raise IsslideError(
            f"{dem_path}: no height for {missing} of {heights.size} output pixels of the scene "
            f"lon {west:.5f}..{east:.5f}, lat {south:.5f}..{north:.5f}; provide a DEM covering the whole scene "
            "without voids"
        )
    phase, coherence, mask = terrain.terrain_correct(
        ifg,
        coh,
        geom,
        ref_orbit,
        meta["looks"]["azimuth"],
        meta["looks"]["range"],
        heights,
        transform,
    )
    _write_geotiffs(
        {
            outputs["coherence"]: (coherence, terrain.NODATA),
            outputs["phase"]: (phase, terrain.NODATA),
            outputs["layover_shadow"]: (mask, terrain.MASK_NODATA),
        },
        transform,
    )


GDAL_CACHE_MB = 32  # GDAL's block cache would otherwise hold up to 5% of RAM of dirty blocks


def _bounded_cache(fn):
    @functools.wraps(fn)
    def wrapper(**kwargs):
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
            return fn(**kwargs)

    return wrapper


STEP_FUNCTIONS = {
    "calibrate": calibrate,
    "apply_orbit": apply_orbit,
    "coregister": coregister,
    "interferogram": interferogram,
    "remove_topographic_phase": remove_topographic_phase,
    "goldstein": goldstein_step,
    "multilook": multilook_step,
    "terrain_correct": terrain_correct,
}
STEP_FUNCTIONS = {name: _bounded_cache(fn) for name, fn in STEP_FUNCTIONS.items()}
