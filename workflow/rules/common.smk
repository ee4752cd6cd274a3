# Shared helpers: config validation, the acquisition/pair plan, path builders, input functions.
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
from isslide.plan import annotation_stem as _annotation_stem
from isslide.plan import fmt
from isslide.preflight import preflight, stages_from_command_line


def _configfile_name():
    files = [str(f) for f in getattr(workflow, "configfiles", [])]
    return files[-1] if files else "config"


def _fail(exc):
    # One line, non-zero exit, before any job runs.
    print(f"isslide: {exc}", file=sys.stderr)
    sys.exit(1)


# Validated once, against the schema shipped in the package (which fills in the defaults).
try:
    validate_config(config, source=_configfile_name())
except IsslideError as exc:
    _fail(exc)


# Every check that can be made before the first job (the same as `isslide check-config`).
try:
    PLAN = preflight(
        config, base=os.getcwd(), stages=stages_from_command_line(sys.argv)
    )
except IsslideError as exc:
    _fail(exc)

for _stack in PLAN.values():
    for _line in _stack.report():
        logger.warning(f"isslide: {_line}")

BACKEND = config["backend"]

# SNAP: ask gpt what it is (gpt --diag) once, before any job; refuse a disagreeing snap.version.
# Skipped when Snakemake re-parses this file inside a job (the job asks gpt itself).
SNAP_INSTALL = None
SNAP_STEPS = ()
if BACKEND == "snap":
    from isslide.snap.chain import recipe_steps
    from isslide.snap.install import planning_check

    SNAP_STEPS = recipe_steps(config["snap"]["recipe"])
    if workflow.is_main_process:
        try:
            _snap = planning_check(config)
        except IsslideError as exc:
            _fail(exc)
        SNAP_INSTALL = _snap.params
        if _snap.summary:
            logger.info(f"isslide: {_snap.summary}")
        for _line in _snap.warnings:
            logger.warning(f"isslide: {_line}")
SIMULATED = sorted(n for n, s in PLAN.items() if s.source == "simulated")
# A regex no stack name can match, so rules for simulated stacks never claim real data.
SIMULATED_RE = "|".join(SIMULATED) if SIMULATED else "(?!)"
INSAR_ENV = "../../envs/snap.yaml" if BACKEND == "snap" else "../../envs/geo.yaml"
ANNOTATIONS = config["annotations"]["directory"]
ANNOTATION_EXT = config["annotations"]["extension"]
SYNTH = "resources/synthetic"
WORK = "results/work"
IFG = "results/interferograms"


wildcard_constraints:
    stack="|".join(sorted(PLAN)),
    delay=r"\d+",
    date=r"\d{8}",
    reference=r"\d{8}",
    secondary=r"\d{8}",


PAIR = "{stack}/{delay}d/{reference}_{secondary}"


def all_pairs():
    return [p for s in PLAN.values() for p in s.pairs]


def pair_paths(pattern):
    """Expand a pattern with {stack}, {delay}, {reference}, {secondary} over the planned pairs."""
    return [pattern.format(**p.wildcards) for p in all_pairs()]


def interferogram_targets():
    return pair_paths(f"{IFG}/{PAIR}/coherence.tif") + pair_paths(
        f"{IFG}/{PAIR}/phase.tif"
    )


def annotation_stem(stack, delay, reference, secondary):
    """The annotation file of a pair, without extension (a pattern when given wildcards)."""
    return _annotation_stem(ANNOTATIONS, stack, delay, reference, secondary)


def stack_dates(stack):
    return [fmt(d) for d in PLAN[stack].dates]


# --- simulation stage ----------------------------------------------------------------------


def simulation_scene_input(wildcards):
    """The source DEM file is an input, so replacing it re-simulates the scene."""
    dem = config["simulation"]["dem"]
    return {"source_dem": dem} if dem and os.path.exists(dem) else {}


