"""Train one detector (see isslide.train)."""

from isslide.smk import run
from isslide.train import train_model


def main(smk):
    cfg = smk.params.cfg
    train_model(
        smk.wildcards.model,
        smk.input.train,
        smk.output.model,
        smk.output.history,
        cfg["training"],
        seed=cfg["seed"],
        eval_path=smk.input.eval,
        threads=smk.threads,
        val_path=smk.input.val,
        thresholds_path=smk.output.thresholds,
        eval_cfg=cfg["evaluation"],
    )


run(snakemake, main)  # noqa: F821
