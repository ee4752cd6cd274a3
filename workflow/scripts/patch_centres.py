"""Snakemake wrapper: isslide.dataset.centres (patch centres of one stack)."""

from isslide.dataset.centres import compute_centres, write_centres
from isslide.smk import run


def main(smk):
    centres, _ = compute_centres(
        list(smk.input.labels),
        stack=smk.wildcards.stack,
        zones=smk.params.zones,
        min_separation=smk.params.min_separation,
    )
    write_centres(centres, smk.output.centres)


run(snakemake, main)  # noqa: F821
