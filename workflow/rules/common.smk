# Shared helpers: config validation, the acquisition/pair plan, path builders, input functions.
import os
import sys

sys.path.insert(0, os.path.join(workflow.basedir, "src"))

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
    return pair_paths(IFG + "/" + PAIR + "/coherence.tif") + pair_paths(
        IFG + "/" + PAIR + "/phase.tif"
    )


def stack_dates(stack):
    return [fmt(d) for d in PLAN[stack].dates]


def log_path(rule, name):
    return f"logs/{rule}/{name}.log"


def bench_path(rule, name):
    return f"benchmarks/{rule}/{name}.tsv"
