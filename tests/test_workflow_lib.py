"""isslide.workflow: what each rule gets, computed by the library (no Snakemake run).

``workflow/rules/common.smk`` is one-line calls of :class:`isslide.workflow.Workflow`, so these
tests exercise the code the workflow runs.
"""

from __future__ import annotations

import importlib

import pytest
import yaml
from test_foundation import product_names

from isslide.config import deep_update, fill_section, load_config, load_schema, schema_default
from isslide.errors import IsslideError
from isslide.insar import BACKENDS, STEPS, get_backend
from isslide.plan import plan_stacks
from isslide.workflow import Workflow, canonical, insar_params, simulation_params


@pytest.fixture
def tiny(repo, monkeypatch):
    monkeypatch.chdir(repo)
    cfg = load_config("tests/configs/tiny.yaml")
    return Workflow(cfg, plan_stacks(cfg))


@pytest.fixture
def alps(repo, tmp_path, monkeypatch):
    monkeypatch.chdir(repo)
    for name in product_names(20):
        (tmp_path / name).touch()
    cfg = yaml.safe_load(open("config/isslide.yaml"))
    cfg["stacks"]["alps"]["products"] = str(tmp_path / "*.zip")
    path = tmp_path / "isslide.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return load_config(path)


def test_canonical_ignores_key_order():
    a = canonical({"b": {"y": 1, "x": [{"q": 1, "p": 2}]}, "a": (1, 2)})
    b = canonical({"a": [1, 2], "b": {"x": [{"p": 2, "q": 1}], "y": 1}})
    assert repr(a) == repr(b) and list(a) == ["a", "b"]


def test_simulation_params_scene_never_holds_the_dates(tiny):
    scene = tiny.simulation_params("tiny", "scene")
    annotations = tiny.simulation_params("tiny", "annotations")
    assert "dates" not in scene and "delays" not in scene
    assert annotations["dates"] == tiny.stack_dates("tiny") and annotations["delays"] == [6, 12]
    assert {k: v for k, v in annotations.items() if k not in ("dates", "delays")} == scene
    assert tiny.simulation_params("tiny", "acquisition") == {
        "revisit_days": 6,
        "start": "2018-07-02",
    }
    # outside the workflow (tests, benchmarks): the config's expected dates, the same here
    assert simulation_params(tiny.config, "tiny") == annotations
    with pytest.raises(ValueError):
        simulation_params(tiny.config, "tiny", "bogus")


def test_scene_params_ignore_a_later_end_date(repo, monkeypatch):
    monkeypatch.chdir(repo)
    cfg = load_config("tests/configs/tiny.yaml")
    later = deep_update(cfg, {"dates": {"end": "2018-08-01"}})
    w1, w2 = Workflow(cfg, plan_stacks(cfg)), Workflow(later, plan_stacks(later))
    assert w1.simulation_params("tiny", "scene") == w2.simulation_params("tiny", "scene")
    assert w1.simulation_params("tiny", "annotations") != w2.simulation_params(
        "tiny", "annotations"
    )


def test_embedded_rules_inputs_and_params(tiny):
    assert tiny.backend.name == "embedded" and tiny.insar_env == "../../envs/geo.yaml"
    assert tiny.product_path("results/work/x") == "results/work/x.tif"
    assert tiny.insar_params("tiny") == {"insar": tiny.config["insar"], "backend": "embedded"}
    assert tiny.calibrate_input("tiny", "20180702") == {
        "slc": "resources/synthetic/tiny/slc/20180702.tif",
        "metadata": "resources/synthetic/tiny/slc/20180702.json",
    }
    w = {"stack": "tiny", "delay": "6", "reference": "20180702", "secondary": "20180708"}
    assert tiny.pair_step_input("goldstein", w) == {
        "product": "results/work/tiny/6d/20180702_20180708/topo_removed.tif"
    }
    assert tiny.pair_step_input("terrain_correct", w)["dem"] == "resources/synthetic/tiny/dem.tif"
    assert "dem" not in tiny.pair_step_input("interferogram", w)
    assert not tiny.fused and not tiny.topo_in_interferogram


