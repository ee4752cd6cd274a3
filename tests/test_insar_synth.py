"""A small, exactly band-limited synthetic InSAR pair for the embedded backend's known-answer tests.

Independent of the stack simulator: it builds, with ``isslide.geometry``, a hilly DEM, a radar grid,
a reference SLC (band-limited complex speckle carrying the geometric phase ``-4 pi R / wavelength``)
and a secondary SLC seen from another orbit: the same speckle evaluated exactly (by DFT) at the
ground points the secondary's pixels image, optionally decorrelated (coherence ``gamma``), moved by
a known line-of-sight deformation and misregistered by a known constant sub-pixel offset.
The files follow the simulated stack format (int16 I/Q GeoTIFF + ``isslide-slc/1`` JSON + DEM).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

from isslide.geometry import Orbit, SarGeometry, output_grid
from isslide.insar import geocoding
from isslide.insar.products import open_radar

LON0, LAT0 = -71.28, 44.27
BOUNDS = (-71.292, 44.262, -71.268, 44.278)  # west, south, east, north
DEM_SPACING = 2.0e-4


def make_dem(bounds=BOUNDS, margin=0.01, relief=300.0, spacing=DEM_SPACING):
    west, south, east, north = bounds
    transform = Affine(spacing, 0, west - margin, 0, -spacing, north + margin)
    width = int(math.ceil((east - west + 2 * margin) / spacing))
    height = int(math.ceil((north - south + 2 * margin) / spacing))
    rows, cols = np.indices((height, width))
    lon = transform.c + transform.a * (cols + 0.5)
    lat = transform.f + transform.e * (rows + 0.5)
    u = (lon - LON0) / 0.01
    v = (lat - LAT0) / 0.01
    dem = 600 + relief * (
        0.5 * np.sin(1.3 * u + 0.4) * np.cos(0.9 * v) + 0.3 * np.exp(-(u**2 + (v - 0.3) ** 2))
    )
    return dem.astype(np.float32), transform


def make_geometry(dem, transform, bounds=BOUNDS, **kw):
    geom = SarGeometry(lon0=LON0, lat0=LAT0, **kw)
    west, south, east, north = bounds
    lon, lat = np.meshgrid(np.linspace(west, east, 40), np.linspace(south, north, 40))
    d = geocoding.Dem(dem.astype(np.float64), transform)
    h = d.height(lon, lat)
    geom = geom.fit_grid(lon, lat, h, margin=6)
    dd = geom.to_dict()
    dd["extra"] = {"bounds": list(bounds)}
    return SarGeometry.from_dict(dd)


def bandlimited_spectrum(shape, rng, bandwidth=0.8):
    z = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    f = np.fft.fft2(z)
    fy = np.abs(np.fft.fftfreq(shape[0]))[:, None]
    fx = np.abs(np.fft.fftfreq(shape[1]))[None, :]
    f[(fy > bandwidth / 2) | (fx > bandwidth / 2)] = 0
    return f / np.sqrt(bandwidth**2)


def evaluate(spec, rows, cols, oversample=32):
    """Band-limited field of spectrum ``spec`` at row positions (L,) x column positions (L, S).

    Rows are evaluated exactly (DFT); along range the field is FFT-oversampled ``oversample``
    times and interpolated linearly (relative error ~1e-3 for the 0.8 bandwidth used here).
    """
    n, m = spec.shape
    ky = np.fft.fftfreq(n) * n
    g = np.exp(2j * np.pi * np.outer(rows, ky) / n) @ spec / n  # (L, m), range spectrum
    big = m * oversample
    padded = np.zeros((g.shape[0], big), complex)
    half = m // 2
    padded[:, :half] = g[:, :half]
    padded[:, big - (m - half) :] = g[:, half:]
    fine = np.fft.ifft(padded, axis=1) * oversample  # (L, big): field at x = k / oversample
    pos = np.mod(np.asarray(cols) * oversample, big)
    i0 = np.floor(pos).astype(int)
    t = pos - i0
    i1 = (i0 + 1) % big
    r = np.arange(g.shape[0])[:, None]
    return fine[r, i0] * (1 - t) + fine[r, i1] * t


def make_pair(
    seed=0,
    shift=(0.3, -0.4),
    gamma=1.0,
    deformation=None,
    sec_orbit=None,
    ref_orbit=None,
    dem=None,
    transform=None,
    relief=300.0,
):
    """Reference / secondary complex SLCs and their truth.

    ``shift`` = (lines, samples): the secondary's pixel (l, m) holds what the geometry predicts at
    (l + shift[0], m + shift[1]); a co-registration must therefore sample it at geometry - shift.
    ``deformation(lon, lat) -> LOS range increase (m)`` of the secondary date.
    """
    rng = np.random.default_rng(seed)
    if dem is None:
        dem, transform = make_dem(relief=relief)
    geom = make_geometry(dem, transform)
    ref_orbit = ref_orbit or Orbit()
    sec_orbit = sec_orbit or Orbit(cross=90.0, vertical=40.0, cross_rate=2e-4)
    d = geocoding.Dem(dem.astype(np.float64), transform)
    L, S = geom.lines, geom.samples
    lines, samples = np.arange(L, dtype=float), np.arange(S, dtype=float)
    spec = bandlimited_spectrum((L, S), rng)
    common_ref = evaluate(spec, lines, np.broadcast_to(samples, (L, S)))
    lam = geom.wavelength
    # phases follow the scatterers (as in a focused SLC): the reference is the baseband speckle,
    # the secondary the same speckle warped to its own grid, times exp(-4j pi (R_sec - R_ref) / lam)
    ref = common_ref
    # the secondary's pixel (l, m) sees ground point Q at secondary range near + (m + dm) rs
    sl, ss = lines + shift[0], samples + shift[1]
    s, x, h = geocoding.radar_to_ground(geom, sec_orbit, d, sl, ss)
    m_ref = (
        geocoding.slant_range_from(geom, ref_orbit, s, x, h) - geom.near_range
    ) / geom.range_spacing
    common_sec = evaluate(spec, sl, m_ref)
    if gamma < 1.0:
        noise = evaluate(bandlimited_spectrum((L, S), rng), sl, m_ref)
        common_sec = gamma * common_sec + math.sqrt(1 - gamma**2) * noise
    r_sec = geocoding.slant_range_from(geom, sec_orbit, s, x, h)
    r_ref = geocoding.slant_range_from(geom, ref_orbit, s, x, h)
    phase = -4 * np.pi * (r_sec - r_ref) / lam
    lon, lat = geocoding.along_cross_to_lonlat(geom, s[:, None], x)
    if deformation is not None:
        phase = phase - 4 * np.pi * deformation(lon, lat) / lam
    sec = common_sec * np.exp(1j * phase)
    return {
        "geometry": geom,
        "dem": dem,
        "transform": transform,
        "ref": ref.astype(np.complex64),
        "sec": sec.astype(np.complex64),
        "ref_orbit": ref_orbit,
        "sec_orbit": sec_orbit,
        "shift": shift,
    }


def write_dem(path, dem, transform):
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=dem.shape[0],
        width=dem.shape[1],
        count=1,
        dtype="float32",
        crs="EPSG:4326",
        transform=transform,
        nodata=-9999,
    ) as ds:
        ds.write(dem, 1)


def write_slc(
    folder, date, z, geom, precise, annotated=None, lut_gain=(400.0, 500.0), scale=3000.0
):
    """int16 I/Q GeoTIFF + isslide-slc/1 JSON with a linear calibration LUT (A from 400 to 500)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lut_lines = [0, geom.lines // 2, geom.lines - 1]
    lut_samples = [0, geom.samples // 3, geom.samples - 1]
    a0, a1 = lut_gain
    lut = [
        [a0 + (a1 - a0) * (j / (geom.samples - 1)) + 10 * i for j in lut_samples] for i in range(3)
    ]
    from isslide.insar.calibration import lut_gain as gain_fn

    gain = gain_fn(lut_lines, lut_samples, lut, np.arange(geom.lines), np.arange(geom.samples))
    dn = z / (np.abs(z).std() + 1e-12) * scale / 4 * gain / 450.0
    iq = np.stack([np.round(dn.real), np.round(dn.imag)]).clip(-32768, 32767).astype(np.int16)
    with open_radar(
        folder / f"{date}.tif",
        "w",
        driver="GTiff",
        height=geom.lines,
        width=geom.samples,
        count=2,
        dtype="int16",
    ) as ds:
        ds.write(iq)
    meta = {
        "format": "isslide-slc/1",
        "date": f"{date[:4]}-{date[4:6]}-{date[6:]}",
        "mission": "S1A",
        "polarisation": "VV",
        "geometry": geom.to_dict(),
        "orbit": {
            "annotated": (annotated or Orbit(cross=3.0)).to_dict(),
            "precise": precise.to_dict(),
        },
        "calibration": {"lines": lut_lines, "samples": lut_samples, "sigma0": lut},
        "truth": {},
    }
    (folder / f"{date}.json").write_text(json.dumps(meta))
    return gain


def write_stack(root, pair):
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    write_dem(root / "dem.tif", pair["dem"], pair["transform"])
    write_slc(root / "slc", "20180702", pair["ref"], pair["geometry"], pair["ref_orbit"])
    write_slc(
        root / "slc",
        "20180708",
        pair["sec"],
        pair["geometry"],
        pair["sec_orbit"],
        annotated=Orbit(cross=-2.0),
    )
    return root


def output_grid_for(geom, spacing=1.315e-4):
    return output_grid(*geom.extra["bounds"], spacing)


def test_synthetic_secondary_is_the_reference_seen_from_another_orbit():
    """Sanity of the test fixture itself: at zero baseline, shift and deformation, sec == ref."""
    pair = make_pair(seed=3, shift=(0.0, 0.0), sec_orbit=Orbit(), relief=100.0)
    ref, sec = pair["ref"], pair["sec"]
    err = np.abs(ref[5:-5, 5:-5] - sec[5:-5, 5:-5]).max() / np.abs(ref).max()
    assert err < 1e-3
