"""Run one InSAR step through the configured backend (see isslide.insar)."""

from isslide.insar import run_step
from isslide.smk import run


def main(smk):
    cfg = smk.params.cfg
    run_step(
        smk.params.step,
        cfg["backend"],
        inputs=dict(smk.input),
        outputs=dict(smk.output),
        params=cfg,
        threads=smk.threads,
        resources=dict(smk.resources),
    )


run(snakemake, main)  # noqa: F821
