"""The simulated Sentinel-1 world: statistics, not shapes (issue 3)."""

from __future__ import annotations

import json
import math

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from scipy import ndimage

from isslide.config import load_config
from isslide.errors import IsslideError
from isslide.geometry import SarGeometry, layover_shadow, output_grid
from isslide.plan import plan_stacks
from isslide.simulate import (
    OutputGrid,
    Scene,
    build_scene,
    simulate_acquisition,
    simulate_annotations,
    simulate_scene,
    simulate_slc,
)
from isslide.simulate.acquisition import calibration_lut
from isslide.simulate.areas import single_lobes
from isslide.simulate.terrain import M_PER_DEG
from isslide.workflow import simulation_params

TINY = "tests/configs/tiny.yaml"
DEM = "resources/dem/srtm3_N44W072_white_mountains.tif"

# A quiet world: flat, one land cover, no atmosphere, baselines or misregistration.
QUIET = {
    "dem": None,
    "procedural": {"relief_m": 0.0},
    "size_km": [1.5, 1.5],
    "land_cover": {"uniform": "rock"},
    "areas": {"count": 0},
    "decoys": {"count": 0, "ramps_per_date": 0.0, "steps_per_date": 0.0},
    "aps": {"turbulence_rad": 0.0, "stratified_rad_per_km": 0.0, "blobs_per_date": 0.0},
    "texture": {"amplitude": 0.0, "stream_area_km2": 0.0, "ridge_area_km2": 0.0},
    "footprint": {"nodata_fraction": [0.0, 0.0]},
    "orbit": {"baseline_max_m": 0.0, "baseline_drift": 0.0},
    "radar": {"misregistration_px": 0.0},
}


def params(repo, simulation=None, **top):
    overrides = {"simulation": simulation or {}, **top}
    cfg = load_config(repo / TINY, overrides=overrides)
    return simulation_params(cfg, "tiny")


def quiet(repo, **sim):
    merged = json.loads(json.dumps(QUIET))
    for k, v in sim.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k].update(v)
        else:
            merged[k] = v
    return params(repo, merged)


def sigma0(p, cover="rock"):
    s = p["simulation"]
    gamma0 = 10 ** (s["surfaces"][cover]["gamma0_db"] / 10)
    return gamma0 * math.cos(math.radians(s["radar"]["incidence_deg"]))


def expected_coherence(p, cover, dt):
    s = p["simulation"]["surfaces"][cover]
    snr = sigma0(p, cover) / 10 ** (p["simulation"]["radar"]["nesz_db"] / 10)
    decay = math.exp(-dt / s["tau_days"]) if s["tau_days"] > 0 else 0.0
    return (s["ginf"] + (s["g0"] - s["ginf"]) * decay) * snr / (1 + snr)


def core(a):
    return a[16:-16, 40:-40]


def coherence(a, b):
    a, b = core(a), core(b)
    return abs(np.vdot(b, a)) / math.sqrt(np.vdot(a, a).real * np.vdot(b, b).real)


# -- speckle and calibration -------------------------------------------------------------------
def test_speckle_intensity_is_exponential(repo):
    p = quiet(repo)
    scene = build_scene(p, "tiny")
    slc, _ = simulate_slc(scene, p["dates"][0])
    intensity = core(np.abs(slc).astype(np.float64) ** 2)
    mean = intensity.mean()
    expected = sigma0(p) + 10 ** (p["simulation"]["radar"]["nesz_db"] / 10)
    assert mean == pytest.approx(expected, rel=0.04)
    assert intensity.std() / mean == pytest.approx(1.0, abs=0.04)  # exponential: std = mean
    for k in (1.0, 3.0):
        assert (intensity > k * mean).mean() == pytest.approx(math.exp(-k), rel=0.06)
    # circular: I and Q independent, zero mean, equal power
    assert abs(np.mean(core(slc.real) * core(slc.imag))) < 0.02 * mean
    assert np.var(core(slc.real)) == pytest.approx(np.var(core(slc.imag)), rel=0.05)


def test_digital_numbers_calibrate_back_with_the_lut(repo, tmp_path):
    p = quiet(repo)
    scene = build_scene(p, "tiny")
    date = p["dates"][1]
    scene.save(tmp_path / "scene.npz")
    out = {"slc": tmp_path / "slc.tif", "metadata": tmp_path / "slc.json"}
    simulate_acquisition(
        p, {"sim_stack": "tiny", "date": date}, {"scene": tmp_path / "scene.npz"}, out
    )
    meta = json.loads(out["metadata"].read_text())
    with rasterio.open(out["slc"]) as src:
        assert src.count == 2 and src.dtypes == ("int16", "int16") and src.crs is None
        assert (src.height, src.width) == (meta["geometry"]["lines"], meta["geometry"]["samples"])
        dn = src.read().astype(np.float64)
    cal = meta["calibration"]
    lines, samples, lut = np.array(cal["lines"]), np.array(cal["samples"]), np.array(cal["sigma0"])
    # bilinear interpolation of the sparse LUT
    rows = np.arange(dn.shape[1])
    cols = np.arange(dn.shape[2])
    along = np.array([np.interp(cols, samples, row) for row in lut])
    a = np.array([np.interp(rows, lines, along[:, c]) for c in range(along.shape[1])]).T
    calibrated = (dn[0] ** 2 + dn[1] ** 2) / a**2
    raw = dn[0] ** 2 + dn[1] ** 2
    expected = sigma0(p) + 10 ** (p["simulation"]["radar"]["nesz_db"] / 10)
    assert core(calibrated).mean() == pytest.approx(expected, rel=0.05)
    # the LUT matters: uncalibrated DN power varies across range by the LUT's factor
    left, right = core(raw)[:, :100].mean(), core(raw)[:, -100:].mean()
    assert right / left > 1.3
    assert meta["format"] == "isslide-slc/1" and meta["polarisation"] == "VV"
    assert set(meta["orbit"]) == {"annotated", "precise"}


# -- temporal decorrelation ------------------------------------------------------------------
@pytest.mark.parametrize("cover", ["rock", "forest", "water"])
def test_coherence_follows_the_temporal_model(repo, cover):
    p = quiet(repo, land_cover={"uniform": cover}, size_km=[1.2, 1.2])
    scene = build_scene(p, "tiny")
    slcs = [simulate_slc(scene, d)[0] for d in p["dates"]]
    measured = [coherence(slcs[0], slcs[k]) for k in (1, 2, 3)]
    expected = [expected_coherence(p, cover, dt) for dt in (6, 12, 18)]
    for m, e in zip(measured, expected, strict=True):
        assert m == pytest.approx(e, abs=0.03)
    if cover != "water":
        assert measured[0] > measured[1] > measured[2]
    # the truth rasters carry the same analytic coherence
    og = OutputGrid(scene, p["insar"]["pixel_spacing_deg"])
    assert np.median(og.coherence(0, 2)) == pytest.approx(expected[1], abs=0.01)


