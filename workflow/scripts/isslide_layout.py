"""Snakemake wrapper: isslide.dataset.isslide.write_layout (one stack's ISSLIDE layout)."""

from isslide.dataset.isslide import write_layout
from isslide.smk import run


def main(smk):
    write_layout(
        smk.input.store,
        smk.input.index,
        smk.input.grid,
        smk.params.directory,
        smk.output.listing,
    )


run(snakemake, main)  # noqa: F821
