"""Train one detector (see isslide.train)."""

from isslide.smk import run
from isslide.train import train_model


def temporal(smk):
    """The temporal index and the stacks' stores of a multi-temporal model, else None."""
    if not smk.params.temporal:
        return None
    stacks = smk.params.temporal["stacks"]
    return {"index": smk.input.temporal, "stores": dict(zip(stacks, smk.input.stacks, strict=True))}


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
        temporal=temporal(smk),
    )


run(snakemake, main)  # noqa: F821