def test_vegetation_and_water_decorrelate_more_than_rock(repo):
    p = params(repo)
    s = p["simulation"]["surfaces"]
    for dt in (6, 12, 18):
        rock = expected_coherence(p, "rock", dt)
        assert expected_coherence(p, "forest", dt) < rock
        assert expected_coherence(p, "snow", dt) < rock
        assert expected_coherence(p, "water", dt) < 0.1
    assert s["forest"]["tau_days"] < s["rock"]["tau_days"]


# -- layover and shadow ----------------------------------------------------------------------
def ridge_dem(path, lon0, lat0, faces):
    """A DEM of north-south ridges; faces = [(east-face slope deg, west-face slope deg), ...]."""
    sp = 5e-5
    tr = Affine(sp, 0, lon0 - 0.03, 0, -sp, lat0 + 0.025)
    rows, cols = np.indices((1000, 1200))
    lon, lat = tr @ (cols + 0.5, rows + 0.5)
    east = (lon - lon0) * M_PER_DEG * math.cos(math.radians(lat0))
    h = np.full(lon.shape, 500.0)
    centres = np.linspace(-700, 700, len(faces))
    for c, (east_face, west_face) in zip(centres, faces, strict=True):
        x = east - c
        top = 200.0
        up_e = top - x * math.tan(math.radians(east_face))  # east of the crest
        up_w = top + x * math.tan(math.radians(west_face))  # west of the crest
        bump = np.where(x >= 0, up_e, up_w)
        h = np.maximum(h, 500.0 + np.clip(bump, 0, None))
    prof = dict(
        driver="GTiff",
        width=1200,
        height=1000,
        count=1,
        dtype="float32",
        crs="EPSG:4326",
        transform=tr,
    )
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(h.astype(np.float32), 1)
    return centres


def test_layover_where_the_slope_facing_the_sensor_exceeds_the_incidence(repo, tmp_path):
    # descending pass: the sensor is east, so east faces face it
    lon0, lat0 = -71.29, 44.27
    faces = [(30.0, 20.0), (50.0, 60.0)]
    centres = ridge_dem(tmp_path / "ridges.tif", lon0, lat0, faces)
    p = quiet(repo, size_km=[2.4, 1.5], land_cover={"uniform": "rock"})
    scene = build_scene(p, "tiny", dem_path=str(tmp_path / "ridges.tif"))
    og = OutputGrid(scene, p["insar"]["pixel_spacing_deg"])
    east = (og.lon - lon0) * M_PER_DEG * math.cos(math.radians(lat0))
    ls = og.layover_shadow
    inc = math.degrees(float(np.median(scene.geometry.incidence(og.lon, og.lat, og.dem))))
    assert 35 < inc < 41

    def share(c, side, value):
        x = east - c
        sel = (x > 15) & (x < 120) if side == "east" else (x < -15) & (x > -90)
        return float((ls[sel] == value).mean())

    # 30 deg facing the sensor < incidence: no layover; 20 deg away: lit
    assert share(centres[0], "east", 1) < 0.05 and share(centres[0], "west", 2) < 0.05
    # 50 deg facing the sensor > incidence: layover; 60 deg away > 90 - incidence: shadow
    assert share(centres[1], "east", 1) > 0.8
    assert share(centres[1], "west", 2) > 0.8
    # the radar mapping agrees: along a layover face the range order is reversed
    g = scene.geometry
    x = np.linspace(centres[1] + 20, centres[1] + 150, 50)
    lon = lon0 + x / (M_PER_DEG * math.cos(math.radians(lat0)))
    h = 700 - (x - centres[1]) * math.tan(math.radians(50))
    _, sample = g.ground_to_radar(lon, np.full_like(lon, lat0), h)
    assert np.all(np.diff(sample) > 0)  # going east (towards the sensor) the range grows
    # the SLC: shadow holds only thermal noise, layover is bright, true coherence 0 in shadow
    slc, _ = simulate_slc(scene, p["dates"][0])
    power = np.abs(slc) ** 2
    centre_lat = np.full(3, lat0)

    def radar_power(xs, hs):
        lon_ = lon0 + np.asarray(xs) / (M_PER_DEG * math.cos(math.radians(lat0)))
        line, sample = g.ground_to_radar(lon_, centre_lat, np.asarray(hs))
        return float(
            np.mean(
                [
                    power[int(li) - 3 : int(li) + 3, int(s) - 3 : int(s) + 3].mean()
                    for li, s in zip(line, sample, strict=True)
                ]
            )
        )

    nesz = 10 ** (p["simulation"]["radar"]["nesz_db"] / 10)
    shadow = radar_power(
        centres[1] - np.array([40, 60, 80]), [700 - 40 * math.tan(math.radians(60))] * 3
    )
    flat = float(np.median(power))
    assert shadow < 3 * nesz < flat
    assert np.all(og.coherence(0, 1)[ls == 2] == 0)


def test_layover_shadow_mask_matches_local_incidence_geometry():
    g = SarGeometry(lon0=10.0, lat0=45.0, heading_deg=350.0, incidence_deg=38.0)  # ascending
    sp = 1e-4
    tr = Affine(sp, 0, 9.99, 0, -sp, 45.01)
    rows, cols = np.indices((60, 60))
    lon, lat = tr @ (cols + 0.5, rows + 0.5)
    e, _ = g.to_enu(lon, lat)
    # ascending looks east: the sensor is west; a west-facing slope rises eastwards
    for deg, expected in ((30, 0), (45, 1), (-45, 0), (-60, 2)):
        dem = 1000 + e * math.tan(math.radians(deg))
        m = layover_shadow(dem, tr, g)[5:-5, 5:-5]
        assert np.all(m == expected), (deg, np.unique(m))


# -- deformation, fringes, misregistration, orbit ----------------------------------------------
def inject_area(scene, velocity_mm, size_m=800.0):
    """Replace the scene's areas by one circular area at the scene centre, always active."""
    lon0, lat0 = scene.geometry.lon0, scene.geometry.lat0
    scene.areas = {
        "id": np.array([7], np.int32),
        "class": np.array([0], np.int8),
        "lon": np.array([lon0]),
        "lat": np.array([lat0]),
        "orient": np.array([0.0]),
        "a": np.array([size_m / 2]),
        "b": np.array([size_m / 2]),
        "harm": np.zeros((1, 4, 2)),
        "velocity": np.array([velocity_mm * 1e-3]),
        "zone": np.array(["north"]),
        "guaranteed": np.array([True]),
        "disturbed": np.array([False]),
        "reach": np.array([size_m / 2]),
    }
    scene.lobes = single_lobes(scene.areas)
    return scene