def canonical(obj):
    """Mappings with sorted keys, recursively: params that do not change when a config file's
    keys are reordered (Snakemake compares params by repr, so key order would rerun jobs).
    """
    if isinstance(obj, dict):
        return {k: canonical(obj[k]) for k in sorted(obj)}
    if isinstance(obj, (list, tuple)):
        return [canonical(v) for v in obj]
    return obj


def simulation_time_axis():
    """Origin and step of a simulated stack's time axis (never dates.end)."""
    return {"start": config["dates"]["start"], "revisit_days": config["revisit_days"]}


def simulation_scene_params(wildcards):
    """The whole world but no date list: extending dates.end never reruns the scene."""
    return canonical(
        {
            "simulation": config["simulation"],
            "insar": config["insar"],
            "seed": config["seed"],
            "stack": config["stacks"][wildcards.sim_stack],
            **simulation_time_axis(),
        }
    )


def simulation_acquisition_params(wildcards):
    """One acquisition needs its date (the wildcard), the scene (input) and the time axis."""
    return canonical(simulation_time_axis())


def simulation_annotations_params(wildcards):
    """Repetition counts depend on all planned dates and delays (not an InSAR input)."""
    return canonical(
        {
            **simulation_scene_params(wildcards),
            "dates": stack_dates(wildcards.sim_stack),
            "delays": config["delays"],
        }
    )


# --- InSAR stage -----------------------------------------------------------------------------


PRODUCT_SUFFIX = ".snap" if BACKEND == "snap" else ".tif"


def product_path(path):
    """Path of an intermediate InSAR product: a GeoTIFF (embedded) or a DIMAP folder (SNAP)."""
    return f"{path}{PRODUCT_SUFFIX}"


def product(path, keep=False):
    """Output declaration of an intermediate InSAR product: temporary, except the per-date
    orbit-corrected products (keep=True), which later pairs reuse when acquisitions are added.
    """
    out = directory(product_path(path)) if BACKEND == "snap" else product_path(path)
    return out if keep else temp(out)


def insar_params(wildcards):
    """Only what the backend uses, so unrelated config edits never rerun InSAR jobs."""
    params = {"insar": config["insar"], "backend": BACKEND}
    if BACKEND == "snap":
        stack = config["stacks"][wildcards.stack]
        params["snap"] = config["snap"]
        params["stack"] = {k: stack[k] for k in ("subswaths", "aoi", "track", "pass")}
        if SNAP_INSTALL:
            params["snap_install"] = SNAP_INSTALL
    return params


def calibrate_input(wildcards):
    if BACKEND == "snap":
        date = next(d for d in PLAN[wildcards.stack].dates if fmt(d) == wildcards.date)
        return {"products": [p.path for p in PLAN[wildcards.stack].products[date]]}
    return {
        "slc": f"{SYNTH}/{wildcards.stack}/slc/{wildcards.date}.tif",
        "metadata": f"{SYNTH}/{wildcards.stack}/slc/{wildcards.date}.json",
    }


def dem_input(wildcards):
    if BACKEND == "snap":
        dem = config["snap"].get("dem", {}).get("external_file")
        return {"dem": dem} if dem else {}
    return {"dem": f"{SYNTH}/{wildcards.stack}/dem.tif"}


def coregister_input(wildcards):
    inputs = {
        "reference": product_path(
            f"{WORK}/{wildcards.stack}/orbit/{wildcards.reference}"
        ),
        "secondary": product_path(
            f"{WORK}/{wildcards.stack}/orbit/{wildcards.secondary}"
        ),
    }
    inputs.update(dem_input(wildcards))
    return inputs


def pair_step_input(previous, dem=False):
    """Input function: the previous per-pair product (and the DEM where the step needs it)."""

    def inputs(wildcards):
        out = {"product": product_path(f"{WORK}/{PAIR}/{previous}".format(**wildcards))}
        if dem:
            out.update(dem_input(wildcards))
        return out

    return inputs


