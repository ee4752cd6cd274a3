"""Snakemake wrapper: isslide.dataset.patches.assemble (split + train/val/eval stores + index)."""

from isslide.dataset.patches import assemble
from isslide.smk import run


def main(smk):
    stacks = {
        name: {"store": store, "index": index}
        for name, store, index in zip(
            smk.params.stacks, smk.input.stores, smk.input.indexes, strict=True
        )
    }
    assemble(
        stacks,
        out_train=smk.output.train,
        out_eval=smk.output.eval,
        out_val=smk.output.val,
        val_fraction=smk.params.val_fraction,
        out_index=smk.output.index,
        eval_fraction=smk.params.eval_fraction,
        seed=smk.params.seed,
        motion_only=smk.params.motion_only,
        split_rule=smk.params.split_rule,
    )


run(snakemake, main)  # noqa: F821
