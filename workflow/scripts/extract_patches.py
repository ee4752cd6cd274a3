"""Snakemake wrapper: isslide.dataset.patches.extract_stack_patches (one stack's patches)."""

from isslide.dataset.patches import extract_stack_patches
from isslide.smk import run


def main(smk):
    pairs = [
        dict(p, coherence=c, phase=ph, label=lab)
        for p, c, ph, lab in zip(
            smk.params.pairs, smk.input.coherence, smk.input.phase, smk.input.labels, strict=True
        )
    ]
    if "decoys" in smk.input.keys():  # simulated stack: the simulator's truth rasters
        for p, d, v, k in zip(
            pairs, smk.input.truth_deformation, smk.input.truth_valid, smk.input.decoys, strict=True
        ):
            p.update(truth_deformation=d, truth_valid=v, decoys=k)
    extract_stack_patches(
        smk.wildcards.stack,
        smk.input.centres,
        pairs,
        size=smk.params.patch_size,
        store_path=smk.output.store,
        index_path=smk.output.index,
        threads=smk.threads,
        visibility_rad=smk.params.visibility_rad,
    )


run(snakemake, main)  # noqa: F821
