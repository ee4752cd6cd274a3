# Helpers of the label and dataset rules (constants, input functions, targets), kept apart
# from the rules as Snakemake's linter asks. Included by labels.smk.


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


def patches_input(wildcards):
    s = wildcards.stack
    return {
        "centres": f"{DATASET}/centres/{s}.gpkg",
        "coherence": stack_pair_paths(s, f"{IFG}/{PAIR}/coherence.tif"),
        "phase": stack_pair_paths(s, f"{IFG}/{PAIR}/phase.tif"),
        "labels": stack_pair_paths(s, f"{LABELS}/{PAIR}.tif"),
    }


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
            f"{READY}/eval.npz",
            f"{READY}/index.csv",
            f"{DATASET}/manifest.json",
            f"{DATASET}/manifest.csv",
        ]
    )
