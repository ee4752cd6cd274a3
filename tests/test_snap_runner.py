"""SNAP backend: the gpt runner, failure advice, the eight steps and the orbit check.

SNAP cannot be installed here: ``tests/fake_gpt.py`` is a TEST DOUBLE standing in for gpt (it
parses the graph and the -P bindings and writes small BEAM-DIMAP products, or fails on request).
"""

from __future__ import annotations

import json
import os
import stat
import sys
import types

import numpy as np
import pytest
import rasterio
import yaml
from affine import Affine
from test_snap_graph import isslide_params

from isslide.errors import IsslideError
from isslide.geometry import output_grid
from isslide.insar import STEPS, get_step
from isslide.snap import chain, gpt, install, orbits, snappy
from isslide.snap.steps import STEP_FUNCTIONS

FAKE = os.path.join(os.path.dirname(__file__), "fake_gpt.py")


@pytest.fixture
def fake_gpt(tmp_path, monkeypatch):
    """An executable named like gpt that runs the test double with this interpreter."""
    path = tmp_path / "bin" / "gpt"
    path.parent.mkdir()
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    record = tmp_path / "gpt-calls.jsonl"
    monkeypatch.setenv("FAKE_GPT_RECORD", str(record))
    monkeypatch.setenv("FAKE_GPT_MODE", "ok")
    for var in ("FAKE_GPT_VERSION", "FAKE_GPT_VM_HEAP_MB", "FAKE_GPT_J"):
        monkeypatch.delenv(var, raising=False)
    install.probe.cache_clear()

    def calls():
        return (
            [json.loads(line) for line in record.read_text().splitlines()]
            if record.exists()
            else []
        )

    def runs():
        """The graph runs (not the gpt --diag questions)."""
        return [c for c in calls() if "--diag" not in c]

    return types.SimpleNamespace(path=str(path), calls=calls, runs=runs)


# A small AOI around the footprint of the test double's Terrain-Correction output.
SMALL_AOI = "POLYGON((6.49 44.995, 6.53 44.995, 6.53 45.02, 6.49 45.02, 6.49 44.995))"
SMALL_BOUNDS = (6.49, 44.995, 6.53, 45.02)


def params(repo, gpt_path, **snap):
    snap = {"gpt": gpt_path, **snap}
    return isslide_params(repo, snap=snap, stack={"aoi": SMALL_AOI})


def test_steps_are_registered():
    assert set(STEP_FUNCTIONS) == set(STEPS)
    assert all(get_step(step, "snap") is STEP_FUNCTIONS[step] for step in STEPS)


def test_gpt_command_is_an_argument_list():
    args = gpt.gpt_command(
        "/opt/snap/bin/gpt",
        "/w/graph.xml",
        {"out": "/w/my product.dim", "in": "/w/R&D <1>/in.dim"},
        cache="2000M",
        threads=3,
        heap_mb=4000,
        properties={"OrbitFiles.sentinel1POEOrbitPath": "/orbits"},
    )
    assert args == [
        "/opt/snap/bin/gpt",
        "-J-Xmx4000M",
        "/w/graph.xml",
        "-Pin=/w/R&amp;D &lt;1&gt;/in.dim",  # gpt pastes -P values into the XML text
        "-Pout=/w/my product.dim",
        "-c",
        "2000M",
        "-q",
        "3",
        "-e",
        "-DOrbitFiles.sentinel1POEOrbitPath=/orbits",
    ]
    assert "-x" not in args  # gpt applies -x only to a Write node it appends itself


def test_memory_plan_keeps_the_cache_below_the_heap():
    plan = gpt.memory_plan({"mem_mb": 8000}, 0.75, 0.5)
    assert (plan.heap_mb, plan.cache) == (6000, "3000M")
    assert "-J-Xmx6000M" in plan.note and "mem_mb 8000" in plan.note
    # heap from gpt.vmoptions (gpt --diag), the cache a fraction of it
    plan = gpt.memory_plan({"mem_mb": 8000}, None, 0.5, vm_heap_mb=4096)
    assert plan.heap_mb is None and plan.cache == "2048M" and "gpt.vmoptions" in plan.note
    warn = gpt.memory_plan({"mem_mb": 8000}, None, 0.5, vm_heap_mb=24000).note
    assert "WARNING" in warn and "exceeds the job's mem_mb 8000" in warn
    assert gpt.memory_plan({}, 0.75, 0.5).cache == "1024M"  # nothing known: SNAP-like default
    with pytest.raises(IsslideError, match="resources.mem_mb: 500 MB"):
        gpt.memory_plan({"mem_mb": 500}, 0.75, 0.5)
    for mem in (700, 4000, 16000, 60000):
        for heap_f in (0.75, 0.95):
            for cache_f in (0.1, 0.5, 0.9):
                p = gpt.memory_plan({"mem_mb": mem}, heap_f, cache_f)
                assert p.cache_mb < p.heap_mb <= mem


