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


def simulation_params(wildcards):
    return {
        "simulation": config["simulation"],
        "insar": config["insar"],
        "seed": config["seed"],
        "stack": config["stacks"][wildcards.sim_stack],
        "dates": stack_dates(wildcards.sim_stack),
        "delays": config["delays"],
    }


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


def dataset_targets():
    return []


# --- training and evaluation stage ----------------------------------------------------------


def evaluation_targets():
    return []
