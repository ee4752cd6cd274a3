"""One simulated Sentinel-1 IW SLC acquisition.

The ground (the scene DEM interpolated bilinearly onto a lon/lat grid finer than the radar cells,
``simulation.radar.ground_oversampling`` cells per radar pixel in range and in azimuth) is made of
point scatterers. Each is mapped to the radar grid with :meth:`SarGeometry.ground_to_radar` for
the date's precise orbit plus the date's sub-pixel misregistration, and its complex echo is
spread over the four nearest radar cells (power weights bilinear) with ``np.bincount`` on
flattened indices: foreshortening and layover follow from the mapping, shadow from the local
incidence (no echo where the slope faces away steeper than 90 degrees minus the incidence).

Echo of a scatterer at date n::

    sqrt(P) * z_n * exp(-1j * (4 pi / wavelength * (R_n + d_n) + psi_n))

* ``P``: gamma0 of its land cover x cos(local incidence) x surface area / area of a radar cell;
  the land cover is looked up at the scatterer's position plus a sub-cell offset (uniform within
  one DEM cell, fixed per scatterer), so cover borders are not the DEM grid's staircase;
* ``z_n = sqrt(ginf) c + sqrt(g0 - ginf) u_n + sqrt(1 - g0) e_n`` with ``c`` (common to all
  dates), ``e_n`` (new each date) CN(0, 1) and ``u_n`` a complex Gaussian AR(1) (Ornstein-Uhlenbeck)
  with correlation ``exp(-dt / tau)``: E[z_i z_j*] = ginf + (g0 - ginf) exp(-|t_i - t_j| / tau),
  the temporal coherence, known exactly; ``g0`` and ``ginf`` are the land cover's times the
  scene's coherence factor (texture, streams, ridges, decoy patches; bilinear on the DEM grid);
* ``R_n`` slant range to the precise orbit of date n; ``d_n`` line-of-sight displacement of
  the moving areas (range increase, the sum of their lobes); ``psi_n`` atmospheric phase screen
  (turbulence + height stratification) and the decoys' phase anomalies (:mod:`.decoys`).

Thermal noise CN(0, NESZ) is added per radar cell; radar cells outside the date's valid
footprint (:mod:`.footprint`) are set to 0, as in a real product. Then the calibrated complex
amplitude is multiplied by the calibration LUT and rounded to int16 digital numbers (I, Q).
"""

from __future__ import annotations

import logging
import math

import numpy as np
from scipy import ndimage

from ..files import write_bands, write_json
from ..geometry import Orbit
from . import areas as A
from . import decoys as D
from .fields import complex_normal, power_law_field, rng
from .scene import Scene
from .terrain import M_PER_DEG, expand, gradients, grid

log = logging.getLogger("isslide.simulate")

BLOCK_CELLS = 1 << 16  # ground cells per block (fixed: the random streams are keyed by block)
SLC_FORMAT = "isslide-slc/1"


