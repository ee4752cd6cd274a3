"""Snakemake wrapper: isslide.simulate.simulate_annotations (the simulated Sentinel-1 world)."""

from isslide.simulate import simulate_annotations
from isslide.smk import run


def main(smk):
    simulate_annotations(
        params=smk.params.cfg,
        wildcards=dict(smk.wildcards),
        inputs=dict(smk.input),
        outputs=dict(smk.output),
    )


run(snakemake, main)  # noqa: F821
