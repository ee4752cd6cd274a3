# The eight InSAR steps (same rule names for both backends; config "backend" picks the code).
# Per acquisition: calibrate -> apply_orbit. Per pair: coregister -> interferogram ->
# remove_topographic_phase -> goldstein -> multilook -> terrain_correct.
# Intermediates are temp(): embedded products are complex GeoTIFFs (metadata in tags),
# SNAP products are BEAM-DIMAP folders (*.snap/product.dim + product.data).


def product(path):
    if BACKEND == "snap":
        return temp(directory(path + ".snap"))
    return temp(path + ".tif")


def product_path(path):
    return path + (".snap" if BACKEND == "snap" else ".tif")


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
        "reference": product_path(f"{WORK}/{wildcards.stack}/orbit/{wildcards.reference}"),
        "secondary": product_path(f"{WORK}/{wildcards.stack}/orbit/{wildcards.secondary}"),
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


rule calibrate:
    input:
        unpack(calibrate_input),
    output:
        product=product(WORK + "/{stack}/calibrated/{date}"),
    params:
        step="calibrate",
        cfg=insar_params,
    log:
        "logs/calibrate/{stack}/{date}.log",
    benchmark:
        "benchmarks/calibrate/{stack}/{date}.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    script:
        "../scripts/insar_step.py"


rule apply_orbit:
    input:
        product=product_path(WORK + "/{stack}/calibrated/{date}"),
    output:
        product=product(WORK + "/{stack}/orbit/{date}"),
    params:
        step="apply_orbit",
        cfg=insar_params,
    log:
        "logs/apply_orbit/{stack}/{date}.log",
    benchmark:
        "benchmarks/apply_orbit/{stack}/{date}.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    script:
        "../scripts/insar_step.py"


rule coregister:
    input:
        unpack(coregister_input),
    output:
        product=product(WORK + "/" + PAIR + "/coregistered"),
    params:
        step="coregister",
        cfg=insar_params,
    log:
        "logs/coregister/" + PAIR + ".log",
    benchmark:
        "benchmarks/coregister/" + PAIR + ".tsv"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    script:
        "../scripts/insar_step.py"


rule interferogram:
    input:
        unpack(interferogram_input),
    output:
        product=product(WORK + "/" + PAIR + "/interferogram"),
    params:
        step="interferogram",
        cfg=insar_params,
    log:
        "logs/interferogram/" + PAIR + ".log",
    benchmark:
        "benchmarks/interferogram/" + PAIR + ".tsv"
    threads: 2
    resources:
        mem_mb=6000,
        runtime=60,
    script:
        "../scripts/insar_step.py"


rule remove_topographic_phase:
    input:
        unpack(topo_input),
    output:
        product=product(WORK + "/" + PAIR + "/topo_removed"),
    params:
        step="remove_topographic_phase",
        cfg=insar_params,
    log:
        "logs/remove_topographic_phase/" + PAIR + ".log",
    benchmark:
        "benchmarks/remove_topographic_phase/" + PAIR + ".tsv"
    threads: 2
    resources:
        mem_mb=6000,
        runtime=60,
    script:
        "../scripts/insar_step.py"


rule goldstein:
    input:
        unpack(goldstein_input),
    output:
        product=product(WORK + "/" + PAIR + "/goldstein"),
    params:
        step="goldstein",
        cfg=insar_params,
    log:
        "logs/goldstein/" + PAIR + ".log",
    benchmark:
        "benchmarks/goldstein/" + PAIR + ".tsv"
    threads: 2
    resources:
        mem_mb=6000,
        runtime=60,
    script:
        "../scripts/insar_step.py"


rule multilook:
    input:
        unpack(multilook_input),
    output:
        product=product(WORK + "/" + PAIR + "/multilooked"),
    params:
        step="multilook",
        cfg=insar_params,
    log:
        "logs/multilook/" + PAIR + ".log",
    benchmark:
        "benchmarks/multilook/" + PAIR + ".tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../scripts/insar_step.py"


rule terrain_correct:
    input:
        unpack(terrain_correct_input),
    output:
        coherence=IFG + "/" + PAIR + "/coherence.tif",
        phase=IFG + "/" + PAIR + "/phase.tif",
        layover_shadow=IFG + "/" + PAIR + "/layover_shadow.tif",
    params:
        step="terrain_correct",
        cfg=insar_params,
    log:
        "logs/terrain_correct/" + PAIR + ".log",
    benchmark:
        "benchmarks/terrain_correct/" + PAIR + ".tsv"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    script:
        "../scripts/insar_step.py"
