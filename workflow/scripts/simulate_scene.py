"""Snakemake wrapper: isslide.simulate.simulate_scene (the simulated Sentinel-1 world)."""

from isslide.simulate import simulate_scene
from isslide.smk import run


def main(smk):
    simulate_scene(
        params=smk.params.cfg,
        wildcards=dict(smk.wildcards),
        inputs=dict(smk.input),
        outputs=dict(smk.output),
    )


run(snakemake, main)  # noqa: F821
