"""Choose the detection model and its threshold (isslide.detect.models.choose_model)."""

import json
import logging

from isslide.detect.models import choose_model
from isslide.smk import run


def main(smk):
    choice = choose_model(list(smk.params.folders), smk.params.choice, smk.params.threshold)
    logging.getLogger("isslide.detect").info(
        "detection model %s (F1 %s: %s), threshold %.4f: %s",
        choice["model"], choice["f1"], choice["f1_source"], choice["threshold"],
        choice["threshold_source"],
    )  # fmt: skip
    with open(smk.output.choice, "w") as fh:
        json.dump(choice, fh, indent=2)
        fh.write("\n")


run(snakemake, main)  # noqa: F821
