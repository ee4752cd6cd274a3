"""A realism figure (docs/figures/, benchmarks/bench_realism.py) copied for the report."""

from isslide.files import copy_file
from isslide.smk import run


def main(smk):
    copy_file(smk.input[0], smk.output[0])


run(snakemake, main)  # noqa: F821