def test_fringe_count_scales_with_velocity_and_delay(repo):
    p = quiet(repo, size_km=[1.5, 1.5])
    scene = build_scene(p, "tiny")
    wavelength = scene.geometry.wavelength
    og = OutputGrid(scene, p["insar"]["pixel_spacing_deg"])
    for v_mm in (5.0, 20.0):
        inject_area(scene, v_mm)
        og.__dict__.pop("area_profiles", None)
        for j, delay in ((1, 6), (2, 12), (3, 18)):
            phase = og.deformation(0, j)
            fringes = (phase.max() - phase.min()) / (2 * math.pi)
            expected = (v_mm * 1e-3 * delay / 6) / (wavelength / 2)
            assert fringes == pytest.approx(expected, rel=0.02)
    # 20 mm / 6 d shows more than one fringe (2 pi) at 12 and 18 days
    assert expected > 2


def test_slc_interferogram_carries_the_true_deformation(repo):
    p = quiet(repo, size_km=[1.5, 1.5])
    scene = inject_area(build_scene(p, "tiny"), 12.0)
    s0, _ = simulate_slc(scene, p["dates"][0])
    s3, _ = simulate_slc(scene, p["dates"][3])
    ifg = s0 * np.conj(s3)  # reference * conj(secondary)
    looks = ndimage.uniform_filter(ifg.real, (4, 16)) + 1j * ndimage.uniform_filter(
        ifg.imag, (4, 16)
    )
    g = scene.geometry
    line, sample = g.ground_to_radar(g.lon0, g.lat0, float(np.median(scene.dem)))
    li = int(round(float(line)))
    si = int(round(float(sample)))
    profile = np.unwrap(np.angle(looks[li, si - 160 : si + 1]))  # from outside (west) to centre
    measured = profile[-1] - profile[:20].mean()
    og = OutputGrid(scene, p["insar"]["pixel_spacing_deg"])
    truth = og.deformation(0, 3).max()
    assert truth == pytest.approx(4 * math.pi / g.wavelength * 0.012 * 3, rel=2e-3)
    assert measured == pytest.approx(truth, abs=0.6)


def test_misregistration_is_real_and_recorded_only_as_truth(repo):
    from skimage.registration import phase_cross_correlation

    p = quiet(repo, radar={"misregistration_px": 0.3}, size_km=[1.2, 1.2])
    scene = build_scene(p, "tiny")
    s0, m0 = simulate_slc(scene, p["dates"][0])
    s1, m1 = simulate_slc(scene, p["dates"][1])
    shift, _, _ = phase_cross_correlation(np.abs(s1), np.abs(s0), upsample_factor=20)
    t0, t1 = m0["truth"]["misregistration_px"], m1["truth"]["misregistration_px"]
    assert abs(t0["azimuth"]) <= 0.3 and abs(t0["range"]) <= 0.3
    assert shift[0] == pytest.approx(t1["azimuth"] - t0["azimuth"], abs=0.1)
    assert shift[1] == pytest.approx(t1["range"] - t0["range"], abs=0.1)
    visible = {k: v for k, v in m1.items() if k != "truth"}
    assert "misregistration" not in json.dumps(visible)


def test_annotated_orbit_leaves_a_ramp_that_the_precise_orbit_removes(repo):
    p = params(repo)
    scene = build_scene(p, "tiny", dem_path=str(repo / DEM))
    g = scene.geometry
    w, s, e, n = g.extra["bounds"]
    lon, lat = np.meshgrid(np.linspace(w, e, 30), np.linspace(s, n, 30))
    h = np.full(lon.shape, 1000.0)
    ramps = []
    for i in range(len(scene.dates)):
        dr = g.slant_range(lon, lat, h, scene.annotated_orbit(i)) - g.slant_range(
            lon, lat, h, scene.precise_orbit(i)
        )
        phase = 4 * math.pi / g.wavelength * dr
        ramps.append(np.ptp(phase - phase.mean()))
    assert 0.2 < float(np.median(ramps)) < 20  # a visible ramp, not a mess of fringes
    bperp = [
        scene.orbits[i, 0] * math.cos(math.radians(g.incidence_deg))
        + scene.orbits[i, 1] * math.sin(math.radians(g.incidence_deg))
        for i in range(len(scene.dates))
    ]
    assert max(abs(b) for b in bperp) <= p["simulation"]["orbit"]["baseline_max_m"] + 1e-9


# -- the whole stack through the library entries -------------------------------------------------
@pytest.fixture(scope="module")
def tiny_stack(tmp_path_factory, repo):
    """The tiny config's stack written through the three Snakemake entries."""
    out = tmp_path_factory.mktemp("tiny")
    cfg = load_config(repo / TINY)
    p = simulation_params(cfg, "tiny")
    scene_out = {
        "dem": out / "dem.tif",
        "geometry": out / "geometry.json",
        "scene": out / "scene.npz",
        "areas": out / "truth/areas.gpkg",
        "layover_shadow": out / "truth/layover_shadow.tif",
    }
    simulate_scene(p, {"sim_stack": "tiny"}, {"source_dem": str(repo / DEM)}, scene_out)
    date = p["dates"][0]
    simulate_acquisition(
        p,
        {"sim_stack": "tiny", "date": date},
        {"scene": scene_out["scene"]},
        {"slc": out / f"slc/{date}.tif", "metadata": out / f"slc/{date}.json"},
    )
    pairs = plan_stacks(cfg)["tiny"].pairs
    for pair in pairs:
        w = dict(pair.wildcards, sim_stack="tiny")
        stem = f"{w['delay']}d/{w['reference']}_{w['secondary']}"
        simulate_annotations(
            p,
            w,
            {"scene": scene_out["scene"]},
            {
                "annotation": [
                    str(out / f"annotations/{stem}{e}")
                    for e in (".shp", ".shx", ".dbf", ".prj", ".cpg")
                ],
                "deformation": out / f"truth/{stem}_deformation.tif",
                "valid": out / f"truth/{stem}_valid.tif",
                "decoys": out / f"truth/{stem}_decoys.tif",
                "areas": out / f"truth/{stem}_areas.gpkg",
            },
        )
    return out, p, cfg, pairs


