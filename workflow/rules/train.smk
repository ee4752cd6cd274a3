# Training and evaluation of the detectors (docs/training.md).
# Per model: train (model, history, thresholds chosen on val.npz) -> evaluate (applies them
# to eval.npz); then Table I and the figures over all models.
# GPU: train/evaluate declare resources gpu=1 unless training.device is cpu. Snakemake only
# limits the resources given on the command line, so a CPU-only `snakemake --cores 2` runs them
# (on the CPU when device is auto); `--resources gpu=1` serialises them on a one-GPU machine
# and the SLURM profile turns gpu=1 into a GPU request.


rule train:
    input:
        unpack(temporal_inputs),
        train="results/dataset/ready/train.npz",
        val="results/dataset/ready/val.npz",
        eval="results/dataset/ready/eval.npz",
        index="results/dataset/ready/index.csv",
    output:
        model="results/models/{model}/model.pt",
        history="results/models/{model}/history.csv",
        thresholds="results/models/{model}/thresholds.json",
    log:
        "logs/train/{model}.log",
    benchmark:
        "benchmarks/train/{model}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["training"]["threads"]
    resources:
        gpu=gpu_request,
        mem_mb=16000,
        runtime=2880,
    params:
        cfg=training_params,
        temporal=temporal_params,
    script:
        "../scripts/train_model.py"


rule evaluate:
    input:
        unpack(temporal_inputs),
        model="results/models/{model}/model.pt",
        eval="results/dataset/ready/eval.npz",
    output:
        predictions="results/evaluation/{model}/predictions.npz",
        metrics="results/evaluation/{model}/metrics.json",
    log:
        "logs/evaluate/{model}.log",
    benchmark:
        "benchmarks/evaluate/{model}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["training"]["threads"]
    resources:
        gpu=gpu_request,
        mem_mb=16000,
        runtime=120,
    params:
        cfg=evaluation_params,
        temporal=temporal_params,
    script:
        "../scripts/evaluate_model.py"


rule evaluation_table:
    input:
        metrics=all_metrics,
    output:
        csv=report(
            "results/evaluation/table.csv",
            caption="../report/table.rst",
            category="Evaluation",
            labels={"figure": "Table I"},
        ),
        md="results/evaluation/table.md",
    log:
        "logs/evaluation_table/table.log",
    conda:
        "../../envs/torch.yaml"
    params:
        models=trained_models(),
        reference=config["evaluation"]["reference_table"],
    script:
        "../scripts/evaluation_table.py"


rule evaluation_figures:
    input:
        unpack(figure_inputs),
    output:
        figure3=report(
            "results/evaluation/figures/figure3.png",
            caption="../report/figure3.rst",
            category="Evaluation",
            labels={"figure": "Figure 3"},
        ),
        curves=report(
            "results/evaluation/figures/training_curves.png",
            caption="../report/training_curves.rst",
            category="Training",
            labels={"figure": "training curves"},
        ),
        pr=report(
            "results/evaluation/figures/pr_curves.png",
            caption="../report/pr_curves.rst",
            category="Evaluation",
            labels={"figure": "precision-recall curves"},
        ),
    log:
        "logs/evaluation_figures/figures.log",
    benchmark:
        "benchmarks/evaluation_figures/figures.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=8000,
    params:
        models=trained_models(),
        samples=config["evaluation"]["figure_samples"],
    script:
        "../scripts/evaluation_figures.py"
