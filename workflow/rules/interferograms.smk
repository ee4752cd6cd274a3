# Interferograms made elsewhere (stacks with source interferograms, isslide.interferograms):
# each pair's phase/coherence GeoTIFFs (any CRS) are imported onto the workflow's EPSG:4326
# grid as the three files the InSAR backends write, so every later stage runs unchanged.
# Input/param functions: common.smk.


ruleorder: import_interferogram > terrain_correct


rule import_interferogram:
    input:
        unpack(import_input),
    output:
        coherence=f"{IFG}/{PAIR}/coherence.tif",
        phase=f"{IFG}/{PAIR}/phase.tif",
        layover_shadow=f"{IFG}/{PAIR}/layover_shadow.tif",
    log:
        "logs/import_interferogram/{stack}/{delay}d/{reference}_{secondary}.log",
    benchmark:
        "benchmarks/import_interferogram/{stack}/{delay}d/{reference}_{secondary}.tsv"
    wildcard_constraints:
        stack=IMPORTED_RE,
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        cfg=import_params,
    script:
        "../scripts/import_interferogram.py"