# SNAP recipe isslide: Interferogram removes the topographic phase (DEM input), and there is
# no remove_topographic_phase rule (insar.smk), so goldstein reads the interferogram.
TOPO_IN_INTERFEROGRAM = (
    BACKEND == "snap" and "remove_topographic_phase" not in SNAP_STEPS
)
interferogram_input = pair_step_input("coregistered", dem=TOPO_IN_INTERFEROGRAM)
topo_input = pair_step_input("interferogram", dem=True)
goldstein_input = pair_step_input(
    "interferogram" if TOPO_IN_INTERFEROGRAM else "topo_removed"
)
multilook_input = pair_step_input("goldstein")
terrain_correct_input = pair_step_input("multilooked", dem=True)


# --- dataset stage (labels, centres, patches, raw and ready datasets) --------------------------


LABELS = "results/labels"
SHAPEFILE_PARTS = [".shp", ".shx", ".dbf", ".prj", ".cpg"]


def annotation_path(wildcards):
    stem = annotation_stem(
        wildcards.stack, wildcards.delay, wildcards.reference, wildcards.secondary
    )
    return f"{stem}.{ANNOTATION_EXT}"


def annotation_inputs(wildcards):
    """The annotation file set of a pair: made by the simulator (simulated stacks) or found on
    disk. Absent files are left to the job, which fails with a one-line message unless
    annotations.missing is no_motion."""
    path = annotation_path(wildcards)
    if ANNOTATION_EXT == "shp":
        stem = path[: -len(".shp")]
        if PLAN[wildcards.stack].source == "simulated":
            return [f"{stem}{ext}" for ext in SHAPEFILE_PARTS]
        parts = [f"{stem}{ext}" for ext in [*SHAPEFILE_PARTS, ".qpj"]]
        return [p for p in parts if os.path.exists(p)]
    if PLAN[wildcards.stack].source == "simulated" or os.path.exists(path):
        return [path]
    return []


def rasterize_input(wildcards):
    pair = f"{IFG}/{PAIR}".format(**wildcards)
    return {
        "annotation": annotation_inputs(wildcards),
        "layover_shadow": f"{pair}/layover_shadow.tif",
        "coherence": f"{pair}/coherence.tif",
        "phase": f"{pair}/phase.tif",
    }


DATASET = "results/dataset"
READY = f"{DATASET}/ready"


def stack_pair_paths(stack, pattern):
    return [pattern.format(**p.wildcards) for p in PLAN[stack].pairs]


def stack_pairs(wildcards):
    """The pairs of a stack as dicts (delay, reference, secondary), in plan order."""
    return [
        {k: p.wildcards[k] for k in ("delay", "reference", "secondary")}
        for p in PLAN[wildcards.stack].pairs
    ]


def stack_zones(wildcards):
    return config["stacks"][wildcards.stack]["zones"]


def centres_input(wildcards):
    return {"labels": stack_pair_paths(wildcards.stack, f"{LABELS}/{PAIR}.tif")}


TRUTH = "{stack}/truth/{delay}d/{reference}_{secondary}"


def patches_input(wildcards):
    """Patches' inputs; a simulated stack adds the simulator's truth rasters (store members
    truth and decoy, docs/dataset.md)."""
    s = wildcards.stack
    inputs = {
        "centres": f"{DATASET}/centres/{s}.gpkg",
        "coherence": stack_pair_paths(s, f"{IFG}/{PAIR}/coherence.tif"),
        "phase": stack_pair_paths(s, f"{IFG}/{PAIR}/phase.tif"),
        "labels": stack_pair_paths(s, f"{LABELS}/{PAIR}.tif"),
    }
    if PLAN[s].source == "simulated":
        for key, suffix in (
            ("truth_deformation", "deformation"),
            ("truth_valid", "valid"),
            ("decoys", "decoys"),
        ):
            inputs[key] = stack_pair_paths(s, f"{SYNTH}/{TRUTH}_{suffix}.tif")
    return inputs


def truth_visibility(wildcards):
    """The annotators' visibility threshold (rad): the truth rule of the dataset's truth."""
    if PLAN[wildcards.stack].source != "simulated":
        return None
    return config["simulation"]["annotations"]["visibility_rad"]


