"""Snakemake wrapper: isslide.labels.rasterize_labels (one interferogram's label raster)."""

from isslide.labels import rasterize_labels
from isslide.smk import run


def main(smk):
    rasterize_labels(
        annotation=smk.params.annotation,
        layover_shadow=smk.input.layover_shadow,
        coherence=smk.input.coherence,
        phase=smk.input.phase,
        output=smk.output.labels,
        all_touched=smk.params.all_touched,
        missing=smk.params.missing,
    )


run(snakemake, main)  # noqa: F821