def test_stack_format(tiny_stack):
    out, p, _, pairs = tiny_stack
    geometry = json.loads((out / "geometry.json").read_text())
    g = SarGeometry.from_dict(geometry)
    w, s, e, n = g.extra["bounds"]
    meta = json.loads((out / f"slc/{p['dates'][0]}.json").read_text())
    assert meta["geometry"] == geometry
    for key in (
        "format",
        "date",
        "mission",
        "polarisation",
        "geometry",
        "orbit",
        "baseline",
        "calibration",
        "truth",
    ):
        assert key in meta
    with rasterio.open(out / "dem.tif") as src:
        assert src.crs.to_epsg() == 4326 and src.nodata == -9999
        b = src.bounds
        assert b.left < w and b.right > e and b.bottom < s and b.top > n
    tr, width, height = output_grid(w, s, e, n, p["insar"]["pixel_spacing_deg"])
    pair = pairs[0].wildcards
    stem = f"{pair['delay']}d/{pair['reference']}_{pair['secondary']}"
    for name in ("deformation", "valid", "decoys"):
        with rasterio.open(out / f"truth/{stem}_{name}.tif") as src:
            assert src.crs.to_epsg() == 4326
            assert (src.width, src.height) == (width, height)
            assert src.transform.almost_equals(tr)
            if name == "decoys":
                kinds = json.loads(src.tags()["DECOY_KINDS"])
                assert src.dtypes[0] == "uint8" and kinds["1"] == "low_coherence_bubble"
                assert set(np.unique(src.read(1))) <= {0, *map(int, kinds)}
    with rasterio.open(out / "truth/layover_shadow.tif") as src:
        assert set(np.unique(src.read(1))) <= {0, 1, 2}
    areas = gpd.read_file(out / "truth/areas.gpkg", layer="areas")
    decoys = gpd.read_file(out / "truth/areas.gpkg", layer="decoys")
    assert 5 <= len(areas) <= 8 and len(decoys) >= 2
    lengths = areas["length_m"]
    assert lengths.min() >= 50 and lengths.max() <= 1000


def test_annotations_attributes_and_repetitions(tiny_stack):
    out, p, cfg, pairs = tiny_stack
    areas = gpd.read_file(out / "truth/areas.gpkg", layer="areas")
    seen = {}
    zones_with_motion = set()
    for pair in pairs:
        w = pair.wildcards
        stem = f"{w['delay']}d/{w['reference']}_{w['secondary']}"
        ann = gpd.read_file(out / f"annotations/{stem}.shp")
        assert ann.crs.to_epsg() == 4326
        # DBF field names hold 10 characters: 'repetitions' reads back as 'repetition'
        assert set(ann.columns) >= {"id", "class", "confidence", "repetition", "geometry"}
        assert set(ann["class"]) <= {"Landslide", "Rock Glacier", "Unknown"}
        assert ann["confidence"].between(1, 3).all()
        assert set(ann["id"]) <= set(areas["id"])
        truth = gpd.read_file(out / f"truth/{stem}_areas.gpkg")
        vis = truth[truth["visible"] == 1]
        assert set(ann["id"]) == set(vis["id"])  # no annotator noise in the tiny config
        assert (vis["phase_max_rad"] >= p["simulation"]["annotations"]["visibility_rad"]).all()
        with rasterio.open(out / f"truth/{stem}_deformation.tif") as src:
            phase = src.read(1)
        assert np.abs(phase).max() == pytest.approx(truth["phase_max_rad"].max(), rel=0.05)
        for _, row in ann.iterrows():
            seen.setdefault((w["delay"], row["id"]), []).append(int(row["repetition"]))
        zones_with_motion |= set(areas[areas["id"].isin(ann["id"])]["zone"])
    for (_, _), reps in seen.items():
        assert len(set(reps)) == 1 and reps[0] == len(
            reps
        )  # repetitions = annotated pairs of the delay
    assert {"north", "south"} <= zones_with_motion


def test_deactivated_areas_make_no_motion_intervals(repo):
    p = params(
        repo,
        {"areas": {"count": 15, "per_zone_min": 0}, "size_km": [5.0, 5.0]},
        dates={"start": "2018-07-02", "end": "2018-08-31"},
    )
    scene = build_scene(p, "tiny", dem_path=str(repo / DEM))
    # (areas, intervals) days of activity: dormant, partly and fully active intervals all occur
    days = np.array([scene.active_days(i, i + 1) for i in range(len(scene.dates) - 1)]).T
    assert (days == 6).any() and (days == 0).any()
    assert (days.sum(axis=1) > 0).sum() > 1
    og = OutputGrid(scene, p["insar"]["pixel_spacing_deg"])
    k, i = np.argwhere(days == 0)[0]
    win, _, rho = og.area_profiles[k]
    assert np.all(og.deformation(i, i + 1)[win][rho < 1] == 0)
    stats = og.area_stats(i, i + 1)
    assert stats.loc[k, "phase_max_rad"] == 0 and stats.loc[k, "visible"] == 0


def test_annotator_noise_misses_low_confidence_and_jitters(repo):
    base = {"areas": {"count": 15, "per_zone_min": 0}, "size_km": [5.0, 5.0]}
    clean = params(repo, base)
    noisy = params(repo, {**base, "annotations": {"miss_probability": 1.0, "jitter_m": 20.0}})
    from isslide.simulate.truth import annotate, annotation_frame

    sc_clean = build_scene(clean, "tiny", dem_path=str(repo / DEM))
    sc_noisy = build_scene(noisy, "tiny", dem_path=str(repo / DEM))
    og_c = OutputGrid(sc_clean, clean["insar"]["pixel_spacing_deg"])
    og_n = OutputGrid(sc_noisy, noisy["insar"]["pixel_spacing_deg"])
    a_c = annotate(sc_clean, og_c, 0, 2)
    a_n = annotate(sc_noisy, og_n, 0, 2)
    assert (a_n["confidence"] >= 2).all()
    assert set(a_n["id"]) == set(a_c[a_c["confidence"] >= 2]["id"])
    f_c = annotation_frame(sc_clean, og_c, 0, 2).set_index("id")
    f_n = annotation_frame(sc_noisy, og_n, 0, 2).set_index("id")
    common = f_n.index.intersection(f_c.index)
    assert len(common)
    moved = [
        f_n.geometry[i].symmetric_difference(f_c.geometry[i]).area / f_c.geometry[i].area
        for i in common
    ]
    assert min(moved) > 0.01


def test_same_seed_same_world_other_seed_other_world(repo):
    p = quiet(
        repo,
        size_km=[1.0, 1.0],
        land_cover={"uniform": None},
        procedural={"relief_m": 800.0},
        areas={"count": 3, "per_zone_min": 0},
    )
    a, b = build_scene(p, "tiny"), build_scene(p, "tiny")
    np.testing.assert_array_equal(a.dem, b.dem)
    np.testing.assert_array_equal(a.cover, b.cover)
    np.testing.assert_array_equal(a.areas["lon"], b.areas["lon"])
    s_a, m_a = simulate_slc(a, p["dates"][1])
    s_b, m_b = simulate_slc(b, p["dates"][1])
    np.testing.assert_array_equal(s_a, s_b)
    assert m_a == m_b
    p2 = dict(p, seed=p["seed"] + 1)
    c = build_scene(p2, "tiny")
    assert not np.array_equal(a.dem, c.dem)