def test_gpt_not_found(tmp_path):
    with pytest.raises(IsslideError, match=r"snap.gpt: 'no-such-gpt' not found.*install ESA SNAP"):
        gpt.resolve_gpt("no-such-gpt")
    with pytest.raises(IsslideError, match="not an executable file"):
        gpt.resolve_gpt(str(tmp_path / "snap" / "bin" / "gpt"))


@pytest.mark.parametrize("rc", [-9, 137])
def test_failure_killed_means_memory(rc):
    msg = str(gpt.failure(rc, "", graph="g", cache="2000M", version=10))
    assert "killed" in msg and "out of memory" in msg and "mem_mb" in msg and "gpt.vmoptions" in msg
    assert "-c 2000M" in msg


def test_failure_unknown_element_means_version_mismatch():
    out = "Error: [NodeId: GoldsteinPhaseFiltering] Unknown element 'useAdaptiveAlpha'"
    msg = str(gpt.failure(1, out, graph="g", cache="1M", version=14))
    assert "SNAP version mismatch" in msg and "useAdaptiveAlpha" in msg and "snap.version" in msg


def test_failure_other():
    msg = str(
        gpt.failure(1, "INFO ok\nError: [NodeId: X] boom\n", graph="g", cache="1M", version=10)
    )
    assert "exit 1" in msg and "boom" in msg


def run_fake(fake, tmp_path, step="multilook", work="work", heap_fraction=0.75, **snap):
    s = chain.SnapSettings(gpt=fake.path, version=10, heap_fraction=heap_fraction, **snap)
    graph = chain.step_graph(step, s)
    work = tmp_path / work
    work.mkdir(exist_ok=True)
    bindings = {"in": str(tmp_path / "in.dim"), "out": str(work / "product.dim")}
    return gpt.run_gpt(
        graph,
        bindings,
        gpt=fake.path,
        workdir=str(work),
        threads=3,
        resources={"mem_mb": 6000},
        cache_fraction=s.cache_fraction,
        heap_fraction=s.heap_fraction,
        version=s.version,
    )


def test_run_gpt_with_the_test_double(fake_gpt, tmp_path):
    written = run_fake(fake_gpt, tmp_path)
    assert written == [str(tmp_path / "work" / "product.dim")]
    (args,) = fake_gpt.calls()
    assert args[0] == "-J-Xmx4500M"  # 0.75 of the job's 6000 MB
    assert args[1] == str(tmp_path / "work" / "graph.xml")
    assert args[2:] == [
        f"-Pin={tmp_path / 'in.dim'}",
        f"-Pout={tmp_path / 'work' / 'product.dim'}",
        "-c",
        "2250M",  # 0.5 of the heap
        "-q",
        "3",
        "-e",
    ]
    xml = (tmp_path / "work" / "graph.xml").read_text()
    assert "<writeEntireTileRows>true</writeEntireTileRows>" in xml
    assert "<clearCacheAfterRowWrite>true</clearCacheAfterRowWrite>" in xml


def test_paths_with_xml_special_characters_reach_gpt_intact(fake_gpt, tmp_path):
    """gpt pastes -P values into the graph text before parsing it: & and < must be escaped."""
    written = run_fake(fake_gpt, tmp_path, work="R&D <new>")
    assert written == [str(tmp_path / "R&D <new>" / "product.dim")]
    assert os.path.isfile(written[0])


