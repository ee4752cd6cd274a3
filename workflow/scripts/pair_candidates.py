"""One interferogram's candidates from its stack's (isslide.detect.run.write_pair_candidates)."""

from isslide.detect.run import write_pair_candidates
from isslide.smk import run


def main(smk):
    w = smk.wildcards
    write_pair_candidates(smk.input.stack, w.reference, w.secondary, smk.output.candidates)


run(snakemake, main)  # noqa: F821