def test_targets_follow_the_plan(tiny):
    pairs = tiny.all_pairs()
    assert len(pairs) == 5
    assert len(tiny.interferogram_targets()) == 2 * len(pairs)
    assert len(tiny.detection_targets()) == 4 * len(pairs) + 2  # + candidates, preview
    assert "results/dataset/ready/train.npz" in tiny.dataset_targets()
    assert tiny.evaluation_targets()[0] == "results/evaluation/table.csv"
    assert tiny.all_metrics() == [
        f"results/evaluation/{m}/metrics.json" for m in tiny.config["training"]["models"]
    ]
    assert tiny.temporal_models() == ["tunet_attn"]
    assert tiny.temporal_inputs("unet") == {} and tiny.temporal_params("unet") == {}
    assert tiny.temporal_inputs("tunet_attn")["temporal"] == "results/dataset/ready/temporal.csv"
    assert tiny.temporal_params("tunet_attn")["k"] == tiny.config["temporal"]["k"]
    assert tiny.temporal_manifest_input() == ["results/dataset/ready/temporal.json"]
    # the simulated stack's patches read the simulator's truth, one file per pair
    inputs = tiny.patches_input("tiny")
    assert len(inputs["truth_deformation"]) == len(pairs) == len(inputs["labels"])
    assert (
        tiny.truth_visibility("tiny") == tiny.config["simulation"]["annotations"]["visibility_rad"]
    )
    assert len(tiny.stack_annotation_inputs("tiny")) == 5 * len(pairs)  # shapefile parts


def test_training_params_and_seed(tiny):
    p = tiny.training_params("unet")
    assert p["seed"] == tiny.config["seed"] == 7  # training.seed null: the top-level seed
    assert set(p["evaluation"]) == {"n_thresholds", "motion_only"}
    other = deep_update(tiny.config, {"training": {"seed": 3}})
    assert Workflow(other, tiny.plan).training_params("unet")["seed"] == 3
    assert tiny.gpu_request() == 0 and tiny.detection_gpu() in (0, 1)


def test_snap_backend_entry(alps):
    w = Workflow(alps, plan_stacks(alps))
    assert w.backend.name == "snap" and w.insar_env == "../../envs/snap.yaml"
    assert w.product_path("a") == "a.snap" and w.backend.product_is_dir
    # recipe isslide: the topographic phase goes inside Interferogram (DEM input), no topo rule
    assert w.topo_in_interferogram and "remove_topographic_phase" not in w.insar_steps
    wc = {"stack": "alps", "delay": "6", "reference": "20180702", "secondary": "20180708"}
    assert w.pair_step_input("goldstein", wc)["product"].endswith("/interferogram.snap")
    params = w.insar_params("alps")
    assert set(params) == {"insar", "backend", "snap", "stack"}
    assert set(params["stack"]) == {"subswaths", "aoi", "track", "pass"}
    date = w.stack_dates("alps")[0]
    assert w.calibrate_input("alps", date)["products"][0].endswith(".zip")
    assert insar_params(alps, "alps", snap_install={"version": 12})["snap_install"] == {
        "version": 12
    }


def test_every_backend_runs_every_step_it_declares():
    for name, entry in BACKENDS.items():
        module = importlib.import_module(entry.module)
        assert set(STEPS) <= set(module.STEP_FUNCTIONS), name
    assert load_schema()["properties"]["backend"]["enum"] == list(BACKENDS)
    with pytest.raises(IsslideError, match="backend: unknown backend 'gamma'"):
        get_backend("gamma")


def test_schema_is_the_one_source_of_defaults():
    assert schema_default("delays") == [6, 12, 18]
    snap = fill_section("snap", {"recipe": "isslide"})
    assert snap["recipe"] == "isslide" and snap["dem"]["name"] == "SRTM 1Sec HGT"


def test_a_new_backend_is_one_registry_entry_for_the_planning_checks(monkeypatch, tmp_path):
    """Which stack sources a backend accepts and which of its files must exist come from its
    registry entry alone (no backend named in isslide.preflight)."""
    import dataclasses

    from isslide import insar, preflight
    from isslide.config import fill_defaults
    from isslide.errors import IsslideError

    seen = []
    other = dataclasses.replace(
        insar.BACKENDS["snap"],
        name="other",
        processes="Sentinel-1 products",
        files_check=lambda config, base: seen.append(base),
    )
    monkeypatch.setitem(insar.BACKENDS, "other", other)
    cfg = fill_defaults({"backend": "snap", "stacks": {"s": {"source": "products"}}})
    cfg["backend"] = "other"
    preflight.check_files(cfg, str(tmp_path))
    assert seen == [str(tmp_path)]
    cfg["stacks"]["s"]["source"] = "simulated"
    cfg["simulation"]["dem"] = None  # procedural relief: no DEM file to check
    with pytest.raises(IsslideError, match="backend: other processes Sentinel-1 products, but "
                       "stack s has source simulated; set backend: embedded"):  # fmt: skip
        preflight.check_files(cfg, str(tmp_path))
