# The embedded default's input: a seeded simulated Sentinel-1 world (stacks with source
# "simulated" only: the sim_stack constraint keeps these rules away from real stacks' files).
# Input/param functions: common.smk.


wildcard_constraints:
    sim_stack=SIMULATED_RE,


rule simulate_scene:
    input:
        unpack(simulation_scene_input),
    output:
        dem=f"{SYNTH}/{{sim_stack}}/dem.tif",
        geometry=f"{SYNTH}/{{sim_stack}}/geometry.json",
        scene=f"{SYNTH}/{{sim_stack}}/scene.npz",
        areas=f"{SYNTH}/{{sim_stack}}/truth/areas.gpkg",
        layover_shadow=f"{SYNTH}/{{sim_stack}}/truth/layover_shadow.tif",
    log:
        "logs/simulate_scene/{sim_stack}.log",
    benchmark:
        "benchmarks/simulate_scene/{sim_stack}.tsv"
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        cfg=simulation_scene_params,
    script:
        "../scripts/simulate_scene.py"


rule simulate_acquisition:
    input:
        dem=f"{SYNTH}/{{sim_stack}}/dem.tif",
        geometry=f"{SYNTH}/{{sim_stack}}/geometry.json",
        scene=f"{SYNTH}/{{sim_stack}}/scene.npz",
    output:
        slc=f"{SYNTH}/{{sim_stack}}/slc/{{date}}.tif",
        metadata=f"{SYNTH}/{{sim_stack}}/slc/{{date}}.json",
    log:
        "logs/simulate_acquisition/{sim_stack}/{date}.log",
    benchmark:
        "benchmarks/simulate_acquisition/{sim_stack}/{date}.tsv"
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        cfg=simulation_acquisition_params,
    script:
        "../scripts/simulate_acquisition.py"


rule simulate_annotations:
    input:
        dem=f"{SYNTH}/{{sim_stack}}/dem.tif",
        geometry=f"{SYNTH}/{{sim_stack}}/geometry.json",
        scene=f"{SYNTH}/{{sim_stack}}/scene.npz",
    output:
        annotation=multiext(
            annotation_stem("{sim_stack}", "{delay}", "{reference}", "{secondary}"),
            ".shp",
            ".shx",
            ".dbf",
            ".prj",
            ".cpg",
        ),
        deformation=f"{SYNTH}/{{sim_stack}}/truth/{{delay}}d/{{reference}}_{{secondary}}_deformation.tif",
        valid=f"{SYNTH}/{{sim_stack}}/truth/{{delay}}d/{{reference}}_{{secondary}}_valid.tif",
        decoys=f"{SYNTH}/{{sim_stack}}/truth/{{delay}}d/{{reference}}_{{secondary}}_decoys.tif",
        areas=f"{SYNTH}/{{sim_stack}}/truth/{{delay}}d/{{reference}}_{{secondary}}_areas.gpkg",
    log:
        "logs/simulate_annotations/{sim_stack}/{delay}d/{reference}_{secondary}.log",
    benchmark:
        "benchmarks/simulate_annotations/{sim_stack}/{delay}d/{reference}_{secondary}.tsv"
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        cfg=simulation_annotations_params,
    script:
        "../scripts/simulate_annotations.py"
