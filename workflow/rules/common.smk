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

from snakemake.utils import validate

from isslide.config import check_config
from isslide.errors import IsslideError
from isslide.plan import fmt, plan_stacks


def _configfile_name():
    files = [str(f) for f in getattr(workflow, "configfiles", [])]
    return files[-1] if files else "config"


def _fail(exc):
    # One line, non-zero exit, before any job runs.
    print(f"isslide: {exc}", file=sys.stderr)
    sys.exit(1)


try:
    check_config(config, source=_configfile_name())
except IsslideError as exc:
    _fail(exc)

validate(config, "../schemas/config.schema.yaml")

try:
    PLAN = plan_stacks(config, base=os.getcwd())
except IsslideError as exc:
    _fail(exc)

for _stack in PLAN.values():
    for _line in _stack.report():
        logger.warning(f"isslide: {_line}")

BACKEND = config["backend"]
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
    return f"{ANNOTATIONS}/{stack}/{delay}d/{reference}_{secondary}"


def stack_dates(stack):
    return [fmt(d) for d in PLAN[stack].dates]


def log_path(rule, name):
    return f"logs/{rule}/{name}.log"


def bench_path(rule, name):
    return f"benchmarks/{rule}/{name}.tsv"


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


def pair_step_input(previous):
    """Input function: the previous per-pair product (and the DEM where the step needs it)."""

    def inputs(wildcards):
        out = {"product": product_path(f"{WORK}/{PAIR}/{previous}".format(**wildcards))}
        if previous in ("interferogram", "multilooked"):
            out.update(dem_input(wildcards))
        return out

    return inputs


interferogram_input = pair_step_input("coregistered")
topo_input = pair_step_input("interferogram")
goldstein_input = pair_step_input("topo_removed")
multilook_input = pair_step_input("goldstein")
terrain_correct_input = pair_step_input("multilooked")


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


from isslide.models import REGISTRY, get_spec, model_training_config

STORE_DIR = "results/dataset/ready"
MODELS_DIR = "results/models"
EVAL_DIR = "results/evaluation"

try:
    for _name in list(config["training"]["models"]) + list(
        config["training"]["per_model"]
    ):
        get_spec(_name)
except IsslideError as exc:
    _fail(exc)


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