def test_heap_from_gpt_vmoptions_when_heap_fraction_is_null(
    fake_gpt, tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("FAKE_GPT_VM_HEAP_MB", "4096")
    with caplog.at_level("INFO", logger="isslide.snap"):
        run_fake(fake_gpt, tmp_path, heap_fraction=None)
    diag, run = fake_gpt.calls()
    assert diag == ["--diag"] and not any(a.startswith("-J") for a in run)
    cache = run[run.index("-c") + 1]
    reported_mb = round(4096 * 0.96 / 1024, 1) * 1024  # "Max memory: 3.8 GB"
    assert cache == f"{int(reported_mb * 0.5)}M"  # half the heap gpt --diag reports
    assert "from gpt.vmoptions (gpt --diag)" in caplog.text


@pytest.mark.parametrize(
    "mode, message",
    [
        ("kill", "out of memory"),
        ("exit137", "out of memory"),
        ("unknown", "SNAP version mismatch"),
        ("orbit", "no orbit file"),
        ("empty", "missing or empty output"),
        ("fail", "something went wrong"),
    ],
)
def test_run_gpt_failures_are_mapped(fake_gpt, tmp_path, monkeypatch, mode, message):
    monkeypatch.setenv("FAKE_GPT_MODE", mode)
    with pytest.raises(IsslideError, match=message):
        run_fake(fake_gpt, tmp_path)


# --- the eight steps, chained, with the test double --------------------------------------------


def run_chain(repo, tmp_path, fake, fused=False, **snap):
    p = params(repo, fake.path, fuse=fused, **snap)
    zips = tmp_path / "s1"
    zips.mkdir()
    products = {}
    for date in ("20180702", "20180708"):
        z = zips / f"S1A_IW_SLC__1SDV_{date}T054020_{date}T054047_022608_027309_8A2B.zip"
        z.write_bytes(b"zip")
        products[date] = str(z)
    work = tmp_path / "results" / "work" / "alps"
    res = {"mem_mb": 4000}
    for date, z in products.items():
        STEP_FUNCTIONS["calibrate"](
            inputs={"products": [z]},
            outputs={"product": str(work / f"calibrated/{date}.snap")},
            params=p,
            threads=2,
            resources=res,
        )
        STEP_FUNCTIONS["apply_orbit"](
            inputs={"product": str(work / f"calibrated/{date}.snap")},
            outputs={"product": str(work / f"orbit/{date}.snap")},
            params=p,
            threads=2,
            resources=res,
        )
    pair = work / "6d" / "20180702_20180708"
    ref, sec = str(work / "orbit/20180702.snap"), str(work / "orbit/20180708.snap")
    ifg = tmp_path / "results/interferograms/alps/6d/20180702_20180708"
    outputs = {k: str(ifg / f"{k}.tif") for k in ("coherence", "phase", "layover_shadow")}
    if fused:
        STEP_FUNCTIONS["terrain_correct"](
            inputs={"reference": ref, "secondary": sec},
            outputs=outputs,
            params=p,
            threads=2,
            resources=res,
        )
        return work, pair, outputs
    STEP_FUNCTIONS["coregister"](
        inputs={"reference": ref, "secondary": sec},
        outputs={"product": str(pair / "coregistered.snap")},
        params=p,
        threads=2,
        resources=res,
    )
    previous = "coregistered"
    steps = chain.recipe_steps(p["snap"]["recipe"])
    for step, name in [
        ("interferogram", "interferogram"),
        ("remove_topographic_phase", "topo_removed"),
        ("goldstein", "goldstein"),
        ("multilook", "multilooked"),
    ]:
        if step not in steps:
            continue
        STEP_FUNCTIONS[step](
            inputs={"product": str(pair / f"{previous}.snap")},
            outputs={"product": str(pair / f"{name}.snap")},
            params=p,
            threads=2,
            resources=res,
        )
        previous = name
    STEP_FUNCTIONS["terrain_correct"](
        inputs={"product": str(pair / "multilooked.snap")},
        outputs=outputs,
        params=p,
        threads=2,
        resources=res,
    )
    return work, pair, outputs


def check_interferogram(outputs, aoi_bounds):
    transform, width, height = output_grid(*aoi_bounds, 1.315e-4)
    for key in ("coherence", "phase", "layover_shadow"):
        with rasterio.open(outputs[key]) as ds:
            assert ds.crs.to_epsg() == 4326 and ds.transform == transform
            assert (ds.width, ds.height) == (width, height)
            assert ds.nodata == (255 if key == "layover_shadow" else -9999)
    with rasterio.open(outputs["phase"]) as ds:
        phase = ds.read(1, masked=True)
    assert phase.count() > 0 and np.abs(phase).max() <= np.pi + 1e-6
    assert not [f for f in os.listdir(os.path.dirname(outputs["phase"])) if f.startswith(".")]


def test_eight_steps_with_the_test_double(repo, tmp_path, fake_gpt):
    work, pair, outputs = run_chain(repo, tmp_path, fake_gpt)
    for date in ("20180702", "20180708"):
        for folder in ("calibrated", "orbit"):
            snap = work / folder / f"{date}.snap"
            assert sorted(f for f in os.listdir(snap) if f.endswith(".dim")) == [
                "IW1.dim",
                "IW2.dim",
                "IW3.dim",
            ]
            assert (snap / "graph.xml").exists()
    assert (pair / "coregistered.snap" / "IW3.dim").exists()
    for name in ("interferogram", "topo_removed", "goldstein", "multilooked"):
        assert (pair / f"{name}.snap" / "product.dim").exists()
    assert not list(work.rglob("*.tmp-*"))
    check_interferogram(outputs, SMALL_BOUNDS)
    calls = fake_gpt.runs()
    assert len(calls) == 4 + 6  # 2 x (calibrate, apply_orbit) + 6 per-pair rules
    calibrate_args = calls[0]
    assert any(a.startswith("-Pslice1=") and a.endswith(".zip") for a in calibrate_args)


def test_isslide_recipe_chain_with_the_test_double(repo, tmp_path, fake_gpt):
    work, pair, outputs = run_chain(repo, tmp_path, fake_gpt, recipe="isslide")
    for name in ("coregistered", "interferogram", "goldstein", "multilooked"):
        folder = pair / f"{name}.snap"
        assert sorted(f for f in os.listdir(folder) if f.endswith(".dim")) == [
            "IW1.dim",
            "IW2.dim",
            "IW3.dim",
        ]
    assert not (pair / "topo_removed.snap").exists()
    runs = fake_gpt.runs()
    assert len(runs) == 4 + 5  # no remove_topographic_phase
    tc = runs[-1]
    assert "-Pi_IW2=i_ifg_IW2_VV_02Jul2018_08Jul2018" in tc
    assert "-Pq_IW2=q_ifg_IW2_VV_02Jul2018_08Jul2018" in tc
    assert sum(a.startswith("-Pout_phase_") for a in tc) == 3
    check_interferogram(outputs, SMALL_BOUNDS)
    with rasterio.open(outputs["phase"]) as ds:
        phase = ds.read(1, masked=True)
    # the three subswath footprints side by side, the BandMaths phase copied (nearest)
    assert phase.count() > 0 and float(np.abs(phase).max()) <= np.pi


def test_fused_chain_with_the_test_double(repo, tmp_path, fake_gpt):
    work, pair, outputs = run_chain(repo, tmp_path, fake_gpt, fused=True)
    assert not pair.exists()
    check_interferogram(outputs, SMALL_BOUNDS)
    graph_args = fake_gpt.runs()[-1]
    assert sum(a.startswith(("-Pref_", "-Psec_")) for a in graph_args) == 6


def test_failed_step_leaves_no_product(repo, tmp_path, fake_gpt, monkeypatch):
    p = params(repo, fake_gpt.path)
    z = tmp_path / "S1A_IW_SLC__1SDV_20180702T054020_20180702T054047_022608_027309_8A2B.zip"
    z.write_bytes(b"zip")
    out = tmp_path / "calibrated" / "20180702.snap"
    monkeypatch.setenv("FAKE_GPT_MODE", "empty")
    with pytest.raises(IsslideError, match="missing or empty"):
        STEP_FUNCTIONS["calibrate"](
            inputs={"products": [str(z)]},
            outputs={"product": str(out)},
            params=p,
            threads=1,
            resources={},
        )
    assert not out.exists() and not list(tmp_path.rglob("*.tmp-*"))


def test_missing_external_dem_is_reported(repo, tmp_path, fake_gpt):
    p = params(
        repo,
        fake_gpt.path,
        dem={"name": "External DEM", "external_file": str(tmp_path / "none.tif")},
    )
    folder = tmp_path / "orbit"
    for role in ("a", "b"):
        for sw in ("IW1", "IW2", "IW3"):
            (folder / f"{role}.snap").mkdir(parents=True, exist_ok=True)
            (folder / f"{role}.snap" / f"{sw}.dim").write_text("<x/>")
    with pytest.raises(IsslideError, match="snap.dem.external_file"):
        STEP_FUNCTIONS["coregister"](
            inputs={
                "reference": str(folder / "a.snap"),
                "secondary": str(folder / "b.snap"),
                "dem": str(tmp_path / "none.tif"),
            },
            outputs={"product": str(tmp_path / "c.snap")},
            params=p,
            threads=1,
            resources={},
        )
    assert not fake_gpt.calls()


# --- orbits ----------------------------------------------------------------------------------------

POEORB = "S1A_OPER_AUX_POEORB_OPOD_20180722T120714_V20180701T225942_20180703T005942.EOF"


def calibrated_product(tmp_path, state_vector_time="02-JUL-2018 05:39:08.000000"):
    sys.path.insert(0, os.path.dirname(__file__))
    from fake_gpt import write_dimap

    folder = tmp_path / "calibrated" / "20180702.snap"
    for sw in ("IW1", "IW2", "IW3"):
        write_dimap(
            str(folder / f"{sw}.dim"),
            [("i_IW1_VV", "real", np.ones((2, 2), np.float32), 0.0)],
            transform=Affine(1, 0, 0, 0, -1, 2),
            metadata={
                "MISSION": "SENTINEL-1A",
                "first_line_time": "02-JUL-2018 05:40:20.123456",
                "STATE_VECTOR_TIME": state_vector_time,
            },
        )
    return folder


def test_missing_orbit_file_is_a_clear_error(repo, tmp_path, fake_gpt):
    orbit_dir = tmp_path / "orbits" / "POEORB"
    orbit_dir.mkdir(parents=True)
    p = params(repo, fake_gpt.path, orbit={"directory": str(orbit_dir), "continue_on_fail": False})
    folder = calibrated_product(tmp_path)
    out = tmp_path / "orbit" / "20180702.snap"
    with pytest.raises(IsslideError) as err:
        STEP_FUNCTIONS["apply_orbit"](
            inputs={"product": str(folder)},
            outputs={"product": str(out)},
            params=p,
            threads=1,
            resources={},
        )
    msg = str(err.value)
    assert "snap.orbit.directory" in msg and str(orbit_dir / "S1A" / "2018" / "07") in msg
    assert "POEORB" in msg and "continue_on_fail" in msg and "\n" not in msg
    assert not fake_gpt.calls() and not out.exists()


def test_orbit_file_present_is_used_offline(repo, tmp_path, fake_gpt):
    orbit_dir = tmp_path / "orbits" / "POEORB"
    (orbit_dir / "S1A" / "2018" / "07").mkdir(parents=True)
    (orbit_dir / "S1A" / "2018" / "07" / POEORB).write_text("eof")
    p = params(repo, fake_gpt.path, orbit={"directory": str(orbit_dir)})
    folder = calibrated_product(tmp_path)
    STEP_FUNCTIONS["apply_orbit"](
        inputs={"product": str(folder)},
        outputs={"product": str(tmp_path / "o.snap")},
        params=p,
        threads=1,
        resources={},
    )
    (args,) = fake_gpt.runs()
    assert f"-DOrbitFiles.sentinel1POEOrbitPath={orbit_dir}" in args


def test_continue_on_fail_skips_the_check(repo, tmp_path, fake_gpt):
    p = params(repo, fake_gpt.path, orbit={"directory": str(tmp_path), "continue_on_fail": True})
    folder = calibrated_product(tmp_path)
    STEP_FUNCTIONS["apply_orbit"](
        inputs={"product": str(folder)},
        outputs={"product": str(tmp_path / "o.snap")},
        params=p,
        threads=1,
        resources={},
    )
    assert len(fake_gpt.runs()) == 1


def test_orbit_lookup_validity_window(tmp_path):
    import datetime as dt

    (tmp_path / "S1A" / "2018" / "07").mkdir(parents=True)
    (tmp_path / "S1A" / "2018" / "07" / (POEORB + ".zip")).write_text("z")
    inside = dt.datetime(2018, 7, 2, 5, 39, 8)
    assert orbits.find_orbit_file(str(tmp_path), "S1A", inside).endswith(".EOF.zip")
    assert orbits.find_orbit_file(str(tmp_path), "S1B", inside) is None
    assert orbits.find_orbit_file(str(tmp_path), "S1A", dt.datetime(2018, 7, 3, 5, 39)) is None
    assert orbits.find_orbit_file(str(tmp_path), "S1A", inside, kind="RESORB") is None


# --- the installed SNAP, asked of gpt (--diag) ---------------------------------------------------


def test_parse_diag():
    text = "SNAP Release version 13.0.2\nSNAP home: /opt/snap\nMax memory: 23,9 GB\n"
    release, major, memory = install.parse_diag(text)
    assert (release, major) == ("13.0.2", 13) and memory == pytest.approx(23.9 * 1024)
    missing = "SNAP Release version [no version info, missing ${SNAP_HOME}/VERSION.txt]\n"
    assert install.parse_diag(missing)[:2] == (None, None)


def planning_config(repo, gpt_path, **snap):
    from isslide.config import fill_defaults

    cfg = yaml.safe_load(open(repo / "config/isslide.yaml"))
    cfg["snap"].update({"gpt": gpt_path, **snap})
    return fill_defaults(cfg)


def test_planning_detects_the_version(repo, fake_gpt, monkeypatch):
    monkeypatch.setenv("FAKE_GPT_VERSION", "14.0.0")
    result = install.planning_check(planning_config(repo, fake_gpt.path))
    assert result.params == {"version": 14} and "SNAP 14.0.0" in result.summary
    assert ["-J-Xmx1536M", "--diag"] in fake_gpt.calls()  # the -J pass-through was checked
    assert not fake_gpt.runs()  # no graph ran


def test_planning_refuses_a_disagreeing_version(repo, fake_gpt, monkeypatch):
    monkeypatch.setenv("FAKE_GPT_VERSION", "14.0.0")
    with pytest.raises(IsslideError) as err:
        install.planning_check(planning_config(repo, fake_gpt.path, version=10))
    msg = str(err.value)
    assert msg.startswith("snap.version: configured 10 but") and "SNAP 14.0.0" in msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    "release, configured, outcome",
    [
        ("", None, "prints no SNAP release version"),
        ("", 12, 12),
        ("9.0.0", None, "need SNAP 10 or later"),
        ("15.1.0", None, 15),
    ],
)
def test_planning_version_edge_cases(repo, fake_gpt, monkeypatch, release, configured, outcome):
    monkeypatch.setenv("FAKE_GPT_VERSION", release)
    cfg = planning_config(repo, fake_gpt.path, version=configured)
    if isinstance(outcome, str):
        with pytest.raises(IsslideError, match=outcome):
            install.planning_check(cfg)
    else:
        result = install.planning_check(cfg)
        assert result.params == {"version": outcome} and result.warnings


