# Helpers of the training and evaluation steps (included by train.smk): config checks,
# model list, per-model params, GPU request, targets. No workflow steps are defined here.

from isslide.models import REGISTRY, get_spec, model_training_config

STORE_DIR = "results/dataset/ready"
MODELS_DIR = "results/models"
EVAL_DIR = "results/evaluation"

try:
    for _name in list(config["training"]["models"]) + list(
        config["training"]["per_model"]
    ):
        get_spec(_name)
except IsslideError as exc:
    _fail(exc)


wildcard_constraints:
    model="|".join(REGISTRY),


def trained_models():
    return list(config["training"]["models"])


def training_seed():
    seed = config["training"]["seed"]
    return config["seed"] if seed is None else seed


def gpu_request(wildcards):
    return 0 if config["training"]["device"] == "cpu" else 1


def training_params(wildcards):
    """Only what shapes this model's training, so unrelated config edits never retrain it."""
    return {
        "training": model_training_config(wildcards.model, config["training"]),
        "seed": training_seed(),
    }


def evaluation_params(wildcards):
    training = config["training"]
    return {
        "training": {
            "device": training["device"],
            "amp": training["amp"],
        },
        "evaluation": {
            k: config["evaluation"][k]
            for k in ("batch_size", "n_thresholds", "motion_only")
        },
    }


def evaluation_targets():
    if not trained_models():
        return []
    return [
        f"{EVAL_DIR}/table.csv",
        f"{EVAL_DIR}/table.md",
        f"{EVAL_DIR}/figures/figure3.png",
        f"{EVAL_DIR}/figures/training_curves.png",
        f"{EVAL_DIR}/figures/pr_curves.png",
    ]


def all_metrics(wildcards):
    return [f"{EVAL_DIR}/{m}/metrics.json" for m in trained_models()]


def figure_inputs(wildcards):
    models = trained_models()
    return {
        "train": f"{STORE_DIR}/train.npz",
        "eval": f"{STORE_DIR}/eval.npz",
        "index": f"{STORE_DIR}/index.csv",
        "predictions": [f"{EVAL_DIR}/{m}/predictions.npz" for m in models],
        "metrics": [f"{EVAL_DIR}/{m}/metrics.json" for m in models],
        "histories": [f"{MODELS_DIR}/{m}/history.csv" for m in models],
    }