def stack_grid(wildcards):
    """One label raster of the stack: the grid (CRS, pixel size) of its patches."""
    return stack_pair_paths(wildcards.stack, f"{LABELS}/{PAIR}.tif")[0]


def stack_annotation_paths(wildcards):
    return [
        annotation_path(Wildcards(p.wildcards)) for p in PLAN[wildcards.stack].pairs
    ]


def stack_annotation_inputs(wildcards):
    files = []
    for p in PLAN[wildcards.stack].pairs:
        files.extend(annotation_inputs(Wildcards(p.wildcards)))
    return files


def raw_input(wildcards):
    s = wildcards.stack
    return {
        "coherence": stack_pair_paths(s, f"{IFG}/{PAIR}/coherence.tif"),
        "phase": stack_pair_paths(s, f"{IFG}/{PAIR}/phase.tif"),
        "layover_shadow": stack_pair_paths(s, f"{IFG}/{PAIR}/layover_shadow.tif"),
        "labels": stack_pair_paths(s, f"{LABELS}/{PAIR}.tif"),
        "annotations": stack_annotation_inputs(wildcards),
    }


class Wildcards(dict):
    """Attribute access to a pair's wildcards, for input functions called outside a job."""

    __getattr__ = dict.__getitem__


def dataset_targets():
    stacks = sorted(PLAN)
    per_stack = [
        [
            f"{DATASET}/centres/{s}.gpkg",
            f"{DATASET}/raw/{s}",
            f"{READY}/isslide/{s}/patches.csv",
        ]
        for s in stacks
    ]
    return [f for files in per_stack for f in files] + (
        [
            f"{READY}/train.npz",
            f"{READY}/val.npz",
            f"{READY}/eval.npz",
            f"{READY}/index.csv",
            f"{DATASET}/manifest.json",
            f"{DATASET}/manifest.csv",
        ]
    )


# --- training and evaluation stage ----------------------------------------------------------


from isslide.models import REGISTRY, model_training_config

STORE_DIR = "results/dataset/ready"
MODELS_DIR = "results/models"
EVAL_DIR = "results/evaluation"


wildcard_constraints:
    model="|".join(REGISTRY),


def trained_models():
    return list(config["training"]["models"])


def training_seed():
    seed = config["training"]["seed"]
    return config["seed"] if seed is None else seed


def gpu_request(wildcards):
    return 0 if config["training"]["device"] == "cpu" else 1


def training_params(wildcards):
    """Only what shapes this model's training, so unrelated config edits never retrain it
    (and the two evaluation keys its threshold choice on val.npz uses: changing them reruns the
    rule, which resumes the finished checkpoint and only re-chooses the thresholds)."""
    return {
        "training": model_training_config(wildcards.model, config["training"]),
        "evaluation": {
            k: config["evaluation"][k] for k in ("n_thresholds", "motion_only")
        },
        "seed": training_seed(),
    }


def evaluation_params(wildcards):
    training = config["training"]
    return {
        "training": {
            "device": training["device"],
            "amp": training["amp"],
        },
        "evaluation": {
            k: config["evaluation"][k]
            for k in ("batch_size", "n_thresholds", "motion_only", "min_images")
        },
    }


def evaluation_targets():
    if not trained_models():
        return []
    return [
        f"{EVAL_DIR}/table.csv",
        f"{EVAL_DIR}/table.md",
        f"{EVAL_DIR}/figures/figure3.png",
        f"{EVAL_DIR}/figures/training_curves.png",
        f"{EVAL_DIR}/figures/pr_curves.png",
    ]


def all_metrics(wildcards):
    return [f"{EVAL_DIR}/{m}/metrics.json" for m in trained_models()]


def figure_inputs(wildcards):
    models = trained_models()
    return {
        "train": f"{STORE_DIR}/train.npz",
        "eval": f"{STORE_DIR}/eval.npz",
        "index": f"{STORE_DIR}/index.csv",
        "predictions": [f"{EVAL_DIR}/{m}/predictions.npz" for m in models],
        "metrics": [f"{EVAL_DIR}/{m}/metrics.json" for m in models],
        "histories": [f"{MODELS_DIR}/{m}/history.csv" for m in models],
    }


