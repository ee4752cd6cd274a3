"""Model registry: every detector the workflow can train, by name.

Adding a model is one entry in :data:`REGISTRY`: a :class:`ModelSpec` with its family
(``shallow`` or ``large``, which selects config ``training.shallow`` or ``training.large``) and
its builder as ``"module:function"``; ``function(weights_cfg=None, init=True)`` returns a module
that maps a batch ``(N, 3, H, W)`` (coherence, cos phase, sin phase) to logits ``(N, 1, H, W)``.
Multi-temporal models (``temporal=True``, :mod:`isslide.models.temporal`) take
``(N, K, 3, H, W)`` (K interferograms of one centre, config ``temporal``) and their builder also
gets ``steps=K``.
Builders are imported on first use, so reading the registry (the workflow does it when it
parses the rules) does not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

from ..errors import IsslideError


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str  # "shallow" or "large": selects config training.<family>
    builder: str  # "module:function"
    description: str
    needs_weights: bool = False  # True: needs a pretrained checkpoint (training.weights.<name>)
    uses_backbone: bool = False  # True: training.weights.backbone may initialise its backbone
    temporal: bool = False  # True: reads K interferograms (N, K, 3, H, W), config temporal

    def build(self, weights_cfg: dict | None = None, init: bool = True, steps: int | None = None):
        module, function = self.builder.split(":")
        kwargs = {"steps": int(steps or 3)} if self.temporal else {}
        return getattr(import_module(module), function)(
            weights_cfg=weights_cfg or {}, init=init, **kwargs
        )


_SEG = "isslide.models.segmentation"
_SHALLOW = "isslide.models.shallow"
_TEMPORAL = "isslide.models.temporal"

REGISTRY: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        ModelSpec(
            "fcn_s", "large", f"{_SEG}:fcn_s", "FCN-ResNet50 from scratch", uses_backbone=True
        ),
        ModelSpec(
            "fcn_p", "large", f"{_SEG}:fcn_p", "FCN-ResNet50 from COCO/VOC", needs_weights=True
        ),
        ModelSpec(
            "deeplabv3_s",
            "large",
            f"{_SEG}:deeplabv3_s",
            "DeepLabV3-ResNet50 from scratch",
            uses_backbone=True,
        ),
        ModelSpec(
            "deeplabv3_p",
            "large",
            f"{_SEG}:deeplabv3_p",
            "DeepLabV3-ResNet50 from COCO/VOC",
            needs_weights=True,
        ),
        ModelSpec("unet", "shallow", f"{_SHALLOW}:unet", "shallow U-Net (widths 12/24/48)"),
        ModelSpec("resunet", "shallow", f"{_SHALLOW}:resunet", "shallow residual U-Net"),
        ModelSpec("sepunet", "shallow", f"{_SHALLOW}:sepunet", "shallow separable U-Net"),
        ModelSpec(
            "tunet_early",
            "shallow",
            f"{_TEMPORAL}:tunet_early",
            "multi-temporal shallow U-Net, K steps stacked as channels (early fusion)",
            temporal=True,
        ),
        ModelSpec(
            "tunet_attn",
            "shallow",
            f"{_TEMPORAL}:tunet_attn",
            "multi-temporal shallow U-Net, shared per-step encoder, temporal attention fusion",
            temporal=True,
        ),
    )
}

MODEL_NAMES = tuple(REGISTRY)


def get_spec(name: str) -> ModelSpec:
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise IsslideError(
            f"training.models: unknown model {name!r}; choose from {', '.join(MODEL_NAMES)}"
        ) from None


def build_model(
    name: str, weights_cfg: dict | None = None, init: bool = True, steps: int | None = None
):
    """The model ``name``; ``weights_cfg`` is config ``training.weights``; ``init=False`` skips
    loading pretrained files (when a full state dict is loaded afterwards); ``steps``: K of a
    multi-temporal model (ignored by the others)."""
    return get_spec(name).build(weights_cfg, init, steps)


def is_temporal(name: str) -> bool:
    return get_spec(name).temporal


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def model_training_config(name: str, training: dict) -> dict:
    """The part of config ``training`` that shapes the training of ``name`` (for rule params:
    editing another model's settings, or the model list, never retrains this one)."""
    spec = get_spec(name)
    weights = dict(training.get("weights") or {})
    keep = {"download"} | ({name} if spec.needs_weights else set())
    keep |= {"backbone"} if spec.uses_backbone else set()
    out = {
        k: v
        for k, v in training.items()
        if k not in ("models", "per_model", "shallow", "large", "weights", "threads")
    }
    out[spec.family] = training.get(spec.family, {})
    per_model = (training.get("per_model") or {}).get(name)
    out["per_model"] = {name: per_model} if per_model else {}
    out["weights"] = {k: v for k, v in weights.items() if k in keep}
    return out