@pytest.mark.parametrize("mode, message", [("ignore", "ignored -J-Xmx"), ("reject", "rejects")])
def test_planning_checks_the_heap_pass_through(repo, fake_gpt, monkeypatch, mode, message):
    monkeypatch.setenv("FAKE_GPT_J", mode)
    with pytest.raises(IsslideError, match=f"snap.heap_fraction: .*{message}.*gpt.vmoptions"):
        install.planning_check(planning_config(repo, fake_gpt.path))
    result = install.planning_check(planning_config(repo, fake_gpt.path, heap_fraction=None))
    assert result.params == {"version": 10}


def test_planning_without_gpt_warns(repo, tmp_path):
    install.probe.cache_clear()
    result = install.planning_check(planning_config(repo, str(tmp_path / "no" / "gpt")))
    assert result.params is None and "every SNAP job will fail" in result.warnings[0]


@pytest.mark.parametrize(
    "snap, stack, message",
    [
        ({"dem": {"apply_egm": False}}, {}, "snap.dem.apply_egm: false cannot be honoured"),
        ({"recipe": "esa"}, {"subswaths": ["IW1", "IW3"]}, "stacks.alps.subswaths"),
        ({"fuse": True}, {}, "snap.fuse"),
    ],
)
def test_planning_refuses_bad_snap_settings(repo, fake_gpt, snap, stack, message):
    cfg = planning_config(repo, fake_gpt.path, **snap)
    cfg["stacks"]["alps"].update(stack)
    with pytest.raises(IsslideError, match=message):
        install.planning_check(cfg)
    assert not fake_gpt.calls()  # refused before asking gpt


