"""A stack's candidates with repetitions (isslide.detect.run.write_stack_candidates)."""

from isslide.detect.run import write_stack_candidates
from isslide.smk import run


def main(smk):
    write_stack_candidates(list(smk.input.candidates), smk.output.candidates)


run(snakemake, main)  # noqa: F821
