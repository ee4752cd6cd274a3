"""Detection on one interferogram (isslide.detect.run.detect)."""

import json

from isslide.detect.run import detect
from isslide.smk import run


def main(smk):
    with open(smk.input.choice) as fh:
        choice = json.load(fh)
    cfg = smk.params.cfg
    w = smk.wildcards
    detect(
        choice["model"],
        smk.input.phase,
        smk.input.coherence,
        threshold=choice["threshold"],
        threshold_source=choice["threshold_source"],
        device=cfg["device"],
        stride=cfg["stride"],
        min_size=cfg["min_size"],
        batch_size=cfg["batch_size"],
        layover_shadow=smk.input.layover_shadow,
        reference=w.reference,
        secondary=w.secondary,
        outputs={
            "probability": smk.output.probability,
            "mask": smk.output.mask,
            "candidates": smk.output.candidates,
            "summary": smk.output.summary,
        },
        styled=("probability", "mask"),
        threads=smk.threads,
        progress=False,
    )


run(snakemake, main)  # noqa: F821
