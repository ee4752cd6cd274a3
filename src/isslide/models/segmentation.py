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
  path, the checkpoint is downloaded into torch's hub cache (``$TORCH_HOME/hub/checkpoints``,
  needs internet).

Every file is read with ``torch.load(weights_only=True)`` (plain state dicts only: a pickle that
runs code is refused), and a downloaded or cached checkpoint, or a file bearing torchvision's
name, must have the SHA-256 whose prefix its name carries (``...-1167a1af.pth``), so a damaged or
planted file in the cache is never used.
"""

from __future__ import annotations

import hashlib
import os
import re
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision.models import ResNet50_Weights
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


def _hash_prefix(filename: str) -> str | None:
    """The SHA-256 prefix torchvision puts in a checkpoint's name (``name-<hex>.pth``)."""
    m = re.search(r"-([0-9a-f]{8,64})\.[A-Za-z]+$", filename)
    return m.group(1) if m else None


def verify_hash(path: str, prefix: str, field: str) -> None:
    """Refuse a checkpoint whose SHA-256 does not start with ``prefix``."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    if not digest.hexdigest().startswith(prefix):
        raise IsslideError(
            f"{path} ({field}): SHA-256 {digest.hexdigest()[:12]}... does not match the hash "
            f"{prefix} in its name: not torchvision's checkpoint (damaged or replaced); delete it "
            "and download it again"
        )


def cached_checkpoint(url: str, field: str) -> str:
    """The path of checkpoint ``url`` in torch's hub cache, downloaded when absent; verified
    against the hash in its name whether it was just downloaded or already cached (torchvision
    itself skips the check for cached files)."""
    name = os.path.basename(urlparse(url).path)
    prefix = _hash_prefix(name)
    if prefix is None:
        raise IsslideError(f"{field}: {url} carries no hash in its name; give the file by path")
    directory = os.path.join(torch.hub.get_dir(), "checkpoints")
    path = os.path.join(directory, name)
    if not os.path.exists(path):
        os.makedirs(directory, exist_ok=True)
        try:  # writes a temporary file, checks the hash prefix, then moves it into place
            torch.hub.download_url_to_file(url, path, hash_prefix=prefix, progress=False)
        except Exception as exc:
            msg = " ".join(str(exc).split())[:200]
            raise IsslideError(
                f"{field}: downloading {url} failed ({msg}); download it elsewhere and set "
                f"{field} to the file"
            ) from None
    verify_hash(path, prefix, field)
    return path


# torchvision's file names of the checkpoints isslide uses: a file given by path under one of
# these names is checked against its hash too.
TORCHVISION_FILES = {
    os.path.basename(w.url)
    for w in (ResNet50_Weights.IMAGENET1K_V1, *(weights for _, weights in ARCH.values()))
}


def _verify_if_torchvision(path: str, field: str) -> None:
    name = os.path.basename(path)
    if name in TORCHVISION_FILES and os.path.exists(path):
        verify_hash(path, _hash_prefix(name), field)


def _load_backbone(net: nn.Module, path: str, field: str) -> None:
    _verify_if_torchvision(path, field)
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
    url = ARCH[arch][1].url
    if path:
        _verify_if_torchvision(path, field)
        return load_state_file(path, field)
    if weights_cfg.get("download"):
        return load_state_file(cached_checkpoint(url, field), field)
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