def test_scene_roundtrip(tmp_path, repo):
    p = quiet(repo, size_km=[1.0, 1.0])
    scene = inject_area(build_scene(p, "tiny"), 10.0)
    scene.save(tmp_path / "scene.npz")
    back = Scene.load(tmp_path / "scene.npz", dates=p["dates"])
    assert back.geometry == scene.geometry and back.dates == scene.dates
    assert (back.start, back.revisit_days) == (scene.start, scene.revisit_days)
    np.testing.assert_array_equal(back.active_days(0, 3), scene.active_days(0, 3))
    np.testing.assert_array_equal(back.orbits, scene.orbits)
    lines, samples, values, _, _ = calibration_lut(back, 0)
    assert values.shape == (len(lines), len(samples))


# -- extending a stack by date -------------------------------------------------------------------
def write_stack(p_scene, p_acq, p_ann, out, pairs):
    scene_out = {
        "dem": out / "dem.tif",
        "geometry": out / "geometry.json",
        "scene": out / "scene.npz",
        "areas": out / "truth/areas.gpkg",
        "layover_shadow": out / "truth/layover_shadow.tif",
    }
    simulate_scene(p_scene, {"sim_stack": "tiny"}, {}, scene_out)
    for date in p_ann["dates"]:
        simulate_acquisition(
            p_acq,
            {"sim_stack": "tiny", "date": date},
            {"scene": scene_out["scene"]},
            {"slc": out / f"slc/{date}.tif", "metadata": out / f"slc/{date}.json"},
        )
    for pair in pairs:
        w = dict(pair.wildcards, sim_stack="tiny")
        stem = f"{w['delay']}d/{w['reference']}_{w['secondary']}"
        simulate_annotations(
            p_ann,
            w,
            {"scene": scene_out["scene"]},
            {
                "annotation": [str(out / f"ann/{stem}{e}") for e in (".shp", ".shx", ".dbf")],
                "deformation": out / f"truth/{stem}_deformation.tif",
                "valid": out / f"truth/{stem}_valid.tif",
            },
        )


def test_adding_a_later_date_leaves_every_existing_output_bit_identical(repo, tmp_path):
    sim = {
        "dem": None,
        "size_km": [1.4, 1.4],
        "areas": {"count": 4, "per_zone_min": 0},
        "decoys": {"count": 2},
        "aps": {"blobs_per_date": 2.0},
        "radar": {"misregistration_px": 0.2},
    }
    runs = {}
    for end in ("2018-07-20", "2018-07-26"):  # D and D + one revisit
        cfg = load_config(repo / TINY, overrides={"simulation": sim, "dates": {"end": end}})
        cfg["stacks"]["tiny"]["zones"] = {}
        pairs = plan_stacks(cfg)["tiny"].pairs
        ps = {rule: simulation_params(cfg, "tiny", rule) for rule in ("scene", "acquisition", None)}
        write_stack(ps["scene"], ps["acquisition"], ps[None], tmp_path / end, pairs)
        runs[end] = (ps, pairs)
    old, new = (tmp_path / e for e in runs)
    (p_old, pairs_old), (p_new, pairs_new) = runs.values()
    # the rules' params of the scene and of an acquisition do not see dates.end ...
    assert p_old["scene"] == p_new["scene"] and p_old["acquisition"] == p_new["acquisition"]
    assert "dates" not in p_old["scene"] and "delays" not in p_old["scene"]
    assert len(p_new[None]["dates"]) == len(p_old[None]["dates"]) + 1
    # ... and their outputs are bit-identical (npz/gpkg hold write times: compare contents)
    for name in ("dem.tif", "geometry.json", "truth/layover_shadow.tif"):
        assert (old / name).read_bytes() == (new / name).read_bytes(), name
    with np.load(old / "scene.npz") as a, np.load(new / "scene.npz") as b:
        assert a.files == b.files
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k], strict=True)
    for layer in ("areas", "decoys"):
        a = gpd.read_file(old / "truth/areas.gpkg", layer=layer)
        b = gpd.read_file(new / "truth/areas.gpkg", layer=layer)
        assert a.to_wkb().equals(b.to_wkb())
    assert len(gpd.read_file(old / "truth/areas.gpkg", layer="areas")) == 4
    for date in p_old[None]["dates"]:
        for ext in (".tif", ".json"):
            f = f"slc/{date}{ext}"
            assert (old / f).read_bytes() == (new / f).read_bytes(), f
    # the truth rasters of the common pairs do not move either (activity on a time axis)
    for pair in pairs_old:
        w = pair.wildcards
        for kind in ("deformation", "valid"):
            f = f"truth/{w['delay']}d/{w['reference']}_{w['secondary']}_{kind}.tif"
            assert (old / f).read_bytes() == (new / f).read_bytes(), f
    assert len(pairs_new) == len(pairs_old) + 2  # one new 6-day and one new 12-day pair
    assert (new / "slc/20180726.tif").exists()
    # the new date is a genuine new draw (not a copy): its own orbit and speckle
    m_old = json.loads((new / "slc/20180720.json").read_text())
    m_new = json.loads((new / "slc/20180726.json").read_text())
    assert m_new["truth"]["orbit_error"] != m_old["truth"]["orbit_error"]


def test_acquisition_off_the_revisit_grid_or_another_time_axis_fails(repo, tmp_path):
    p = quiet(repo, size_km=[1.0, 1.0])
    scene = build_scene(p, "tiny")
    scene.save(tmp_path / "scene.npz")
    out = {"slc": tmp_path / "s.tif", "metadata": tmp_path / "s.json"}
    with pytest.raises(IsslideError, match=r"date 2018-07-05: not on the revisit grid"):
        simulate_acquisition(
            p, {"sim_stack": "tiny", "date": "20180705"}, {"scene": tmp_path / "scene.npz"}, out
        )
    with pytest.raises(IsslideError, match=r"dates.start 2018-06-26: .*rerun simulate_scene"):
        simulate_acquisition(
            {"start": "2018-06-26", "revisit_days": 6},
            {"sim_stack": "tiny", "date": "20180708"},
            {"scene": tmp_path / "scene.npz"},
            out,
        )
    assert not out["slc"].exists()


# -- bad inputs ------------------------------------------------------------------------------
def test_missing_dem_names_file_and_fix(repo, tmp_path):
    p = params(repo)
    with pytest.raises(IsslideError, match=r"nothere\.tif: DEM file not found.*simulation\.dem"):
        build_scene(p, "tiny", dem_path=str(tmp_path / "nothere.tif"))


def test_unreadable_dem(repo, tmp_path):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"not a raster at all")
    with pytest.raises(IsslideError, match=r"bad\.tif: cannot read the DEM"):
        build_scene(params(repo), "tiny", dem_path=str(bad))


