"""Import one interferogram made elsewhere onto the workflow grid (isslide.interferograms)."""

from isslide.interferograms import import_interferogram
from isslide.smk import run


def main(smk):
    cfg = smk.params.cfg
    import_interferogram(
        smk.input.phase,
        smk.input.coherence,
        outputs=dict(smk.output),
        grid=cfg["grid"],
        coherence_scale=cfg["coherence_scale"],
        layover_shadow=smk.input.get("layover_shadow"),
        scale_key=f"stacks.{smk.wildcards.stack}.interferograms.coherence_scale",
    )


run(snakemake, main)  # noqa: F821
