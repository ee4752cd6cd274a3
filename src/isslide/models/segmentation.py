"""FCN and DeepLabV3 with a ResNet50 backbone (torchvision), 3 input channels, 1 output logit.

* ``*_s`` ("scratch"): ``weights=None, weights_backbone=None``: every weight random. Optionally,
  ``training.weights.backbone`` names a torchvision ResNet50 ImageNet state-dict file
  (``resnet50-0676ba61.pth``) loaded into the backbone: the ISSLIDE paper's public code built its
  "scratch" models with torchvision's default ImageNet backbone.
* ``*_p`` ("pretrained"): initialised from torchvision's COCO/PASCAL VOC segmentation checkpoint
  given by path (``training.weights.fcn_p`` = ``fcn_resnet50_coco-1167a1af.pth``,
  ``training.weights.deeplabv3_p`` = ``deeplabv3_resnet50_coco-cd0a2569.pth``); the last
  classifier convolution is then replaced by a fresh one-class one and the auxiliary head is
  dropped (the loss uses the main output only). With ``training.weights.download: true`` and no
  path, torchvision downloads the checkpoint into its cache (needs internet).

Files are read with ``torch.load(weights_only=True)``: they must be plain state dicts.
"""

from __future__ import annotations

import os

import torch
from torch import nn
from torchvision.models.segmentation import (
    DeepLabV3_ResNet50_Weights,
    FCN_ResNet50_Weights,
    deeplabv3_resnet50,
    fcn_resnet50,
)

from ..errors import IsslideError

ARCH = {
    "fcn": (fcn_resnet50, FCN_ResNet50_Weights.DEFAULT),
    "deeplabv3": (deeplabv3_resnet50, DeepLabV3_ResNet50_Weights.DEFAULT),
}


class SegmentationLogits(nn.Module):
    """Wrap a torchvision segmentation model so that ``forward`` returns the logits tensor."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)["out"]


def load_state_file(path: str, field: str) -> dict:
    """A state dict from a file, with one-line errors naming the config field."""
    if not path or not os.path.exists(path):
        raise IsslideError(
            f"{field}: weights file {path!r} not found; download it (see docs/training.md) "
            f"and set {field} to its path"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        msg = " ".join(str(exc).split())[:200]
        raise IsslideError(f"{path} ({field}): not a readable PyTorch state dict ({msg})") from None
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise IsslideError(f"{path} ({field}): expected a state dict of tensors")
    return state


def _load_backbone(net: nn.Module, path: str, field: str) -> None:
    state = load_state_file(path, field)
    state = {k.removeprefix("backbone."): v for k, v in state.items()}
    try:
        missing, unexpected = net.backbone.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        msg = " ".join(str(exc).split())[:200]
        raise IsslideError(f"{path} ({field}): not ResNet50 weights ({msg})") from None
    unexpected = [k for k in unexpected if not k.startswith(("fc.", "classifier.", "aux_"))]
    if missing or unexpected:
        raise IsslideError(
            f"{path} ({field}): not ResNet50 backbone weights "
            f"(missing {len(missing)} keys, e.g. {missing[:1]}; unexpected {unexpected[:1]})"
        )


def _pretrained_state(arch: str, weights_cfg: dict, field: str) -> dict:
    path = weights_cfg.get(field.split(".")[-1])
    if path:
        return load_state_file(path, field)
    if weights_cfg.get("download"):
        try:
            return ARCH[arch][1].get_state_dict(progress=False, check_hash=True)
        except Exception as exc:
            msg = " ".join(str(exc).split())[:200]
            raise IsslideError(
                f"{field}: downloading torchvision's {arch} checkpoint failed ({msg}); "
                f"download it elsewhere and set {field} to the file"
            ) from None
    raise IsslideError(
        f"{field}: no pretrained checkpoint given; set it to the path of "
        f"{os.path.basename(ARCH[arch][1].url)} (or set training.weights.download: true)"
    )


def build(
    arch: str, pretrained: bool, weights_cfg: dict | None = None, init: bool = True
) -> nn.Module:
    """Build ``arch`` ('fcn' or 'deeplabv3'); ``init=False`` skips every weights file (the
    caller loads a full state dict next, as evaluation does)."""
    weights_cfg = weights_cfg or {}
    factory = ARCH[arch][0]
    name = f"{arch}_{'p' if pretrained else 's'}"
    if not pretrained:
        net = factory(weights=None, weights_backbone=None, num_classes=1, aux_loss=False)
        backbone = weights_cfg.get("backbone")
        if backbone and init:
            _load_backbone(net, backbone, "training.weights.backbone")
        return SegmentationLogits(net)
    field = f"training.weights.{name}"
    if not init:
        net = factory(weights=None, weights_backbone=None, num_classes=1, aux_loss=False)
        return SegmentationLogits(net)
    state = _pretrained_state(arch, weights_cfg, field)
    head = state.get("classifier.4.weight")
    classes = int(head.shape[0]) if head is not None else 21
    net = factory(weights=None, weights_backbone=None, num_classes=classes, aux_loss=True)
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        msg = " ".join(str(exc).split())[:200]
        raise IsslideError(f"{field}: checkpoint does not fit {arch}_resnet50 ({msg})") from None
    missing = [k for k in missing if not k.startswith("aux_classifier.")]
    if missing or unexpected:
        raise IsslideError(
            f"{field}: checkpoint is not a torchvision {arch}_resnet50 segmentation state dict "
            f"(missing {len(missing)} keys, e.g. {missing[:1]}; unexpected {unexpected[:1]})"
        )
    last = net.classifier[-1]
    net.classifier[-1] = nn.Conv2d(last.in_channels, 1, kernel_size=1)
    net.aux_classifier = None
    return SegmentationLogits(net)


def fcn_s(weights_cfg: dict | None = None, init: bool = True) -> nn.Module:
    return build("fcn", False, weights_cfg, init)


def fcn_p(weights_cfg: dict | None = None, init: bool = True) -> nn.Module:
    return build("fcn", True, weights_cfg, init)


def deeplabv3_s(weights_cfg: dict | None = None, init: bool = True) -> nn.Module:
    return build("deeplabv3", False, weights_cfg, init)


def deeplabv3_p(weights_cfg: dict | None = None, init: bool = True) -> nn.Module:
    return build("deeplabv3", True, weights_cfg, init)
