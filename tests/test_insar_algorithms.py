"""Known-answer tests of the embedded backend's array algorithms (no files, no Snakemake)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_insar_synth import bandlimited_spectrum, make_dem, make_geometry

from isslide.geometry import Orbit, output_grid
from isslide.insar import (
    calibration,
    coregistration,
    geocoding,
    goldstein,
    interferometry,
    multilook,
    terrain,
)


def circ_std(d):
    return math.sqrt(-2 * math.log(abs(np.mean(np.exp(1j * np.asarray(d))))))


# -- calibration -----------------------------------------------------------------------------
def test_lut_gain_is_bilinear_and_clamped():
    lines, samples = [0, 10, 20], [0, 50, 100]
    lut = [[100 + 2 * j + i for j in samples] for i in lines]  # A = 100 + 2 s + l (exact bilinear)
    rows, cols = np.arange(0, 21), np.arange(0, 101)
    a = calibration.lut_gain(lines, samples, lut, rows, cols)
    expected = 100 + 2 * cols[None, :] + rows[:, None]
    np.testing.assert_allclose(a, expected, rtol=1e-12)
    beyond = calibration.lut_gain(lines, samples, lut, np.array([25]), np.array([120]))
    assert beyond[0, 0] == pytest.approx(100 + 200 + 20)


def test_calibrate_block_divides_digital_numbers_by_gain():
    i = np.array([[300, -150]], np.int16)
    q = np.array([[400, 0]], np.int16)
    out = calibration.calibrate_block(i, q, np.array([[100.0, 50.0]]))
    np.testing.assert_allclose(out, [[3 + 4j, -3 + 0j]], rtol=1e-6)
    assert abs(out[0, 0]) ** 2 == pytest.approx(25.0)  # sigma0 = |DN|^2 / A^2


# -- geocoding ------------------------------------------------------------------------------
def test_radar_to_ground_inverts_ground_to_radar_on_a_hilly_dem():
    dem, transform = make_dem(relief=400.0)
    geom = make_geometry(dem, transform)
    d = geocoding.Dem(dem.astype(np.float64), transform)
    orbit = Orbit(cross=50.0, vertical=-20.0, cross_rate=1e-4)
    lines = np.arange(5, geom.lines - 5, 7, dtype=float)
    samples = np.arange(5, geom.samples - 5, 11, dtype=float)
    s, x, h = geocoding.radar_to_ground(geom, orbit, d, lines, samples)
    lon, lat = geocoding.along_cross_to_lonlat(geom, s[:, None], x)
    np.testing.assert_allclose(h, d.height(lon, lat), atol=0.5)  # on the DEM surface
    line, sample = geom.ground_to_radar(lon, lat, h, orbit)
    np.testing.assert_allclose(line, np.broadcast_to(lines[:, None], line.shape), atol=1e-6)
    assert np.abs(sample - samples[None, :]).max() < 0.01


def test_dem_coverage_check_names_the_dem():
    dem, transform = make_dem(margin=0.0)
    d = geocoding.Dem(dem.astype(np.float64), transform, path="my_dem.tif")
    with pytest.raises(Exception, match="my_dem.tif.*does not|my_dem.tif: the DEM covers"):
        d.check_covers((-71.5, 44.0, -71.0, 44.5))
    d.heights[5, 5] = np.nan
    with pytest.raises(Exception, match="nodata"):
        d.check_covers(d.bounds)


# -- coregistration ---------------------------------------------------------------------------
def _shifted_pair(shift, n=256, seed=0, carrier=(0.0, 0.0), bandwidth=0.8):
    rng = np.random.default_rng(seed)
    f = bandlimited_spectrum((n, n), rng, bandwidth)
    fy, fx = np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :]
    ref = np.fft.ifft2(f)
    sec = np.fft.ifft2(
        f * np.exp(-2j * np.pi * (fy * shift[0] + fx * shift[1]))
    )  # sec(p) = ref(p - shift)
    ramp = np.exp(
        2j * np.pi * (carrier[0] * np.arange(n)[:, None] + carrier[1] * np.arange(n)[None, :])
    )
    return ref * ramp, sec * ramp


def test_estimate_shift_recovers_subpixel_shift():
    ref, sec = _shifted_pair((0.37, -0.61))
    origins = [(y, x) for y in (16, 96, 176) for x in (16, 96, 176)]
    rw = np.stack([ref[y : y + 64, x : x + 64] for y, x in origins])
    sw = np.stack([sec[y : y + 64, x : x + 64] for y, x in origins])
    shifts, quality = coregistration.estimate_shift(rw, sw)
    np.testing.assert_allclose(np.median(shifts, axis=0), [0.37, -0.61], atol=0.01)
    assert quality.min() > 0.8


def test_resample_axis_undoes_a_shift_with_a_carrier():
    carrier = (0.21, -0.13)
    ref, sec = _shifted_pair((0.0, 0.43), carrier=carrier, bandwidth=0.6)
    n = ref.shape[1]
    assert coregistration.estimate_carrier(sec, 1) == pytest.approx(carrier[1], abs=0.02)
    coords = np.broadcast_to(np.arange(n, dtype=float) + 0.43, ref.shape)
    out = coregistration.resample_axis(sec, coords, axis=1, carrier=carrier[1])
    r, o = ref[:, 8:-8], out[:, 8:-8]
    gamma = abs(np.vdot(r, o)) / math.sqrt(np.vdot(r, r).real * np.vdot(o, o).real)
    assert gamma > 0.995
    # the carrier is restored at the new positions: a constant phase of 2 pi carrier shift
    dphi = np.angle(o * np.conj(r))
    assert circ_std(dphi) < 0.05
    assert np.angle(np.mean(np.exp(1j * dphi))) == pytest.approx(
        2 * np.pi * carrier[1] * 0.43, abs=0.02
    )
    # azimuth, through axis=0, and positions outside the block are zero
    coords0 = np.broadcast_to(np.arange(n, dtype=float)[:, None] - 1.5, ref.shape)
    out0 = coregistration.resample_axis(ref, coords0, axis=0)
    assert np.all(out0[0] == 0)


def test_kernel_table_interpolates_exactly_at_integers():
    t = coregistration.kernel_table()
    k0 = coregistration.TAPS // 2 - 1
    assert t[0, k0] == pytest.approx(1.0) and np.abs(np.delete(t[0], k0)).max() < 1e-6
    np.testing.assert_allclose(t.sum(axis=1), 1.0, rtol=1e-6)


# -- interferometry ---------------------------------------------------------------------------
def _geom():
    dem, transform = make_dem()
    return make_geometry(dem, transform), geocoding.Dem(dem.astype(np.float64), transform)


def test_flat_earth_phase_matches_ranges_of_ellipsoid_points():
    geom, _ = _geom()
    ref_o, sec_o = Orbit(cross=2.0), Orbit(cross=80.0, vertical=30.0, vertical_rate=1e-4)
    lines, samples = np.array([0.0, 50.0, 120.0]), np.array([0.0, 300.0, 600.0])
    flat = interferometry.flat_earth_phase(geom, ref_o, sec_o, lines, samples)
    dem, transform = make_dem()
    zero = geocoding.Dem(np.zeros(dem.shape), transform)
    s, x, h = geocoding.radar_to_ground(geom, ref_o, zero, lines, samples)
    lon, lat = geocoding.along_cross_to_lonlat(geom, s[:, None], x)
    expected = (
        4
        * np.pi
        / geom.wavelength
        * (geom.slant_range(lon, lat, 0.0, sec_o) - geom.slant_range(lon, lat, 0.0, ref_o))
    )
    np.testing.assert_allclose(flat, expected, atol=1e-3)


def test_flat_plus_topographic_phase_is_the_full_geometric_phase():
    geom, dem = _geom()
    ref_o, sec_o = Orbit(), Orbit(cross=120.0, vertical=50.0)
    lines, samples = np.arange(0, geom.lines, 20.0), np.arange(0, geom.samples, 50.0)
    s, x, h = geocoding.radar_to_ground(geom, ref_o, dem, lines, samples)
    flat = interferometry.flat_earth_phase(geom, ref_o, sec_o, lines, samples)
    topo = interferometry.topographic_phase(geom, ref_o, sec_o, lines, samples, s, x, h)
    lon, lat = geocoding.along_cross_to_lonlat(geom, s[:, None], x)
    full = (
        4
        * np.pi
        / geom.wavelength
        * (geom.slant_range(lon, lat, h, sec_o) - geom.slant_range(lon, lat, h, ref_o))
    )
    np.testing.assert_allclose(flat + topo, full, atol=0.05)
    assert np.ptp(topo) > 2 * np.pi  # the DEM does make topographic fringes here


def test_coherence_estimator():
    rng = np.random.default_rng(5)
    shape = (300, 400)
    c = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    n = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    np.testing.assert_allclose(interferometry.coherence(c, c * np.exp(0.7j), 10, 3), 1.0, atol=1e-5)
    for gamma in (0.3, 0.6, 0.9):
        s = gamma * c + math.sqrt(1 - gamma**2) * n
        est = interferometry.coherence(c.astype(np.complex64), s.astype(np.complex64), 10, 3)
        assert abs(est.mean() - gamma) < 0.1  # estimator bias of 30 looks is small above 0.3
    assert interferometry.coherence(c, n, 10, 3).mean() < 0.2


# -- goldstein ------------------------------------------------------------------------------
def _goldstein_reference(z, alpha, n, window):
    """Straightforward loop over patches (the definition), for the vectorised version to match."""
    from scipy import ndimage

    step = n // 4
    pad = n - step
    h, w = z.shape
    ph = pad + h + pad + (-(h + 2 * pad - n)) % step
    pw = pad + w + pad + (-(w + 2 * pad - n)) % step
    p = np.pad(z, ((pad, ph - h - pad), (pad, pw - w - pad)), mode="reflect")
    acc = np.zeros(p.shape, complex)
    wsum = np.zeros(p.shape)
    wt = goldstein.bartlett2d(n)
    for y in range(0, ph - n + 1, step):
        for x in range(0, pw - n + 1, step):
            f = np.fft.fft2(p[y : y + n, x : x + n])
            s = ndimage.uniform_filter(np.abs(f), window, mode="wrap")
            s = (s / s.max()) ** alpha
            acc[y : y + n, x : x + n] += np.fft.ifft2(f * s) * wt
            wsum[y : y + n, x : x + n] += wt
    with np.errstate(invalid="ignore", divide="ignore"):  # the padding far from the image
        return (acc / wsum)[pad : pad + h, pad : pad + w]


def test_goldstein_vectorised_equals_patch_loop():
    rng = np.random.default_rng(2)
    z = (rng.standard_normal((90, 130)) + 1j * rng.standard_normal((90, 130))).astype(np.complex64)
    fast = goldstein.goldstein(z, 0.8, 32, 3, strip_patches=3)
    slow = _goldstein_reference(z.astype(complex), 0.8, 32, 3)
    np.testing.assert_allclose(fast, slow, rtol=2e-3, atol=2e-4 * np.abs(slow).max())


def test_goldstein_keeps_fringes_and_removes_noise():
    rng = np.random.default_rng(1)
    y, x = np.mgrid[:256, :320]
    phase = 0.3 * x + 0.1 * y + 1e-4 * x * y
    noisy = np.exp(1j * phase) + 0.7 * (
        rng.standard_normal(phase.shape) + 1j * rng.standard_normal(phase.shape)
    )
    out = goldstein.goldstein(noisy.astype(np.complex64), 1.0, 64, 3)
    assert circ_std(np.angle(noisy) - phase) > 0.6
    assert circ_std(np.angle(out) - phase) < 0.15
    assert np.allclose(
        goldstein.bartlett2d(64).reshape(4, 16, 4, 16).sum(axis=(0, 2)), 4.0
    )  # constant overlap-add


# -- multilook ------------------------------------------------------------------------------
def test_multilook_complex_mean_and_positions():
    z = (np.arange(4 * 16).reshape(4, 16) * (1 + 1j)).astype(np.complex64)
    z = np.vstack([z, z[:1]])  # an incomplete look at the bottom is dropped
    ml = multilook.multilook(z, 2, 8)
    assert ml.shape == (2, 2)
    assert ml[0, 0] == pytest.approx(np.mean(z[0:2, 0:8]))
    assert ml[1, 1] == pytest.approx(np.mean(z[2:4, 8:16]))
    assert multilook.full_resolution_position(1, 8) == 11.5
    assert multilook.multilooked_position(11.5, 8) == 1.0


# -- terrain correction ---------------------------------------------------------------------
def test_terrain_correction_places_a_point_target_within_one_pixel():
    dem, transform = make_dem(relief=500.0)
    geom = make_geometry(dem, transform)
    d = geocoding.Dem(dem.astype(np.float64), transform)
    orbit = Orbit(cross=1.0)
    az, rg = 2, 8
    out_t, width, height = output_grid(*geom.extra["bounds"], 1.315e-4)
    lon_o, lat_o = terrain.output_lonlat(out_t, width, height)
    heights = d.height(*np.meshgrid(lon_o, lat_o))
    rows, cols = np.mgrid[0 : geom.lines // az, 0 : geom.samples // rg]
    for k, (plon, plat) in enumerate(
        [(-71.2853, 44.2702), (-71.2741, 44.2655), (-71.2891, 44.2761)]
    ):
        line, sample = geom.ground_to_radar(plon, plat, float(d.height(plon, plat)), orbit)
        mlr, mlc = (
            multilook.multilooked_position(line, az),
            multilook.multilooked_position(sample, rg),
        )
        response = np.exp(
            -((rows - mlr) ** 2 + (cols - mlc) ** 2) / 2.0
        )  # point target, multilooked grid
        ifg = (response * np.exp(1j * (0.5 + k))).astype(np.complex64)
        # the response rides in the coherence band, so the peak is located through the real function
        phase, coherence, mask = terrain.terrain_correct(
            ifg, response.astype(np.float32), geom, orbit, az, rg, heights, out_t
        )
        pr, pc = np.unravel_index(np.argmax(coherence), coherence.shape)
        w = np.where(coherence > 0.5 * coherence.max(), coherence, 0.0)  # the response's main lobe
        rr, cc = np.indices(w.shape)
        row_est, col_est = (w * rr).sum() / w.sum(), (w * cc).sum() / w.sum()
        row_true = (plat - out_t.f) / out_t.e - 0.5
        col_true = (plon - out_t.c) / out_t.a - 0.5
        assert abs(row_est - row_true) <= 1.0 and abs(col_est - col_true) <= 1.0
        assert abs(pr - row_true) <= 1.5 and abs(pc - col_true) <= 1.5
        assert phase[pr, pc] == pytest.approx(
            0.5 + k, abs=1e-3
        )  # phase of the interpolated complex value
        assert set(np.unique(mask)) <= {0, 1, 2, 255}


def test_terrain_correction_nodata_outside_the_radar_image():
    dem, transform = make_dem()
    geom = make_geometry(dem, transform)
    d = geocoding.Dem(dem.astype(np.float64), transform)
    out_t, width, height = output_grid(
        -71.30, 44.26, -71.26, 44.28, 1.315e-4
    )  # wider than the radar grid
    lon_o, lat_o = terrain.output_lonlat(out_t, width, height)
    heights = d.height(*np.meshgrid(lon_o, lat_o))
    ifg = np.ones((geom.lines // 2, geom.samples // 8), np.complex64)
    phase, coherence, mask = terrain.terrain_correct(
        ifg, np.abs(ifg), geom, None, 2, 8, heights, out_t
    )
    outside = phase == terrain.NODATA
    assert outside.any() and (~outside).any()
    assert np.all(coherence[outside] == terrain.NODATA) and np.all(
        mask[outside] == terrain.MASK_NODATA
    )
    assert np.allclose(phase[~outside], 0.0) and np.allclose(coherence[~outside], 1.0)


def test_terrain_correction_by_blocks_of_rows_equals_one_block():
    dem, transform = make_dem(relief=3000.0)  # steep enough for layover
    geom = make_geometry(dem, transform)
    d = geocoding.Dem(dem.astype(np.float64), transform)
    out_t, width, height = output_grid(*geom.extra["bounds"], 1.315e-4)
    lon_o, lat_o = terrain.output_lonlat(out_t, width, height)
    heights = d.height(*np.meshgrid(lon_o, lat_o))
    rng = np.random.default_rng(3)
    shape = (geom.lines // 2, geom.samples // 8)
    ifg = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    coh = rng.uniform(0, 1, shape).astype(np.float32)
    whole = terrain.terrain_correct(ifg, coh, geom, None, 2, 8, heights, out_t)
    blocks = terrain.terrain_correct(ifg, coh, geom, None, 2, 8, heights, out_t, block_rows=7)
    for a, b in zip(whole, blocks, strict=True):
        np.testing.assert_array_equal(a, b)
    assert (whole[2] == 1).any() or (whole[2] == 2).any()


def test_multilook_of_valid_pixels():
    from isslide.insar.multilook import multilook, multilook_valid

    rng = np.random.default_rng(3)
    z = (rng.standard_normal((8, 16)) + 1j * rng.standard_normal((8, 16))).astype(np.complex64)
    every = np.ones(z.shape, bool)
    np.testing.assert_array_equal(multilook_valid(z, every, 2, 8), multilook(z, 2, 8))
    valid = every.copy()
    valid[:2, :3] = False  # box (0, 0): 10 of 16 valid -> mean of those 10
    valid[2:4, :14] = False  # box (1, 0): none valid; box (1, 1): 4 of 16 -> nodata
    out = multilook_valid(np.where(valid, z, 0), valid, 2, 8)
    np.testing.assert_allclose(out[0, 0], z[:2, :8][valid[:2, :8]].mean(), rtol=1e-5)
    assert out[1, 0] == 0 and out[1, 1] == 0
    np.testing.assert_allclose(out[2:], multilook(z, 2, 8)[2:], rtol=1e-6)