# --- interferograms made elsewhere (stacks with source interferograms) ----------------------


from isslide.interferograms import pair_files
from isslide.interferograms import stack_grid as footprint_grid

IMPORTED = sorted(n for n, s in PLAN.items() if s.source == "interferograms")
IMPORTED_RE = "|".join(IMPORTED) if IMPORTED else "(?!)"
_GRIDS = {}


def import_input(wildcards):
    """The pair's phase, coherence (and layover/shadow) files, as the patterns name them."""
    keys = ("stack", "delay", "reference", "secondary")
    want = {k: wildcards[k] for k in keys}
    pair = next(p for p in PLAN[wildcards.stack].pairs if p.wildcards == want)
    return pair_files(wildcards.stack, config["stacks"][wildcards.stack], pair)


def imported_grid(stack):
    """The stack's EPSG:4326 grid (headers of its phase files; one grid for all its pairs)."""
    if stack not in _GRIDS:
        cfg = config["stacks"][stack]["interferograms"]
        phases = [
            pair_files(stack, config["stacks"][stack], p)["phase"]
            for p in PLAN[stack].pairs
        ]
        try:
            _GRIDS[stack] = footprint_grid(
                phases, config["insar"]["pixel_spacing_deg"], cfg["bbox"]
            )
        except IsslideError as exc:
            _fail(exc)
    return _GRIDS[stack]


def import_params(wildcards):
    cfg = config["stacks"][wildcards.stack]["interferograms"]
    return {
        "grid": imported_grid(wildcards.stack),
        "coherence_scale": cfg["coherence_scale"],
    }


# --- detection on whole interferograms -------------------------------------------------------


DETECTION = config["detection"]
DETECTIONS = "results/detections"


def detection_model_dirs():
    """Model folders detection chooses from: the trained ones (best) or the one given."""
    if DETECTION["model"] == "best":
        return [f"{MODELS_DIR}/{m}" for m in trained_models()]
    return [DETECTION["model"].rstrip("/")]


def detection_score_files():
    """Files the choice and threshold are read from (isslide.detect.models)."""
    if DETECTION["model"] == "best":
        return [f"{MODELS_DIR}/{m}/thresholds.json" for m in trained_models()]
    from isslide.detect.models import THRESHOLDS, evaluation_metrics_path

    folder = detection_model_dirs()[0]
    files = [f"{folder}/{THRESHOLDS}", evaluation_metrics_path(folder)]
    return [f for f in files if os.path.exists(f)]


def detection_model_input(wildcards):
    return {
        "models": [f"{d}/model.pt" for d in detection_model_dirs()],
        "scores": detection_score_files(),
    }


def detect_input(wildcards):
    pair = f"{IFG}/{PAIR}".format(**wildcards)
    return {
        "choice": f"{DETECTIONS}/model.json",
        "models": [f"{d}/model.pt" for d in detection_model_dirs()],
        "phase": f"{pair}/phase.tif",
        "coherence": f"{pair}/coherence.tif",
        "layover_shadow": f"{pair}/layover_shadow.tif",
    }


def detection_params(wildcards):
    return {k: DETECTION[k] for k in ("stride", "min_size", "batch_size", "device")}


def detection_gpu(wildcards):
    return 0 if DETECTION["device"] == "cpu" else 1


def stack_detection_input(wildcards):
    return stack_pair_paths(wildcards.stack, f"{WORK}/detections/{PAIR}.gpkg")


def detection_targets():
    """Every interferogram's detection folder and each stack's candidates (when a model is
    available: detection.model is a folder, or training.models is not empty)."""
    if not detection_model_dirs():
        return []
    files = []
    for name in ("probability.tif", "mask.tif", "candidates.gpkg", "detection.json"):
        files += pair_paths(f"{DETECTIONS}/{PAIR}/{name}")
    return files + [f"{DETECTIONS}/{s}/candidates.gpkg" for s in sorted(PLAN)]