def test_job_asks_gpt_when_planning_did_not(repo, fake_gpt, monkeypatch):
    from isslide.snap.steps import settings_of

    monkeypatch.setenv("FAKE_GPT_VERSION", "14.0.0")
    p = params(repo, fake_gpt.path, version=None)
    assert settings_of(p).version == 14
    assert settings_of({**p, "snap_install": {"version": 13}}).version == 13  # planning's wins
    with pytest.raises(IsslideError, match="configured 12 but the SNAP in use is 13"):
        settings_of({**p, "snap": {**p["snap"], "version": 12}, "snap_install": {"version": 13}})


# --- esa_snappy: the same graph in-process ------------------------------------------------------


class FakeSnappy(types.ModuleType):
    """TEST DOUBLE for the esa_snappy module: records what isslide asks of SNAP's Java API."""

    def __init__(self):
        super().__init__("esa_snappy")
        self.calls = []
        outer = self

        class HashMap(dict):
            def put(self, key, value):
                self[key] = value

        class ProductIO:
            @staticmethod
            def readProduct(path):
                outer.calls.append(("read", path))
                return f"product:{path}"

            @staticmethod
            def writeProduct(product, path, fmt):
                outer.calls.append(("write", product, path, fmt))

        class GPF:
            @staticmethod
            def createProduct(op, params, sources):
                outer.calls.append(("op", op, dict(params), sources))
                return f"product:{op}"

        class jpy:
            @staticmethod
            def array(cls, n):
                assert cls in (snappy.PRODUCT_CLASS, snappy.BAND_DESCRIPTOR_CLASS)
                return [None] * n

            @staticmethod
            def get_type(cls):
                assert cls == snappy.BAND_DESCRIPTOR_CLASS
                return types.SimpleNamespace

        self.HashMap, self.ProductIO, self.GPF, self.jpy = HashMap, ProductIO, GPF, jpy