def test_dem_not_covering_the_scene(repo):
    p = params(repo, {"center": [-71.02, 44.27]})
    p["stack"] = {"zones": {}}
    with pytest.raises(
        IsslideError, match=r"white_mountains\.tif: the DEM covers .*move simulation\.center"
    ):
        build_scene(p, "tiny", dem_path=str(repo / DEM))


def test_zone_outside_scene(repo):
    p = params(repo)
    p["stack"] = {"zones": {"far": {"bbox": [6.0, 45.0, 6.1, 45.1], "role": "train"}}}
    with pytest.raises(
        IsslideError, match=r"stacks\.tiny\.zones\.far\.bbox .* outside the simulated scene"
    ):
        build_scene(p, "tiny", dem_path=str(repo / DEM))


def test_shipped_dem_is_small_real_and_documented(repo):
    path = repo / DEM
    assert path.stat().st_size < 2_000_000
    assert "Apache License" in (repo / "resources/dem/PROVENANCE.md").read_text()
    with rasterio.open(path) as src:
        h = src.read(1)
        assert src.crs.to_epsg() == 4326
    assert h.max() - h.min() > 1500  # mountainous


# -- the rules ----------------------------------------------------------------------------------
@pytest.mark.workflow
def test_rules_make_an_slc_and_an_annotation(repo, tmp_path):
    import shutil
    import subprocess
    import sys

    work = tmp_path / "repo"
    work.mkdir()
    for name in (
        "Snakefile",
        "workflow",
        "src",
        "config",
        "tests/configs",
        "resources/dem",
        "envs",
    ):
        src = repo / name
        if src.is_dir():
            shutil.copytree(
                src, work / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
            )
        elif src.exists():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, work / name)
    targets = [
        "resources/synthetic/tiny/slc/20180702.tif",
        "resources/synthetic/annotations/tiny/12d/20180702_20180714.shp",
    ]
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        *targets,
        "--cores",
        "2",
        "--configfile",
        "tests/configs/tiny.yaml",
    ]
    res = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    meta = json.loads((work / "resources/synthetic/tiny/slc/20180702.json").read_text())
    assert meta["date"] == "2018-07-02"
    ann = gpd.read_file(work / targets[1])
    assert len(ann) >= 1
    # a DEM that is missing fails the job with one line naming it and the fix
    import yaml

    cfg = yaml.safe_load((work / "tests/configs/tiny.yaml").read_text())
    cfg["simulation"]["dem"] = "resources/dem/missing.tif"
    (work / "bad.yaml").write_text(yaml.safe_dump(cfg))
    shutil.rmtree(work / "resources/synthetic")
    res = subprocess.run(
        [*cmd[:-1], "bad.yaml"], cwd=work, capture_output=True, text=True, timeout=600
    )
    assert res.returncode != 0
    assert "isslide: resources/dem/missing.tif: DEM file not found" in res.stderr
    assert not (work / "resources/synthetic/tiny/dem.tif").exists()


def test_only_resolvable_fringes_are_annotated(repo):
    p = quiet(repo, size_km=[1.5, 1.5])
    scene = build_scene(p, "tiny")
    spacing = p["insar"]["pixel_spacing_deg"]
    seen = {}
    for v_mm, size in ((8.0, 800.0), (150.0, 150.0)):
        inject_area(scene, v_mm, size_m=size)
        stats = OutputGrid(scene, spacing).area_stats(0, 1).iloc[0]
        seen[v_mm] = stats
    slow, fast = seen[8.0], seen[150.0]
    assert slow["visible"] == 1 and slow["fringe_rate_rad"] < 3.0
    # much more phase, but too many fringes per multilooked pixel: decorrelated, not drawn
    assert fast["phase_max_rad"] > 10 * slow["phase_max_rad"]
    assert fast["fringe_rate_rad"] > 3.0 and fast["visible"] == 0


def test_foreshortening_compresses_slopes_facing_the_sensor(repo, tmp_path):
    lon0, lat0 = -71.29, 44.27
    centres = ridge_dem(tmp_path / "ridges.tif", lon0, lat0, [(25.0, 25.0)])
    p = quiet(repo, size_km=[2.4, 1.5])
    scene = build_scene(p, "tiny", dem_path=str(tmp_path / "ridges.tif"))
    og = OutputGrid(scene, p["insar"]["pixel_spacing_deg"])
    east = (og.lon - lon0) * M_PER_DEG * math.cos(math.radians(lat0)) - centres[0]
    inc = math.radians(38)
    t = math.tan(math.radians(25))
    facing = np.median(og.foreshortening[(east > 20) & (east < 150)])
    away = np.median(og.foreshortening[(east < -20) & (east > -150)])
    assert facing == pytest.approx(math.sin(inc) / (math.sin(inc) - math.cos(inc) * t), rel=0.05)
    assert away == pytest.approx(math.sin(inc) / (math.sin(inc) + math.cos(inc) * t), rel=0.05)


def test_reads_an_srtm_hgt_tile(repo, tmp_path):
    # an SRTM .hgt tile (1201 x 1201 big-endian int16) rebuilt from the shipped crop
    with rasterio.open(repo / DEM) as src:
        crop = src.read(1)
    tile = np.full((1201, 1201), 500, np.int16)
    tile[600:, 600:] = crop
    path = tmp_path / "N44W072.hgt"
    tile.astype(">i2").tofile(path)
    p = params(repo)
    from_hgt = build_scene(p, "tiny", dem_path=str(path))
    from_tif = build_scene(p, "tiny", dem_path=str(repo / DEM))
    np.testing.assert_allclose(from_hgt.dem, from_tif.dem, atol=1e-3)


# -- footprint, texture, areas, decoys, annotator (issue 13) ------------------------------------
def test_slc_is_zero_outside_its_footprint_and_the_truth_knows_it(repo):
    p = quiet(
        repo,
        size_km=[1.5, 1.5],
        footprint={"nodata_fraction": [0.2, 0.2], "weights": {"azimuth": 0.0, "corner": 0.0}},
    )
    scene = build_scene(p, "tiny")
    assert scene.footprint["kind"] == "range"
    slc, meta = simulate_slc(scene, p["dates"][0])
    g = scene.geometry
    lines, samples = np.indices(slc.shape)
    inside = scene.footprint_valid(0, lines, samples)
    assert np.all(slc[~inside] == 0) and np.all(slc[inside] != 0)
    assert 0.05 < (~inside).mean() < 0.6
    shift = meta["truth"]["footprint_shift_px"]
    assert abs(shift["range"]) <= 2.0 and abs(shift["azimuth"]) <= 0.5
    og = OutputGrid(scene, p["insar"]["pixel_spacing_deg"])
    foot = og.footprint(0, 1)
    assert 1 - foot.mean() == pytest.approx(0.2, abs=0.05)  # of the scene box, as configured
    # a range edge is a line along the flight direction (heading 190): 0.18 m east per m north
    change = [np.flatnonzero(np.diff(row.astype(int))) for row in foot]
    edge = np.array([c[0] if len(c) == 1 else -1 for c in change], float)
    rows = np.flatnonzero(edge > 0)
    assert len(rows) > 0.5 * foot.shape[0]
    ns_m, ew_m = (
        abs(og.transform.e) * M_PER_DEG,
        og.transform.a * M_PER_DEG * math.cos(math.radians(g.lat0)),
    )
    slope = np.polyfit(rows, edge[rows], 1)[0] * ew_m / ns_m  # m east per m south
    assert slope == pytest.approx(-math.tan(math.radians(10)), abs=0.05)
    assert line_edge_is_stable(scene)


