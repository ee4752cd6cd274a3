# The eight InSAR steps (same rule names for both backends; config "backend" picks the code).
# Per acquisition: calibrate -> apply_orbit. Per pair: coregister -> interferogram ->
# remove_topographic_phase -> goldstein -> multilook -> terrain_correct.
# With snap.recipe isslide there is no remove_topographic_phase (goldstein reads the interferogram).
# Intermediates are temp(): embedded products are GeoTIFFs (metadata in a tag), SNAP products
# are BEAM-DIMAP folders (*.snap/ with product.dim + product.data). Input functions: common.smk.


rule calibrate:
    input:
        unpack(calibrate_input),
    output:
        product=product(f"{WORK}/{{stack}}/calibrated/{{date}}"),
    log:
        "logs/calibrate/{stack}/{date}.log",
    benchmark:
        "benchmarks/calibrate/{stack}/{date}.tsv"
    conda:
        INSAR_ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        step="calibrate",
        cfg=insar_params,
    script:
        "../scripts/insar_step.py"


rule apply_orbit:
    input:
        product=product_path(f"{WORK}/{{stack}}/calibrated/{{date}}"),
    output:
        product=product(f"{WORK}/{{stack}}/orbit/{{date}}", keep=True),
    log:
        "logs/apply_orbit/{stack}/{date}.log",
    benchmark:
        "benchmarks/apply_orbit/{stack}/{date}.tsv"
    conda:
        INSAR_ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        step="apply_orbit",
        cfg=insar_params,
    script:
        "../scripts/insar_step.py"


# --- snap.fuse (SNAP backend only) ---------------------------------------------------------
# One gpt graph per pair instead of five rules: with snap.fuse the per-pair intermediate rules
# (coregister ... multilook) are not defined, and terrain_correct takes the two orbit-corrected
# acquisitions (coregister_input) and runs the fused graph (isslide.snap.chain.fused_graph).

if not FUSED:

    rule coregister:
        input:
            unpack(coregister_input),
        output:
            product=product(f"{WORK}/{PAIR}/coregistered"),
        log:
            "logs/coregister/{stack}/{delay}d/{reference}_{secondary}.log",
        benchmark:
            "benchmarks/coregister/{stack}/{delay}d/{reference}_{secondary}.tsv"
        conda:
            INSAR_ENV
        threads: 2
        resources:
            mem_mb=8000,
            runtime=120,
        params:
            step="coregister",
            cfg=insar_params,
        script:
            "../scripts/insar_step.py"

    rule interferogram:
        input:
            unpack(interferogram_input),
        output:
            product=product(f"{WORK}/{PAIR}/interferogram"),
        log:
            "logs/interferogram/{stack}/{delay}d/{reference}_{secondary}.log",
        benchmark:
            "benchmarks/interferogram/{stack}/{delay}d/{reference}_{secondary}.tsv"
        conda:
            INSAR_ENV
        threads: 2
        resources:
            mem_mb=6000,
            runtime=60,
        params:
            step="interferogram",
            cfg=insar_params,
        script:
            "../scripts/insar_step.py"


# --- not with snap.recipe isslide (Interferogram removes the topographic phase) -----------


if not FUSED and not TOPO_IN_INTERFEROGRAM:

    rule remove_topographic_phase:
        input:
            unpack(topo_input),
        output:
            product=product(f"{WORK}/{PAIR}/topo_removed"),
        log:
            "logs/remove_topographic_phase/{stack}/{delay}d/{reference}_{secondary}.log",
        benchmark:
            "benchmarks/remove_topographic_phase/{stack}/{delay}d/{reference}_{secondary}.tsv"
        conda:
            INSAR_ENV
        threads: 2
        resources:
            mem_mb=6000,
            runtime=60,
        params:
            step="remove_topographic_phase",
            cfg=insar_params,
        script:
            "../scripts/insar_step.py"


if not FUSED:

    rule goldstein:
        input:
            unpack(goldstein_input),
        output:
            product=product(f"{WORK}/{PAIR}/goldstein"),
        log:
            "logs/goldstein/{stack}/{delay}d/{reference}_{secondary}.log",
        benchmark:
            "benchmarks/goldstein/{stack}/{delay}d/{reference}_{secondary}.tsv"
        conda:
            INSAR_ENV
        threads: 2
        resources:
            mem_mb=6000,
            runtime=60,
        params:
            step="goldstein",
            cfg=insar_params,
        script:
            "../scripts/insar_step.py"

    rule multilook:
        input:
            unpack(multilook_input),
        output:
            product=product(f"{WORK}/{PAIR}/multilooked"),
        log:
            "logs/multilook/{stack}/{delay}d/{reference}_{secondary}.log",
        benchmark:
            "benchmarks/multilook/{stack}/{delay}d/{reference}_{secondary}.tsv"
        conda:
            INSAR_ENV
        threads: 1
        resources:
            mem_mb=4000,
            runtime=30,
        params:
            step="multilook",
            cfg=insar_params,
        script:
            "../scripts/insar_step.py"


# --- end of the snap.fuse conditional -------------------------------------------------------


rule terrain_correct:
    input:
        unpack(coregister_input if FUSED else terrain_correct_input),
    output:
        coherence=f"{IFG}/{PAIR}/coherence.tif",
        phase=f"{IFG}/{PAIR}/phase.tif",
        layover_shadow=f"{IFG}/{PAIR}/layover_shadow.tif",
    log:
        "logs/terrain_correct/{stack}/{delay}d/{reference}_{secondary}.log",
    benchmark:
        "benchmarks/terrain_correct/{stack}/{delay}d/{reference}_{secondary}.tsv"
    conda:
        INSAR_ENV
    threads: 4 if FUSED else 2
    resources:
        mem_mb=16000 if FUSED else 4000,
        runtime=240 if FUSED else 60,
    params:
        step="terrain_correct",
        cfg=insar_params,
    script:
        "../scripts/insar_step.py"
