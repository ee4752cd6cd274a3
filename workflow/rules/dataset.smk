# Patch centres, the ready-to-use and raw datasets, the split and the manifest (isslide.dataset).
# Per stack: patch_centres -> extract_patches (store + index) -> isslide_layout; raw_dataset.
# Across stacks: assemble_dataset (train.npz, eval.npz, index.csv) -> dataset_manifest.

DATASET = "results/dataset"
READY = DATASET + "/ready"


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
    return {"labels": stack_pair_paths(wildcards.stack, LABELS + "/" + PAIR + ".tif")}


def patches_input(wildcards):
    s = wildcards.stack
    return {
        "centres": f"{DATASET}/centres/{s}.gpkg",
        "coherence": stack_pair_paths(s, IFG + "/" + PAIR + "/coherence.tif"),
        "phase": stack_pair_paths(s, IFG + "/" + PAIR + "/phase.tif"),
        "labels": stack_pair_paths(s, LABELS + "/" + PAIR + ".tif"),
    }


def stack_grid(wildcards):
    """One label raster of the stack: the grid (CRS, pixel size) of its patches."""
    return stack_pair_paths(wildcards.stack, LABELS + "/" + PAIR + ".tif")[0]


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
        "coherence": stack_pair_paths(s, IFG + "/" + PAIR + "/coherence.tif"),
        "phase": stack_pair_paths(s, IFG + "/" + PAIR + "/phase.tif"),
        "layover_shadow": stack_pair_paths(s, IFG + "/" + PAIR + "/layover_shadow.tif"),
        "labels": stack_pair_paths(s, LABELS + "/" + PAIR + ".tif"),
        "annotations": stack_annotation_inputs(wildcards),
    }


class Wildcards(dict):
    """Attribute access to a pair's wildcards, for input functions called outside a job."""

    __getattr__ = dict.__getitem__


def dataset_targets():
    stacks = sorted(PLAN)
    return (
        [f"{DATASET}/centres/{s}.gpkg" for s in stacks]
        + [f"{DATASET}/raw/{s}" for s in stacks]
        + [f"{READY}/isslide/{s}/patches.csv" for s in stacks]
        + [
            READY + "/train.npz",
            READY + "/eval.npz",
            READY + "/index.csv",
            DATASET + "/manifest.json",
            DATASET + "/manifest.csv",
        ]
    )


rule patch_centres:
    input:
        unpack(centres_input),
    output:
        centres=DATASET + "/centres/{stack}.gpkg",
    log:
        "logs/patch_centres/{stack}.log",
    benchmark:
        "benchmarks/patch_centres/{stack}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        zones=stack_zones,
        min_separation=config["dataset"]["min_separation"],
    script:
        "../scripts/patch_centres.py"


rule extract_patches:
    input:
        unpack(patches_input),
    output:
        store=READY + "/stacks/{stack}.npz",
        index=READY + "/stacks/{stack}.csv",
    log:
        "logs/extract_patches/{stack}.log",
    benchmark:
        "benchmarks/extract_patches/{stack}.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        pairs=stack_pairs,
        patch_size=config["dataset"]["patch_size"],
    script:
        "../scripts/extract_patches.py"


rule isslide_layout:
    input:
        store=READY + "/stacks/{stack}.npz",
        index=READY + "/stacks/{stack}.csv",
        grid=stack_grid,
    output:
        listing=READY + "/isslide/{stack}/patches.csv",
    log:
        "logs/isslide_layout/{stack}.log",
    benchmark:
        "benchmarks/isslide_layout/{stack}.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        directory=READY + "/isslide/{stack}",
    script:
        "../scripts/isslide_layout.py"


rule assemble_dataset:
    input:
        stores=expand(READY + "/stacks/{stack}.npz", stack=sorted(PLAN)),
        indexes=expand(READY + "/stacks/{stack}.csv", stack=sorted(PLAN)),
    output:
        train=READY + "/train.npz",
        eval=READY + "/eval.npz",
        index=READY + "/index.csv",
    log:
        "logs/assemble_dataset/assemble_dataset.log",
    benchmark:
        "benchmarks/assemble_dataset/assemble_dataset.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        stacks=sorted(PLAN),
        eval_fraction=config["dataset"]["eval_fraction"],
        motion_only=config["dataset"]["motion_only"],
        seed=config["seed"],
    script:
        "../scripts/assemble_dataset.py"


rule raw_dataset:
    input:
        unpack(raw_input),
    output:
        raw=directory(DATASET + "/raw/{stack}"),
    log:
        "logs/raw_dataset/{stack}.log",
    benchmark:
        "benchmarks/raw_dataset/{stack}.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        pairs=stack_pairs,
        annotations=stack_annotation_paths,
    script:
        "../scripts/raw_dataset.py"


rule dataset_manifest:
    input:
        index=READY + "/index.csv",
        raw=expand(DATASET + "/raw/{stack}", stack=sorted(PLAN)),
        centres=expand(DATASET + "/centres/{stack}.gpkg", stack=sorted(PLAN)),
    output:
        json=DATASET + "/manifest.json",
        csv=DATASET + "/manifest.csv",
    log:
        "logs/dataset_manifest/dataset_manifest.log",
    params:
        stacks=sorted(PLAN),
    script:
        "../scripts/dataset_manifest.py"