def line_edge_is_stable(scene):
    """The dates' footprints differ by their own small jitter only."""
    g = scene.geometry
    lines, samples = np.indices((g.lines, g.samples))
    masks = [scene.footprint_valid(i, lines, samples) for i in range(len(scene.dates))]
    shifts = {tuple(scene.draws(d)["footprint_shift"]) for d in scene.dates}
    return len(shifts) == len(scene.dates) and all((m != masks[0]).mean() < 0.02 for m in masks)


def test_coherence_varies_inside_a_land_cover_with_stream_and_ridge_lines(repo):
    base = {"size_km": [3.0, 3.0], "areas": {"count": 0}, "decoys": {"count": 0}}
    p = params(repo, base)
    scene = build_scene(p, "tiny", dem_path=str(repo / DEM))
    q = scene.coherence_factor
    og = OutputGrid(scene, p["insar"]["pixel_spacing_deg"])
    coh = og.coherence(0, 2)
    rock = (og.cover == 0) & (og.layover_shadow == 0) & (coh > 0)
    assert np.std(np.log(coh[rock])) > 0.1  # continuous variation inside one cover
    # streams: the drainage network of the relief carries lower coherence than the slopes
    from isslide.simulate.terrain import flow_accumulation

    acc = flow_accumulation(ndimage.gaussian_filter(scene.dem.astype(float), 1.0))
    cell_km2 = abs(scene.dem_transform.e) * M_PER_DEG * scene.dem_transform.a * M_PER_DEG * 0.716e-6
    streams = acc > 10 * 0.1 / cell_km2
    assert streams.mean() > 0.005
    assert np.median(q[streams]) < 0.6 * np.median(q[acc < 3])
    flat = params(
        repo, {**base, "texture": {"amplitude": 0, "stream_area_km2": 0, "ridge_area_km2": 0}}
    )
    assert np.all(build_scene(flat, "tiny", dem_path=str(repo / DEM)).coherence_factor == 1)


def test_areas_have_lobes_internal_velocity_variation_and_some_low_coherence(repo):
    p = params(repo, {"areas": {"count": 15, "per_zone_min": 0}, "size_km": [5.0, 5.0]})
    scene = build_scene(p, "tiny", dem_path=str(repo / DEM))
    lobes = np.bincount(scene.lobes["area"], minlength=scene.n_areas)
    assert lobes.min() >= 1 and (lobes > 1).sum() >= 3
    frame = gpd.GeoDataFrame(
        {"n": lobes}, geometry=[A_outline(scene, k) for k in range(scene.n_areas)]
    )
    assert any(
        g.geom_type == "Polygon" and len(g.exterior.coords) > 73 for g in frame.geometry[lobes > 1]
    )
    og = OutputGrid(scene, p["insar"]["pixel_spacing_deg"])
    # motion varies inside: the profile of a multi-lobe area is no single concentric bubble
    k = int(np.flatnonzero(lobes > 1)[0])
    _, prof, rho = og.area_profiles[k]
    bubble = np.clip(1 - np.clip(rho, 0, None) ** 2, 0, None) ** 1.5
    inside = rho < 1
    assert np.corrcoef(prof[inside], bubble[inside])[0, 1] < 0.995
    assert scene.areas["disturbed"].any()
    stats = og.area_stats(0, 2)
    d = stats[scene.areas["disturbed"]]
    assert (d["coherence_inside"] < d["coherence_around"]).all()
    assert (d["coherence_around"] - d["coherence_inside"]).median() > 0.1


def A_outline(scene, k):
    from isslide.simulate.areas import outline

    return outline(scene.lobes, k)


def decoy_world(repo, **extra):
    sim = {
        "size_km": [3.0, 3.0],
        "areas": {"count": 4, "per_zone_min": 0},
        "decoys": {"count": 3, "ramps_per_date": 2.0, "steps_per_date": 2.0},
        "aps": {"blobs_per_date": 3.0},
        **extra,
    }
    return params(repo, sim)


def test_every_decoy_kind_is_drawn_and_recorded_in_the_truth(repo, tmp_path):
    from isslide.simulate.decoys import KINDS
    from isslide.simulate.truth import write_pair_truth

    p = decoy_world(repo)
    scene = build_scene(p, "tiny", dem_path=str(repo / DEM))
    out = {
        "decoys": tmp_path / "decoys.tif",
        "areas": tmp_path / "areas.gpkg",
        "deformation": tmp_path / "deformation.tif",
        "valid": tmp_path / "valid.tif",
    }
    res = write_pair_truth(
        scene, p["insar"]["pixel_spacing_deg"], p["dates"][0], p["dates"][2], out
    )
    assert all(res["decoy_pixels"][name] > 0 for name in KINDS.values()), res
    with rasterio.open(out["decoys"]) as src:
        codes = src.read(1)
        assert src.dtypes[0] == "uint8" and src.crs.to_epsg() == 4326
        assert json.loads(src.tags()["DECOY_KINDS"]) == {str(k): v for k, v in KINDS.items()}
    with rasterio.open(out["deformation"]) as src:
        defo = src.read(1)
    assert set(np.unique(codes)) == {0, 1, 2, 3, 4}
    assert np.all(codes[defo != 0] == 0)  # motion is never a decoy pixel
    layer = gpd.read_file(out["areas"], layer="decoys")
    assert set(layer["kind"]) == set(KINDS.values())
    assert layer["id"].is_unique and (layer["code"].map(KINDS) == layer["kind"]).all()
    fixed = gpd.read_file(tmp_path / "areas.gpkg", layer="decoys")
    assert set(fixed[fixed["code"] == 1]["id"]) == set(scene.decoys["id"])
    # fixed low-coherence bubbles: coherence of the surroundings times the configured factor
    og = OutputGrid(scene, p["insar"]["pixel_spacing_deg"])
    c_lo, c_hi = p["simulation"]["decoys"]["coherence_factor"]
    q = og.coherence_factor[codes == 1]
    assert np.median(q) < 1.2 * c_hi and np.median(q) > 0.5 * c_lo
    # per-date decoys are the date's, away from the moving areas
    for d in scene.draws(scene.dates[0])["decoys"]:
        if d["code"] > 1:
            k = np.argmin(np.hypot(scene.areas["lon"] - d["lon"], scene.areas["lat"] - d["lat"]))
            dist = math.hypot(
                (scene.areas["lon"][k] - d["lon"]) * M_PER_DEG * math.cos(math.radians(44.27)),
                (scene.areas["lat"][k] - d["lat"]) * M_PER_DEG,
            )
            assert dist > scene.areas["reach"][k]


