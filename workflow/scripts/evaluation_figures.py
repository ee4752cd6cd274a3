"""Figure 3, training curves and precision-recall curves (see isslide.evaluate)."""

from isslide.evaluate import figure3, pr_curves, training_curves
from isslide.smk import run


def main(smk):
    models = smk.params.models
    predictions = dict(zip(models, smk.input.predictions, strict=True))
    metrics = dict(zip(models, smk.input.metrics, strict=True))
    histories = dict(zip(models, smk.input.histories, strict=True))
    figure3(
        smk.input.eval,
        predictions,
        metrics,
        smk.output.figure3,
        index_path=smk.input.index,
        n_samples=smk.params.samples,
    )
    training_curves(histories, smk.output.curves)
    pr_curves(predictions, metrics, smk.output.pr)


run(snakemake, main)  # noqa: F821
