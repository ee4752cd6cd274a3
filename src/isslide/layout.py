"""The workflow's path layout: every folder and per-pair pattern, spelled once.

The rules (``workflow/rules/*.smk``), :mod:`isslide.workflow` and the backends' per-step inputs
use these names; README "Outputs" documents them.
"""

from __future__ import annotations

SYNTH = "resources/synthetic"  # the simulated world and its truth (embedded backend)
RESULTS = "results"
WORK = f"{RESULTS}/work"  # intermediates (temporary, except per-date orbit products)
IFG = f"{RESULTS}/interferograms"
LABELS = f"{RESULTS}/labels"
DATASET = f"{RESULTS}/dataset"
READY = f"{DATASET}/ready"
MODELS = f"{RESULTS}/models"
EVALUATION = f"{RESULTS}/evaluation"
FIGURES = f"{EVALUATION}/figures"
DETECTIONS = f"{RESULTS}/detections"
REPORT = f"{RESULTS}/report"  # figures gathered for the Snakemake report
LOGS = "logs"
BENCHMARKS = "benchmarks"

PAIR = "{stack}/{delay}d/{reference}_{secondary}"
TRUTH = "{stack}/truth/{delay}d/{reference}_{secondary}"
SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
