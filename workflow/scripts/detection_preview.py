"""A stack's detection preview for the report (isslide.detect.preview.write_preview)."""

from isslide.detect.preview import write_preview
from isslide.smk import run


def main(smk):
    pairs = [
        {"name": name, "phase": phase, "probability": prob}
        for name, phase, prob in zip(
            smk.params.pairs, smk.input.phase, smk.input.probability, strict=True
        )
    ]
    write_preview(pairs, smk.input.candidates, smk.output.preview)


run(snakemake, main)  # noqa: F821
