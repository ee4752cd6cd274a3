"""Which trained model to run, and at which threshold.

A model folder is what the ``train`` rule writes, ``results/models/<name>/`` with ``model.pt``.
Its scores are looked up in two places, in this order:

1. ``<model folder>/thresholds.json`` (format ``isslide-thresholds/1``, written by the train
   rule next to the model, docs/training.md): the ``pooled`` threshold (resp. F1) chosen on the
   validation split, ``{"chosen_on": "validation", "pooled": {"threshold": t, "f1": f}, ...}``;
2. ``<runs results>/evaluation/<name>/metrics.json`` (``<model folder>/../../evaluation/<name>``):
   the evaluation set's paper-convention ``threshold`` / ``f1``. The source then says
   "evaluation threshold": chosen on the set the model is evaluated on, not a held-out one.

:func:`model_threshold` and :func:`model_f1` are the only readers of these files.
"""

from __future__ import annotations

import json
import os

from ..errors import IsslideError

THRESHOLDS = "thresholds.json"
METRICS = "metrics.json"


def model_file(model: str) -> str:
    """``model.pt`` of a model folder (or the file itself)."""
    path = os.path.join(model, "model.pt") if os.path.isdir(model) else model
    if not os.path.exists(path):
        raise IsslideError(
            f"{model}: no trained model there (no {path}); pass a model folder written by the "
            "train rule, e.g. results/models/unet"
        )
    return path


def model_dir(model: str) -> str:
    return model if os.path.isdir(model) else os.path.dirname(os.path.abspath(model))


def evaluation_metrics_path(model: str) -> str:
    d = os.path.abspath(model_dir(model))
    return os.path.join(
        os.path.dirname(os.path.dirname(d)), "evaluation", os.path.basename(d), METRICS
    )


def _validation_value(path: str, key: str) -> float | None:
    from ..train import THRESHOLDS_FORMAT

    try:
        with open(path) as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise IsslideError(f"{path}: unreadable ({exc}); delete it and rerun training") from None
    if not isinstance(data, dict) or data.get("format") != THRESHOLDS_FORMAT:
        raise IsslideError(
            f"{path}: not an isslide thresholds file (format {THRESHOLDS_FORMAT}); delete it and "
            "rerun training"
        )
    value = (data.get("pooled") or {}).get(key)
    return None if value is None else float(value)


def _evaluation_value(path: str, key: str) -> float | None:
    try:
        with open(path) as fh:
            value = json.load(fh)["paper"][key]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None if value is None else float(value)


def _lookup(model: str, key: str) -> tuple[float | None, str]:
    d = model_dir(model)
    vpath = os.path.join(d, THRESHOLDS)
    if os.path.exists(vpath):
        value = _validation_value(vpath, key)
        if value is not None:
            return value, f"validation {key} ({vpath}, pooled)"
    epath = evaluation_metrics_path(model)
    if os.path.exists(epath):
        value = _evaluation_value(epath, key)
        if value is not None:
            return value, f"evaluation {key} ({epath}, paper convention; no validation {key})"
    return None, ""


def model_threshold(model: str) -> tuple[float, str]:
    """(threshold, where it comes from) of a model folder; IsslideError when it has none."""
    value, source = _lookup(model, "threshold")
    if value is None:
        raise IsslideError(
            f"{model}: the model has no threshold (no {THRESHOLDS} beside it, no "
            f"{evaluation_metrics_path(model)}); pass --threshold (detection.threshold)"
        )
    if not 0.0 <= value <= 1.0:
        raise IsslideError(f"{source}: threshold {value} outside [0, 1]; rerun the evaluation")
    return value, source


def model_f1(model: str) -> tuple[float | None, str]:
    """(validation F1, source) of a model folder, the evaluation F1 as a fallback, or None."""
    return _lookup(model, "f1")


def best_model(folders: list[str]) -> tuple[str, float, str]:
    """The model folder with the highest F1 (validation when present); ties: first listed."""
    scored = []
    for folder in folders:
        if _is_temporal_folder(folder):  # reads K interferograms: not for single ones
            continue
        f1, source = model_f1(folder)
        if f1 is not None:
            scored.append((f1, -len(scored), folder, source))
    if not scored:
        raise IsslideError(
            "detection.model: best: no F1 found for "
            f"{', '.join(folders) or 'any model'}; train and evaluate a model first, or set "
            "detection.model to a model folder"
        )
    f1, _, folder, source = max(scored)
    return folder, f1, source


def _is_temporal_folder(folder: str) -> bool:
    """The folder's model (named in its thresholds.json) is a multi-temporal one."""
    from ..models import REGISTRY

    path = os.path.join(model_dir(folder), THRESHOLDS)
    try:
        with open(path) as fh:
            name = json.load(fh).get("model")
    except (OSError, ValueError, AttributeError):
        return False
    spec = REGISTRY.get(name) if isinstance(name, str) else None
    return bool(spec and spec.temporal)


def load_model(model: str, weights_cfg: dict | None = None):
    """(model in eval mode on CPU, the model file's dict); one line if it is not ours."""
    import torch

    from ..train import MODEL_FORMAT, load_trained

    path = model_file(model)
    fix = "pass a model folder written by the train rule (results/models/<name>)"
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        msg = " ".join(str(exc).split())[:120]
        raise IsslideError(f"{path}: not a model of this project ({msg}); {fix}") from None
    if not isinstance(obj, dict) or obj.get("format") != MODEL_FORMAT:
        what = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        raise IsslideError(
            f"{path}: not a model of this project (format {what!r}, expected {MODEL_FORMAT!r}); "
            f"{fix}"
        )
    from ..models import REGISTRY

    spec = REGISTRY.get(obj.get("model_name"))
    if spec is not None and spec.temporal:
        raise IsslideError(
            f"{path}: {spec.name} reads {obj.get('steps', 'several')} interferograms at once and "
            "detection runs on one; choose a single-interferogram model (detection.model)"
        )
    return load_trained(path, weights_cfg)


def choose_model(folders: list[str], choice: str = "best", threshold: float | None = None) -> dict:
    """The model detection runs (config ``detection.model``) and its threshold, as a dict."""
    if choice == "best":
        folder, f1, f1_source = best_model(folders)
    else:
        folder = choice
        f1, f1_source = model_f1(folder)
    _, info = load_model(folder)
    if threshold is None:
        threshold, source = model_threshold(folder)
    else:
        threshold, source = float(threshold), "given (detection.threshold)"
    return {
        "model": folder,
        "model_name": info["model_name"],
        "choice": choice,
        "f1": f1,
        "f1_source": f1_source or None,
        "threshold": float(threshold),
        "threshold_source": source,
        "candidates": list(folders),
    }
