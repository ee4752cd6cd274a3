"""Evaluate one trained detector: predictions.npz and metrics.json (see isslide.evaluate)."""

from isslide.evaluate import evaluate_model
from isslide.smk import run


def temporal(smk):
    """The temporal index and the stacks' stores of a multi-temporal model, else None."""
    if not smk.params.temporal:
        return None
    stacks = smk.params.temporal["stacks"]
    return {"index": smk.input.temporal, "stores": dict(zip(stacks, smk.input.stacks, strict=True))}


def main(smk):
    evaluate_model(
        smk.input.model,
        smk.input.eval,
        smk.output.predictions,
        smk.output.metrics,
        training_cfg=smk.params.cfg["training"],
        eval_cfg=smk.params.cfg["evaluation"],
        threads=smk.threads,
        temporal=temporal(smk),
    )


run(snakemake, main)  # noqa: F821
