# Patch centres, the ready-to-use and raw datasets, the split and the manifest (isslide.dataset).
# Per stack: patch_centres -> extract_patches (store + index) -> isslide_layout; raw_dataset.
# Across stacks: assemble_dataset (train.npz, val.npz, eval.npz, index.csv) -> dataset_manifest;
# temporal_index (temporal.csv: the multi-temporal samples, when a temporal model is trained).


rule patch_centres:
    input:
        unpack(centres_input),
    output:
        centres=f"{DATASET}/centres/{{stack}}.gpkg",
    log:
        "logs/patch_centres/{stack}.log",
    benchmark:
        "benchmarks/patch_centres/{stack}.tsv"
    conda:
        "../../envs/geo.yaml"
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
        store=f"{READY}/stacks/{{stack}}.npz",
        index=f"{READY}/stacks/{{stack}}.csv",
    log:
        "logs/extract_patches/{stack}.log",
    benchmark:
        "benchmarks/extract_patches/{stack}.tsv"
    conda:
        "../../envs/geo.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        pairs=stack_pairs,
        patch_size=config["dataset"]["patch_size"],
        visibility_rad=truth_visibility,
    script:
        "../scripts/extract_patches.py"


rule isslide_layout:
    input:
        store=f"{READY}/stacks/{{stack}}.npz",
        index=f"{READY}/stacks/{{stack}}.csv",
        grid=stack_grid,
    output:
        listing=f"{READY}/isslide/{{stack}}/patches.csv",
    log:
        "logs/isslide_layout/{stack}.log",
    benchmark:
        "benchmarks/isslide_layout/{stack}.tsv"
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        directory=f"{READY}/isslide/{{stack}}",
    script:
        "../scripts/isslide_layout.py"


rule assemble_dataset:
    input:
        stores=expand(f"{READY}/stacks/{{stack}}.npz", stack=sorted(PLAN)),
        indexes=expand(f"{READY}/stacks/{{stack}}.csv", stack=sorted(PLAN)),
    output:
        train=f"{READY}/train.npz",
        val=f"{READY}/val.npz",
        eval=f"{READY}/eval.npz",
        index=f"{READY}/index.csv",
    log:
        "logs/assemble_dataset/assemble_dataset.log",
    benchmark:
        "benchmarks/assemble_dataset/assemble_dataset.tsv"
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        stacks=sorted(PLAN),
        eval_fraction=config["dataset"]["eval_fraction"],
        val_fraction=config["dataset"]["val_fraction"],
        motion_only=config["dataset"]["motion_only"],
        split_rule=config["dataset"]["split_rule"],
        seed=config["seed"],
    script:
        "../scripts/assemble_dataset.py"


rule temporal_index:
    input:
        index=f"{READY}/index.csv",
    output:
        csv=f"{READY}/temporal.csv",
        json=f"{READY}/temporal.json",
    log:
        "logs/temporal_index/temporal_index.log",
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        temporal=config["temporal"],
        delays=config["delays"],
        revisit_days=config["revisit_days"],
    script:
        "../scripts/temporal_index.py"


rule raw_dataset:
    input:
        unpack(raw_input),
    output:
        raw=directory(f"{DATASET}/raw/{{stack}}"),
    log:
        "logs/raw_dataset/{stack}.log",
    benchmark:
        "benchmarks/raw_dataset/{stack}.tsv"
    conda:
        "../../envs/geo.yaml"
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
        index=f"{READY}/index.csv",
        raw=expand(f"{DATASET}/raw/{{stack}}", stack=sorted(PLAN)),
        centres=expand(f"{DATASET}/centres/{{stack}}.gpkg", stack=sorted(PLAN)),
        temporal=temporal_manifest_input,
    output:
        json=f"{DATASET}/manifest.json",
        csv=report(
            f"{DATASET}/manifest.csv",
            caption="../report/manifest.rst",
            category="Dataset",
            labels={"table": "manifest"},
        ),
    log:
        "logs/dataset_manifest/dataset_manifest.log",
    conda:
        "../../envs/geo.yaml"
    params:
        stacks=sorted(PLAN),
        notes=[line for name in sorted(PLAN) for line in PLAN[name].report()],
    script:
        "../scripts/dataset_manifest.py"