def test_per_date_decoys_show_in_the_interferograms_of_their_date(repo):
    from isslide.simulate import decoys as D

    p = quiet(
        repo,
        size_km=[1.5, 1.5],
        decoys={"count": 0, "steps_per_date": 4.0, "step_size_m": [300.0, 400.0]},
    )
    scene = build_scene(p, "tiny")
    d0 = scene.draws(scene.dates[0])["decoys"]
    d1 = scene.draws(scene.dates[1])["decoys"]
    assert d1 and all(d["code"] == D.CODES["phase_step"] for d in d0 + d1)
    assert {d["id"] for d in d0}.isdisjoint({d["id"] for d in d1})  # each date its own
    s0, _ = simulate_slc(scene, p["dates"][0])
    s1, _ = simulate_slc(scene, p["dates"][1])
    ifg = s0 * np.conj(s1)  # its phase is psi_1 - psi_0: flat, still, no baseline otherwise
    g = scene.geometry
    h = float(np.median(scene.dem))
    checked = 0
    for d in d1:
        expected = float(D.total_phase(d1, [d["lon"]], [d["lat"]])[0]) - float(
            D.total_phase(d0, [d["lon"]], [d["lat"]])[0]
        )
        line, sample = g.ground_to_radar(d["lon"], d["lat"], h)
        li, si = int(round(float(line))), int(round(float(sample)))
        if abs(expected) < 1.0 or not (3 <= li < g.lines - 3 and 12 <= si < g.samples - 12):
            continue
        window = ifg[li - 2 : li + 3, si - 10 : si + 11].sum()
        assert abs(np.angle(window * np.exp(-1j * expected))) < 0.4
        checked += 1
    assert checked >= 1


def test_the_annotator_outlines_the_part_of_an_area_whose_motion_shows(repo):
    from isslide.simulate.truth import annotation_frame

    p = quiet(repo, size_km=[1.5, 1.5], annotations={"jitter_m": 0.0})
    scene = inject_area(build_scene(p, "tiny"), 12.0, size_m=800.0)
    og = OutputGrid(scene, p["insar"]["pixel_spacing_deg"])
    frame = annotation_frame(scene, og, 0, 1)
    assert len(frame) == 1
    from rasterio import features

    lab = features.rasterize(
        [(frame.geometry[0], 1)], out_shape=(og.height, og.width), transform=og.transform
    ).astype(bool)
    defo = np.abs(og.deformation(0, 1))
    level = p["simulation"]["annotations"]["outline_rad"]
    shows = defo >= level
    assert (defo[lab] < level).mean() < 0.1  # what is drawn moves
    assert (lab[shows]).mean() > 0.85  # what moves is drawn
    # the whole ellipse (the old annotator) would hold far more still ground than the outline
    ellipse = features.rasterize(
        [(A_outline(scene, 0), 1)], out_shape=lab.shape, transform=og.transform
    ).astype(bool)
    assert lab.sum() < 0.9 * ellipse.sum()
    # jitter moves the border, smoothly
    pj = quiet(repo, size_km=[1.5, 1.5], annotations={"jitter_m": 20.0})
    sj = inject_area(build_scene(pj, "tiny"), 12.0, size_m=800.0)
    gj = annotation_frame(sj, OutputGrid(sj, pj["insar"]["pixel_spacing_deg"]), 0, 1).geometry[0]
    moved = gj.symmetric_difference(frame.geometry[0]).area / frame.geometry[0].area
    assert 0.02 < moved < 0.5


@pytest.mark.parametrize(
    ("sim", "message"),
    [
        ({"areas": {"size_m": [5000.0, 6000.0]}}, r"simulation\.areas\.size_m .* does not fit"),
        (
            {"areas": {"count": 40, "per_zone_min": 0, "size_m": [500.0, 900.0]}},
            r"simulation\.areas\.count 40: only \d+",
        ),
        (
            {"decoys": {"count": 40, "size_m": [400.0, 500.0]}},
            r"simulation\.decoys\.count 40: only \d+",
        ),
        ({"decoys": {"ramp_size_m": [4000.0, 5000.0]}}, r"simulation\.decoys\.ramp_size_m"),
        (
            {"aps": {"blob_radius_m": [1500.0, 2000.0]}},
            r"simulation\.aps\.blob_radius_m: every place for such a decoy overlaps a moving area",
        ),
    ],
)
def test_impossible_areas_or_decoys_name_the_key(repo, sim, message):
    p = params(repo, sim)
    with pytest.raises(IsslideError, match=message):
        build_scene(p, "tiny", dem_path=str(repo / DEM))


def test_a_zone_too_small_for_its_areas_names_the_zone(repo):
    p = params(repo, {"areas": {"per_zone_min": 3, "size_m": [700.0, 900.0]}})
    p["stack"] = {
        "zones": {"tiny": {"bbox": [-71.2901, 44.2699, -71.2899, 44.2701], "role": "train"}}
    }
    with pytest.raises(IsslideError, match=r"stacks\.tiny\.zones\.tiny"):
        build_scene(p, "tiny", dem_path=str(repo / DEM))


def test_ground_overlaid_by_a_layover_slope_is_masked_as_layover(repo, tmp_path):
    lon0, lat0 = -71.29, 44.27
    centres = ridge_dem(tmp_path / "ridges.tif", lon0, lat0, [(50.0, 20.0)])
    p = quiet(repo, size_km=[2.4, 1.5])
    scene = build_scene(p, "tiny", dem_path=str(tmp_path / "ridges.tif"))
    og = OutputGrid(scene, p["insar"]["pixel_spacing_deg"])
    east = (og.lon - lon0) * M_PER_DEG * math.cos(math.radians(lat0)) - centres[0]
    ls = og.layover_shadow
    # the 50 degree face (200 m high) reaches the flat ground 168 m east of the crest; flat
    # ground out to about 200 / tan(38 deg) = 256 m shares its ranges (passive layover)
    passive = (east > 185) & (east < 235)
    assert (ls[passive] == 1).mean() > 0.8
    assert (ls[(east > 320) & (east < 600)] == 1).mean() < 0.02
