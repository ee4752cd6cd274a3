"""``isslide train`` and ``isslide evaluate``: the workflow's last steps without Snakemake."""

from __future__ import annotations

import os

from .config import load_config


def add_parser(sub) -> None:
    t = sub.add_parser("train", help="train one detector on the ready-to-use store")
    t.add_argument("model", help="registry name, e.g. unet")
    t.add_argument("--configfile", default="config/config.yaml")
    t.add_argument("--store", default="results/dataset/ready")
    t.add_argument(
        "--out", default="results/models", help="writes OUT/MODEL/model.pt and thresholds.json"
    )
    t.set_defaults(func=cmd_train)
    e = sub.add_parser("evaluate", help="evaluate one trained detector (predictions + metrics)")
    e.add_argument("model")
    e.add_argument("--configfile", default="config/config.yaml")
    e.add_argument("--store", default="results/dataset/ready")
    e.add_argument("--models", default="results/models")
    e.add_argument("--out", default="results/evaluation")
    e.set_defaults(func=cmd_evaluate)


def temporal_stores(model: str, store: str) -> dict | None:
    """A multi-temporal model's temporal index and stacks' stores under ``store`` (the
    workflow's layout: temporal.csv, stacks/{stack}.npz), None for the other models."""
    import glob

    from .models import get_spec

    if not get_spec(model).temporal:
        return None
    stacks = sorted(glob.glob(os.path.join(store, "stacks", "*.npz")))
    return {
        "index": os.path.join(store, "temporal.csv"),
        "stores": {os.path.basename(p)[: -len(".npz")]: p for p in stacks},
    }


def cmd_train(args) -> int:
    from .train import train_model
    from .workflow import training_seed

    cfg = load_config(args.configfile)
    training = cfg["training"]
    seed = training_seed(cfg)
    out = os.path.join(args.out, args.model)
    summary = train_model(
        args.model,
        os.path.join(args.store, "train.npz"),
        os.path.join(out, "model.pt"),
        os.path.join(out, "history.csv"),
        training,
        seed=seed,
        eval_path=os.path.join(args.store, "eval.npz"),
        threads=training["threads"],
        val_path=os.path.join(args.store, "val.npz"),
        thresholds_path=os.path.join(out, "thresholds.json"),
        eval_cfg=cfg["evaluation"],
        temporal=temporal_stores(args.model, args.store),
    )
    print(f"{args.model}: {summary['epoch']} epochs on {summary['device']} -> {out}/model.pt")
    return 0


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate_model

    cfg = load_config(args.configfile)
    out = os.path.join(args.out, args.model)
    res = evaluate_model(
        os.path.join(args.models, args.model, "model.pt"),
        os.path.join(args.store, "eval.npz"),
        os.path.join(out, "predictions.npz"),
        os.path.join(out, "metrics.json"),
        training_cfg=cfg["training"],
        eval_cfg=cfg["evaluation"],
        threads=cfg["training"]["threads"],
        temporal=temporal_stores(args.model, args.store),
    )
    p, q = res["paper"], res["pooled"]
    print(
        f"{args.model}: AUC {res['auc']}, at the validation thresholds: paper F1 {p['f1']:.4f} "
        f"Dice {p['dice']:.4f} IoU {p['iou']:.4f} HD {p['hd']:.2f}; pooled F1 {q['f1']:.4f} "
        f"-> {out}/metrics.json"
    )
    return 0
