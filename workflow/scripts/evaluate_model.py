"""Evaluate one trained detector: predictions.npz and metrics.json (see isslide.evaluate)."""

from isslide.evaluate import evaluate_model
from isslide.smk import run


def main(smk):
    evaluate_model(
        smk.input.model,
        smk.input.eval,
        smk.output.predictions,
        smk.output.metrics,
        training_cfg=smk.params.cfg["training"],
        eval_cfg=smk.params.cfg["evaluation"],
        threads=smk.threads,
    )


run(snakemake, main)  # noqa: F821
