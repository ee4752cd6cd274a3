# The embedded default's input: a seeded simulated Sentinel-1 world (stacks with source
# "simulated" only; the constraint below keeps these rules away from real stacks' files).


wildcard_constraints:
    sim_stack=SIMULATED_RE,


def simulation_params(wildcards):
    return {
        "simulation": config["simulation"],
        "insar": config["insar"],
        "seed": config["seed"],
        "stack": config["stacks"][wildcards.sim_stack],
        "dates": stack_dates(wildcards.sim_stack),
        "delays": config["delays"],
    }


rule simulate_scene:
    output:
        dem=SYNTH + "/{sim_stack}/dem.tif",
        geometry=SYNTH + "/{sim_stack}/geometry.json",
        scene=SYNTH + "/{sim_stack}/scene.npz",
        areas=SYNTH + "/{sim_stack}/truth/areas.gpkg",
    params:
        cfg=simulation_params,
    log:
        "logs/simulate_scene/{sim_stack}.log",
    benchmark:
        "benchmarks/simulate_scene/{sim_stack}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../scripts/simulate_scene.py"


rule simulate_acquisition:
    input:
        dem=SYNTH + "/{sim_stack}/dem.tif",
        geometry=SYNTH + "/{sim_stack}/geometry.json",
        scene=SYNTH + "/{sim_stack}/scene.npz",
    output:
        slc=SYNTH + "/{sim_stack}/slc/{date}.tif",
        metadata=SYNTH + "/{sim_stack}/slc/{date}.json",
    params:
        cfg=simulation_params,
    log:
        "logs/simulate_acquisition/{sim_stack}/{date}.log",
    benchmark:
        "benchmarks/simulate_acquisition/{sim_stack}/{date}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../scripts/simulate_acquisition.py"


rule simulate_annotations:
    input:
        dem=SYNTH + "/{sim_stack}/dem.tif",
        geometry=SYNTH + "/{sim_stack}/geometry.json",
        scene=SYNTH + "/{sim_stack}/scene.npz",
    output:
        annotation=multiext(
            ANNOTATIONS + "/{sim_stack}/{delay}d/{reference}_{secondary}",
            ".shp",
            ".shx",
            ".dbf",
            ".prj",
            ".cpg",
        ),
        deformation=SYNTH
        + "/{sim_stack}/truth/{delay}d/{reference}_{secondary}_deformation.tif",
        valid=SYNTH + "/{sim_stack}/truth/{delay}d/{reference}_{secondary}_valid.tif",
        areas=SYNTH + "/{sim_stack}/truth/{delay}d/{reference}_{secondary}_areas.gpkg",
    params:
        cfg=simulation_params,
    log:
        "logs/simulate_annotations/{sim_stack}/{delay}d/{reference}_{secondary}.log",
    benchmark:
        "benchmarks/simulate_annotations/{sim_stack}/{delay}d/{reference}_{secondary}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    script:
        "../scripts/simulate_annotations.py"