def test_esa_snappy_runs_the_same_chain():
    s = chain.SnapSettings(version=10)
    graph = chain.fused_graph(s)
    fake = FakeSnappy()
    sys.modules["esa_snappy"] = fake
    try:
        bindings = {name: f"/data/{name}" for name in graph.placeholders}
        written = snappy.run_graph(graph, bindings)
    finally:
        del sys.modules["esa_snappy"]
    assert written == ["/data/out"]
    ops = [c for c in fake.calls if c[0] == "op"]
    expected = [n for n in graph.nodes if n.operator not in ("Read", "Write")]
    assert [c[1] for c in ops] == [n.operator for n in expected]
    for call, node in zip(ops, expected, strict=True):
        assert call[2] == {k: snappy.java_value(v) for k, v in node.params.items()}
    bg = ops[0]
    assert bg[1] == "Back-Geocoding" and bg[3] == ["product:/data/ref_IW1", "product:/data/sec_IW1"]
    assert ops[-1][1] == "Terrain-Correction" and ops[-1][2]["outputComplex"] is True
    assert fake.calls[-1] == ("write", "product:Terrain-Correction", "/data/out", "BEAM-DIMAP")


def test_esa_snappy_band_maths_gets_band_descriptors():
    s = chain.SnapSettings(version=10, recipe="isslide", subswaths=("IW1",))
    graph = chain.step_graph("terrain_correct", s)
    fake = FakeSnappy()
    sys.modules["esa_snappy"] = fake
    try:
        bindings = {name: f"/data/{name}" for name in graph.placeholders}
        bindings.update(i_IW1="i_ifg_IW1", q_IW1="q_ifg_IW1")
        written = snappy.run_graph(graph, bindings)
    finally:
        del sys.modules["esa_snappy"]
    assert written == ["/data/out_coh_IW1", "/data/out_phase_IW1"]
    (bm,) = [c for c in fake.calls if c[0] == "op" and c[1] == "BandMaths"]
    (descriptor,) = bm[2]["targetBands"]
    assert descriptor.expression == "atan2(q_ifg_IW1, i_ifg_IW1)" and descriptor.name == "Phase"
    assert descriptor.type == "float32" and descriptor.noDataValue == 0.0
    assert "variables" not in bm[2]
    tcs = [c for c in fake.calls if c[0] == "op" and c[1] == "Terrain-Correction"]
    assert [c[2]["imgResamplingMethod"] for c in tcs] == [
        "BILINEAR_INTERPOLATION",
        "NEAREST_NEIGHBOUR",
    ]


def test_esa_snappy_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "esa_snappy", None)
    with pytest.raises(IsslideError, match="esa_snappy is not importable"):
        snappy.run_graph(
            chain.step_graph("multilook", chain.SnapSettings(version=10)), {"in": "a", "out": "b"}
        )