class GroundGrid:
    """The fine lon/lat grid of point scatterers of a scene."""

    def __init__(self, scene: Scene):
        g = scene.geometry
        lat0 = g.lat0
        os_ = float(scene.sim["radar"]["ground_oversampling"])
        ground_range = g.range_spacing / math.sin(math.radians(g.incidence_deg))
        self.cell_east_m = ground_range / os_
        self.cell_north_m = g.azimuth_spacing / os_
        margin = 0.5 * float(scene.sim["dem_margin_km"]) * 1e3
        bounds = expand(scene.bounds, margin, lat0)
        self.transform, self.width, self.height = grid(
            bounds,
            self.cell_east_m / (M_PER_DEG * math.cos(math.radians(lat0))),
            self.cell_north_m / M_PER_DEG,
        )
        rows = max(1, BLOCK_CELLS // self.width)
        self.blocks = [(r, min(r + rows, self.height)) for r in range(0, self.height, rows)]

    @property
    def cells(self) -> int:
        return self.width * self.height

    def block_lonlat(self, r0: int, r1: int):
        tr = self.transform
        lon = tr.c + (np.arange(self.width) + 0.5) * tr.a
        lat = tr.f + (np.arange(r0, r1) + 0.5) * tr.e
        return np.tile(lon, r1 - r0), np.repeat(lat, self.width)


def _dem_coords(scene: Scene, lon, lat):
    tr = scene.dem_transform
    return [(lat - tr.f) / tr.e - 0.5, (lon - tr.c) / tr.a - 0.5]


def nuisance_phase(scene: Scene, i: int) -> np.ndarray:
    """Atmospheric phase screen plus every decoy's phase anomaly of date i on the DEM grid (rad)."""
    sim = scene.sim
    aps = sim["aps"]
    tr = scene.dem_transform
    lat0 = scene.geometry.lat0
    cell = (abs(tr.e) * M_PER_DEG, tr.a * M_PER_DEG * math.cos(math.radians(lat0)))
    date = scene.dates[i]
    draws = scene.draws(date)
    phase = np.zeros(scene.dem.shape, np.float64)
    if aps["turbulence_rad"] > 0:
        turb = power_law_field(
            scene.dem.shape,
            rng(scene.seed, scene.stack, "turbulence", date.toordinal()),
            11.0 / 3.0,  # 2-D phase spectrum of Kolmogorov turbulence (structure function r**5/3)
            cell,
            aps["outer_scale_km"] * 1e3,
        )
        phase += aps["turbulence_rad"] * turb
    h = scene.dem.astype(np.float64)
    phase += draws["aps_stratified"] * (h - float(np.median(h))) / 1000.0
    rows, cols = np.indices(scene.dem.shape)
    lon = (tr.c + (cols + 0.5) * tr.a).ravel()
    lat = (tr.f + (rows + 0.5) * tr.e).ravel()
    phase.ravel()[:] += D.total_phase(draws["decoys"], lon, lat)
    return phase


def calibration_lut(scene: Scene, i: int):
    """Sparse sigma0 LUT of date i: (line nodes, sample nodes, values) and its bilinear factors."""
    g = scene.geometry
    lines = np.unique(np.r_[np.arange(0, g.lines, max(g.lines // 8, 1)), g.lines - 1])
    samples = np.unique(np.r_[np.arange(0, g.samples, max(g.samples // 16, 1)), g.samples - 1])
    f_s = 1.0 + 0.3 * samples / max(g.samples - 1, 1)  # range-dependent antenna/processor gain
    g_l = 1.0 + 0.02 * np.sin(2 * math.pi * lines / max(g.lines - 1, 1))
    gain = float(scene.draws(scene.dates[i])["gain"])
    values = gain * np.outer(g_l, f_s)
    return lines, samples, values, gain * g_l, f_s


def simulate_slc(scene: Scene, date) -> tuple[np.ndarray, dict]:
    """Calibrated complex SLC (complex64, lines x samples, sigma0 units) and metadata of a date."""
    i = scene.date_index(date)
    g = scene.geometry
    sim = scene.sim
    orbit = scene.precise_orbit(i)
    da, dr = (float(x) for x in scene.draws(scene.dates[i])["misregistration"])
    ground = GroundGrid(scene)
    gx_dem, gy_dem = gradients(scene.dem, scene.dem_transform, g.lat0)
    nuis = nuisance_phase(scene, i)
    gamma0 = 10 ** (scene.surface_table("gamma0_db") / 10.0)
    g0_c = scene.surface_table("g0").astype(np.float32)
    ginf_c = np.minimum(scene.surface_table("ginf"), g0_c).astype(np.float32)
    tau = scene.surface_table("tau_days")
    factor = np.asarray(scene.coherence_factor, np.float32)
    textured = bool(factor.min() != 1.0 or factor.max() != 1.0)
    # the AR(1) speckle chain runs over the revisit grid from dates.start up to this date
    ordinals = [d.toordinal() for d in scene.grid_until(scene.dates[i])]
    if scene.n_areas:
        lobe_disp = scene.lobe_weights(scene.displacement(i))
    n_pix = g.lines * g.samples
    slc = np.zeros(n_pix, np.complex64)
    a_cell = ground.cell_east_m * ground.cell_north_m
    k4pi = 4.0 * math.pi / g.wavelength
    for b, (r0, r1) in enumerate(ground.blocks):
        lon, lat = ground.block_lonlat(r0, r1)
        coords = _dem_coords(scene, lon, lat)
        h = ndimage.map_coordinates(scene.dem.astype(np.float64), coords, order=1, mode="nearest")
        gx = ndimage.map_coordinates(gx_dem, coords, order=1, mode="nearest")
        gy = ndimage.map_coordinates(gy_dem, coords, order=1, mode="nearest")
        # land cover at a fixed random sub-cell offset of each scatterer (no staircase borders)
        dither = rng(scene.seed, scene.stack, "dither", b).random(2 * lon.size, np.float32)
        dither -= np.float32(0.5)
        cov = ndimage.map_coordinates(
            scene.cover,
            [coords[0] + dither[: lon.size], coords[1] + dither[lon.size :]],
            order=0,
            mode="nearest",
        )
        del dither
        psi = ndimage.map_coordinates(nuis, coords, order=1, mode="nearest")
        g0 = g0_c[cov]
        ginf = ginf_c[cov]
        if textured:
            q = ndimage.map_coordinates(factor, coords, order=1, mode="nearest")
            g0 = np.minimum(g0 * q, np.float32(0.99))
            ginf = np.minimum(ginf * q, g0)
            del q
        # backscattered power (relative to a flat radar cell) from the local incidence
        look = g.look_vector(lon, lat, h)
        nrm = np.sqrt(1.0 + gx * gx + gy * gy)
        cos_loc = (-gx * look[:, 0] - gy * look[:, 1] + look[:, 2]) / nrm
        inc = g.incidence(lon, lat, h)
        a_ref = g.range_spacing / np.sin(inc) * g.azimuth_spacing
        power = gamma0[cov] * np.clip(cos_loc, 0.0, None) * nrm * a_cell / a_ref
        del look, gx, gy, nrm, cos_loc, inc, a_ref
        # reflectivity: common + exponentially correlated + fresh parts
        n = lon.size
        z = complex_normal(rng(scene.seed, scene.stack, "common", b), n)
        z *= np.sqrt(ginf)
        u = complex_normal(rng(scene.seed, scene.stack, "drift", ordinals[0], b), n)
        tau_c = tau[cov]
        for m in range(1, len(ordinals)):
            with np.errstate(divide="ignore", over="ignore"):
                rho = np.where(
                    tau_c > 0,
                    np.exp(-(ordinals[m] - ordinals[m - 1]) / np.maximum(tau_c, 1e-9)),
                    0.0,
                )
            u *= rho
            u += np.sqrt(1.0 - rho * rho) * complex_normal(
                rng(scene.seed, scene.stack, "drift", ordinals[m], b), n
            )
        z += np.sqrt(g0 - ginf) * u
        del u
        z += np.sqrt(1.0 - g0) * complex_normal(
            rng(scene.seed, scene.stack, "fresh", ordinals[-1], b), n
        )
        # geometry: slant range to the precise orbit, deformation, atmosphere
        rng_m = g.slant_range(lon, lat, h, orbit)
        if scene.n_areas:
            rng_m += A.lobes_sum(lon, lat, scene.lobes, lobe_disp)
        phase = np.mod(k4pi * rng_m, 2 * math.pi) + psi
        z *= np.sqrt(power) * np.exp(-1j * phase)
        del phase, psi, power
        s_along, _ = g.along_cross(lon, lat)
        line = (s_along - g.first_line_s) / g.azimuth_spacing + da
        sample = (rng_m - g.near_range) / g.range_spacing + dr
        del s_along, rng_m, lon, lat, h
        _splat(slc, line, sample, z, g.lines, g.samples)
    slc = slc.reshape(g.lines, g.samples)
    nesz = 10 ** (float(sim["radar"]["nesz_db"]) / 10.0)
    gen = rng(scene.seed, scene.stack, "thermal", ordinals[-1])
    step = max(1, (1 << 18) // g.samples)
    for r0 in range(0, g.lines, step):
        r1 = min(r0 + step, g.lines)
        slc[r0:r1] += (math.sqrt(nesz) * complex_normal(gen, (r1 - r0) * g.samples)).reshape(
            r1 - r0, g.samples
        )
        inside = scene.footprint_valid(i, np.arange(r0, r1)[:, None], np.arange(g.samples)[None])
        slc[r0:r1][~inside] = 0
    return slc, metadata(scene, i)


def _splat(slc, line, sample, z, lines, samples):
    """Add each echo to its 4 nearest radar cells with power weights (1-f)(1-g), ... (bilinear).

    ``slc`` is the flat complex64 radar image; the sums run over the span of cells the block
    touches only, so temporaries stay the size of the block, not of the image.
    """
    l0 = np.floor(line)
    s0 = np.floor(sample)
    fl = line - l0
    fs = sample - s0
    l0 = l0.astype(np.int64)
    s0 = s0.astype(np.int64)
    for dl, ds in ((0, 0), (0, 1), (1, 0), (1, 1)):
        w = (fl if dl else 1.0 - fl) * (fs if ds else 1.0 - fs)
        li = l0 + dl
        si = s0 + ds
        ok = (li >= 0) & (li < lines) & (si >= 0) & (si < samples)
        if not ok.any():
            continue
        idx = li[ok] * samples + si[ok]
        lo = int(idx.min())
        hi = int(idx.max()) + 1
        idx -= lo
        amp = np.sqrt(w[ok])
        zz = z[ok]
        slc.real[lo:hi] += np.bincount(idx, weights=zz.real * amp, minlength=hi - lo)
        slc.imag[lo:hi] += np.bincount(idx, weights=zz.imag * amp, minlength=hi - lo)


def perpendicular_baseline(orbit: Orbit, incidence_deg: float) -> float:
    t = math.radians(incidence_deg)
    return orbit.cross * math.cos(t) + orbit.vertical * math.sin(t)


def metadata(scene: Scene, i: int) -> dict:
    g = scene.geometry
    lines, samples, values, _, _ = calibration_lut(scene, i)
    draws = scene.draws(scene.dates[i])
    precise = scene.precise_orbit(i)
    annotated = scene.annotated_orbit(i)
    return {
        "format": SLC_FORMAT,
        "date": scene.dates[i].isoformat(),
        "mission": "Sentinel-1A" if scene.revisit_index(i) % 2 == 0 else "Sentinel-1B",
        "polarisation": "VV",
        "stack": scene.stack,
        "geometry": g.to_dict(),
        "orbit": {"annotated": annotated.to_dict(), "precise": precise.to_dict()},
        "baseline": {"perpendicular_m": perpendicular_baseline(annotated, g.incidence_deg)},
        "calibration": {
            "lines": [int(x) for x in lines],
            "samples": [int(x) for x in samples],
            "sigma0": [[float(v) for v in row] for row in values],
        },
        "truth": {
            "misregistration_px": {
                "azimuth": float(draws["misregistration"][0]),
                "range": float(draws["misregistration"][1]),
            },
            "perpendicular_baseline_m": perpendicular_baseline(precise, g.incidence_deg),
            "orbit_error": {
                k: float(v)
                for k, v in zip(
                    ("cross", "vertical", "cross_rate", "vertical_rate"),
                    draws["orbit_error"],
                    strict=True,
                )
            },
            "aps_stratified_rad_per_km": float(draws["aps_stratified"]),
            "calibration_gain": float(draws["gain"]),
            "footprint_shift_px": {
                "azimuth": float(draws["footprint_shift"][0]),
                "range": float(draws["footprint_shift"][1]),
            },
            "decoys": [D.to_json(d) for d in draws["decoys"]],
        },
    }


def to_digital_numbers(scene: Scene, i: int, slc: np.ndarray) -> tuple[np.ndarray, float]:
    """int16 (2, lines, samples) I/Q digital numbers DN = amplitude * A (A from the LUT)."""
    g = scene.geometry
    lines, samples, _, g_l, f_s = calibration_lut(scene, i)
    a_line = np.interp(np.arange(g.lines), lines, g_l).astype(np.float32)
    a_samp = np.interp(np.arange(g.samples), samples, f_s).astype(np.float32)
    out = np.empty((2, g.lines, g.samples), np.int16)
    saturated = 0
    step = max(1, (1 << 18) // g.samples)
    for r0 in range(0, g.lines, step):
        r1 = min(r0 + step, g.lines)
        amp = slc[r0:r1] * (a_line[r0:r1, None] * a_samp[None, :])
        for band, part in enumerate((amp.real, amp.imag)):
            q = np.rint(part)
            saturated += int(np.count_nonzero(np.abs(q) > 32767))
            out[band, r0:r1] = np.clip(q, -32767, 32767).astype(np.int16)
    return out, saturated / (2.0 * g.lines * g.samples)


def write_acquisition(scene: Scene, date, slc_path, meta_path) -> dict:
    slc, meta = simulate_slc(scene, date)
    i = scene.date_index(date)
    dn, sat = to_digital_numbers(scene, i, slc)
    del slc
    if sat > 1e-4:
        log.warning(
            "%s: %.3f%% of the digital numbers saturate int16; lower simulation.radar.calibration_gain",
            slc_path,
            100 * sat,
        )
    meta["truth"]["saturated_fraction"] = sat
    write_bands(slc_path, dn, tags={"FORMAT": SLC_FORMAT, "DATE": meta["date"], "BANDS": "I,Q"})
    write_json(meta_path, meta, indent=1)
    return meta


def simulate_acquisition(params: dict, wildcards: dict, inputs: dict, outputs: dict) -> dict:
    """Snakemake entry: the SLC ``slc/{date}.tif`` and its metadata ``slc/{date}.json``.

    Only the date (wildcard) and the scene matter: the acquisition is the same whatever the
    stack's end date (its speckle chain runs over the revisit grid from the scene's start).
    """
    scene = Scene.load(inputs["scene"])
    date = wildcards["date"]
    scene.check_time_axis(params)
    scene.dates = scene.grid_until(date)
    meta = write_acquisition(scene, date, outputs["slc"], outputs["metadata"])
    log.info(
        "stack %s date %s: %d x %d SLC, perpendicular baseline %.1f m",
        scene.stack,
        date,
        scene.geometry.lines,
        scene.geometry.samples,
        meta["truth"]["perpendicular_baseline_m"],
    )
    return meta
