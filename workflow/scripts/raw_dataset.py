"""Snakemake wrapper: isslide.dataset.raw.build_raw (one stack's raw dataset)."""

from isslide.dataset.raw import build_raw
from isslide.smk import run


def main(smk):
    pairs = [
        dict(p, coherence=c, phase=ph, layover_shadow=ls, label=lab, annotation=ann)
        for p, c, ph, ls, lab, ann in zip(
            smk.params.pairs,
            smk.input.coherence,
            smk.input.phase,
            smk.input.layover_shadow,
            smk.input.labels,
            smk.params.annotations,
            strict=True,
        )
    ]
    build_raw(smk.wildcards.stack, pairs, smk.output.raw)


run(snakemake, main)  # noqa: F821
