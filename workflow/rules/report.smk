# What the Snakemake report (snakemake --report report.html) shows besides the outputs marked
# report() in the stage rules: the realism figures of the simulated world, where they exist
# (made by benchmarks/bench_realism.py into docs/figures/). Captions: workflow/report/*.rst.


rule realism_figure:
    input:
        "docs/figures/{name}.png",
    output:
        report(
            f"{REPORT}/realism/{{name}}.png",
            caption="../report/realism.rst",
            category="Simulated world",
            labels={"figure": "{name}"},
        ),
    log:
        "logs/realism_figure/{name}.log",
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=500,
    script:
        "../scripts/realism_figure.py"
