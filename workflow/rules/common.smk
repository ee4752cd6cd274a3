# Shared: the validated config, the plan, and one-line input/param functions. What each rule
# gets is computed by the library (isslide.workflow.Workflow, tested without Snakemake).
import os
import sys

# The library is importable by the rules' scripts in any environment (pip, conda, cluster nodes).
_SRC = os.path.join(workflow.basedir, "src")
sys.path.insert(0, _SRC)
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        [_SRC, *filter(None, os.getenv("PYTHONPATH", "").split(os.pathsep))]
    )
)

from isslide.config import validate_config
from isslide.errors import IsslideError
from isslide.layout import (
    DATASET,
    DETECTIONS,
    IFG,
    LABELS,
    PAIR,
    READY,
    REPORT,
    SYNTH,
    WORK,
)
from isslide.models import REGISTRY
from isslide.preflight import preflight, stages_from_command_line
from isslide.workflow import Workflow


def _configfile_name():
    files = [str(f) for f in getattr(workflow, "configfiles", [])]
    return files[-1] if files else "config"


def _fail(exc):
    # One line, non-zero exit, before any job runs.
    print(f"isslide: {exc}", file=sys.stderr)
    sys.exit(1)


# Validated once, against the schema shipped in the package (which fills in the defaults), then
# every check that can be made before the first job (the same as `isslide check-config`).
try:
    validate_config(config, source=_configfile_name())
    PLAN = preflight(
        config, base=os.getcwd(), stages=stages_from_command_line(sys.argv)
    )
    W = Workflow(config, PLAN)
except IsslideError as exc:
    _fail(exc)

for _stack in PLAN.values():
    for _line in _stack.report():
        logger.warning(f"isslide: {_line}")

# A backend's planning check (SNAP: ask gpt what it is, refuse a disagreeing snap.version), once,
# before any job; skipped when Snakemake re-parses this file inside a job.
if W.backend.planning_check and workflow.is_main_process:
    try:
        _check = W.backend.planning_check(config)
    except IsslideError as exc:
        _fail(exc)
    W.snap_install = _check.params
    if _check.summary:
        logger.info(f"isslide: {_check.summary}")
    for _line in _check.warnings:
        logger.warning(f"isslide: {_line}")

INSAR_ENV = W.insar_env
FUSED = W.fused
TOPO_IN_INTERFEROGRAM = W.topo_in_interferogram
SIMULATED_RE = W.regex(W.simulated)
IMPORTED_RE = W.regex(W.imported)


wildcard_constraints:
    stack="|".join(sorted(PLAN)),
    delay=r"\d+",
    date=r"\d{8}",
    reference=r"\d{8}",
    secondary=r"\d{8}",
    model="|".join(REGISTRY),


def interferogram_targets():
    return W.interferogram_targets()


def dataset_targets():
    return W.dataset_targets()


def evaluation_targets():
    return W.evaluation_targets()


def detection_targets():
    return W.detection_targets()


def report_targets():
    return W.report_targets()


def trained_models():
    return W.trained_models()


# --- simulation ------------------------------------------------------------------------------


def simulation_scene_input(wildcards):
    return W.simulation_scene_input()


def simulation_scene_params(wildcards):
    return W.simulation_params(wildcards.sim_stack, "scene")


def simulation_acquisition_params(wildcards):
    return W.simulation_params(wildcards.sim_stack, "acquisition")


def simulation_annotations_params(wildcards):
    return W.simulation_params(wildcards.sim_stack, "annotations")


# --- InSAR -----------------------------------------------------------------------------------


def product_path(path):
    return W.product_path(path)


def product(path, keep=False):
    """Output declaration of an intermediate InSAR product: temporary, except the per-date
    orbit-corrected products (keep=True), which later pairs reuse when acquisitions are added.
    """
    out = W.product_path(path)
    out = directory(out) if W.backend.product_is_dir else out
    return out if keep else temp(out)


def insar_params(wildcards):
    return W.insar_params(wildcards.stack)


def calibrate_input(wildcards):
    return W.calibrate_input(wildcards.stack, wildcards.date)


def coregister_input(wildcards):
    return W.coregister_input(wildcards.stack, wildcards.reference, wildcards.secondary)


def interferogram_input(wildcards):
    return W.pair_step_input("interferogram", wildcards)


def topo_input(wildcards):
    return W.pair_step_input("remove_topographic_phase", wildcards)


def goldstein_input(wildcards):
    return W.pair_step_input("goldstein", wildcards)


def multilook_input(wildcards):
    return W.pair_step_input("multilook", wildcards)


def terrain_correct_input(wildcards):
    return W.pair_step_input("terrain_correct", wildcards)


# --- labels and datasets ---------------------------------------------------------------------


def rasterize_input(wildcards):
    return W.rasterize_input(wildcards)


def annotation_stem(stack, delay, reference, secondary):
    return W.annotation_stem(stack, delay, reference, secondary)


def annotation_path(wildcards):
    return W.annotation_path(wildcards)


def stack_pairs(wildcards):
    return W.stack_pairs(wildcards.stack)


def stack_zones(wildcards):
    return config["stacks"][wildcards.stack]["zones"]


def centres_input(wildcards):
    return W.centres_input(wildcards.stack)


def patches_input(wildcards):
    return W.patches_input(wildcards.stack)


def truth_visibility(wildcards):
    return W.truth_visibility(wildcards.stack)


def stack_grid(wildcards):
    return W.stack_grid(wildcards.stack)


def stack_annotation_paths(wildcards):
    return W.stack_annotation_paths(wildcards.stack)


def raw_input(wildcards):
    return W.raw_input(wildcards.stack)


# --- training and evaluation -----------------------------------------------------------------


def gpu_request(wildcards):
    return W.gpu_request()


def training_params(wildcards):
    return W.training_params(wildcards.model)


def evaluation_params(wildcards):
    return W.evaluation_params()


def all_metrics(wildcards):
    return W.all_metrics()


def figure_inputs(wildcards):
    return W.figure_inputs()


# --- interferograms made elsewhere -----------------------------------------------------------


def import_input(wildcards):
    return W.import_input(wildcards)


def import_params(wildcards):
    try:
        return W.import_params(wildcards.stack)
    except IsslideError as exc:
        _fail(exc)


# --- detection -------------------------------------------------------------------------------


def detection_model_dirs():
    return W.detection_model_dirs()


def detection_model_input(wildcards):
    return W.detection_model_input()


def detect_input(wildcards):
    return W.detect_input(wildcards)


def detection_params(wildcards):
    return W.detection_params()


def detection_gpu(wildcards):
    return W.detection_gpu()


def stack_detection_input(wildcards):
    return W.stack_detection_input(wildcards.stack)


def detection_preview_input(wildcards):
    return W.detection_preview_input(wildcards.stack)


def preview_pairs(wildcards):
    return W.preview_pairs(wildcards.stack)


# --- multi-temporal detectors (isslide.dataset.temporal, isslide.models.temporal) -----------


def temporal_models():
    return W.temporal_models()


def temporal_inputs(wildcards):
    return W.temporal_inputs(wildcards.model)


def temporal_params(wildcards):
    return W.temporal_params(wildcards.model)


def temporal_manifest_input(wildcards):
    return W.temporal_manifest_input()
