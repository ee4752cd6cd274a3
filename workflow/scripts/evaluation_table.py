"""Table I over all evaluated models (see isslide.evaluate.write_table)."""

from isslide.evaluate import write_table
from isslide.smk import run


def main(smk):
    paths = dict(zip(smk.params.models, smk.input.metrics, strict=True))
    write_table(paths, smk.output.csv, smk.output.md, reference=smk.params.reference)


run(snakemake, main)  # noqa: F821
