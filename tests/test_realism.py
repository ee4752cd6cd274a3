"""The realism report's statistics (isslide.simulate.realism) on fields of known answer."""

from __future__ import annotations

import math

import numpy as np
import pytest
from affine import Affine
from scipy import ndimage

from isslide.simulate import realism as R

LAT = 44.27
# the interferograms' grid: 1.315e-4 deg square pixels, 10.5 m east-west x 14.6 m north-south
GRID = Affine(1.315e-4, 0, -71.3, 0, -1.315e-4, LAT + 0.02)


def isotropic_field(shape, sigma_m, seed=0):
    ny, nx = R.pixel_size_m(GRID, LAT)
    noise = np.random.default_rng(seed).standard_normal(shape)
    return ndimage.gaussian_filter(noise, (sigma_m / ny, sigma_m / nx))


def test_correlation_lengths_are_in_metres():
    f = isotropic_field((300, 400), 30.0)
    c = R.correlation_lengths(f, np.ones(f.shape, bool), GRID, LAT)
    assert c["anisotropy"] == pytest.approx(1.0, abs=0.1)
    assert c["length_ns_m"] == pytest.approx(60.0, rel=0.2)  # 1/e of a Gaussian ACF: 2 sigma
    # the same field stretched east-west (streaks) reads as anisotropic
    ny, nx = R.pixel_size_m(GRID, LAT)
    noise = np.random.default_rng(1).standard_normal((300, 400))
    streaks = ndimage.gaussian_filter(noise, (30.0 / ny, 90.0 / nx))
    assert R.correlation_lengths(streaks, np.ones(streaks.shape, bool), GRID, LAT)[
        "anisotropy"
    ] == pytest.approx(1 / 3, abs=0.08)


def test_residues_and_roughness():
    rows, cols = np.indices((100, 120))
    ramp = np.angle(np.exp(1j * 0.3 * cols))
    ok = np.ones(ramp.shape, bool)
    assert R.residue_fraction(ramp, ok) == 0
    noise = np.random.default_rng(2).uniform(-math.pi, math.pi, ramp.shape)
    assert R.residue_fraction(noise, ok) == pytest.approx(1 / 3, abs=0.03)
    r = R.phase_roughness(ramp, ok)
    assert r["std_ew_rad"] == pytest.approx(0.0, abs=1e-6) and r["std_ns_rad"] == 0


@pytest.mark.parametrize("gamma", [0.4, 0.6])
def test_phase_noise_of_independent_looks_meets_the_cramer_rao_bound(gamma):
    rng = np.random.default_rng(3)
    n, looks = 20000, 16

    def cn(*shape):
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / math.sqrt(2)

    a = cn(n, looks)
    b = gamma * a + math.sqrt(1 - gamma**2) * cn(n, looks)
    phase = np.angle((a * np.conj(b)).mean(axis=1)).reshape(100, 200)
    true = np.zeros_like(phase)
    coh = np.full(phase.shape, gamma)
    rows = R.phase_noise(phase, true, coh, np.ones(phase.shape, bool), looks, bins=((0, 1),))
    assert rows[0]["crb_rad"] == pytest.approx(math.sqrt((1 - gamma**2) / (2 * 16 * gamma**2)))
    assert 1.0 <= rows[0]["ratio"] < 1.25  # the bound, reached for many looks
