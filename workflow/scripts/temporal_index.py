"""Snakemake wrapper: isslide.dataset.temporal.write_temporal_index (temporal.csv + .json)."""

from isslide.dataset.temporal import write_temporal_index
from isslide.smk import run


def main(smk):
    write_temporal_index(
        smk.input.index,
        smk.output.csv,
        smk.output.json,
        smk.params.temporal,
        delays=smk.params.delays,
        revisit_days=smk.params.revisit_days,
    )


run(snakemake, main)  # noqa: F821
