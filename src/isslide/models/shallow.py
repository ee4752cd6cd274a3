"""The ISSLIDE paper's shallow detectors: two-level U-Nets of widths 12, 24 and 48.

All three share one layout (encoder level 0, encoder level 1, latent level, two decoder levels,
a 3x3 head) and differ only in how the encoder and latent levels convolve:

* ``unet``: three plain 3x3 convolutions per level (ReLU, batch norm after the first);
* ``resunet``: one 3x3 convolution, then a residual block ``x + f(x)`` with two 3x3 convolutions;
* ``sepunet``: depthwise-separable 3x3 convolutions with two spatial kernels per input channel
  (depthwise with reflect padding, then 1x1 pointwise).

The layer budget follows the paper's public implementation (github.com/Ant89ne/ISSLIDE,
``BaselineNetworks/smallNets.py``), which has 100,849 trainable parameters for UNet and ResUNet
and 52,321 for SepUNet; ``tests/test_models.py`` checks these counts exactly.

The networks return logits (no sigmoid); training uses ``BCEWithLogitsLoss``. Inputs whose
height or width is not a multiple of 4 are zero-padded to one and the output cropped back.
Upsampling is nearest-neighbour x2 written as ``expand`` + ``reshape``, whose backward pass is
a plain sum (deterministic on CUDA, unlike ``nn.Upsample``'s atomic-add kernel).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

WIDTHS = (12, 24, 48)


def conv3x3(cin: int, cout: int) -> nn.Module:
    return nn.Conv2d(cin, cout, kernel_size=3, padding=1)


class SeparableConv(nn.Module):
    """Depthwise 3x3 convolution (``multiplier`` kernels per channel) followed by a 1x1 one."""

    def __init__(self, cin: int, cout: int, multiplier: int = 2):
        super().__init__()
        self.depthwise = nn.Conv2d(
            cin, multiplier * cin, kernel_size=3, padding=1, groups=cin, padding_mode="reflect"
        )
        self.pointwise = nn.Conv2d(multiplier * cin, cout, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def separable3x3(cin: int, cout: int) -> nn.Module:
    return SeparableConv(cin, cout, multiplier=2)


class Residual(nn.Module):
    """``x + relu(conv(relu(conv(x))))`` at constant width."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(
            conv3x3(width, width), nn.ReLU(), conv3x3(width, width), nn.ReLU()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


ConvFactory = Callable[[int, int], nn.Module]


def plain_level(cin: int, cout: int, conv: ConvFactory) -> list[nn.Module]:
    """Three convolutions: conv-ReLU-BN, conv-ReLU, conv-ReLU."""
    return [
        conv(cin, cout),
        nn.ReLU(),
        nn.BatchNorm2d(cout),
        conv(cout, cout),
        nn.ReLU(),
        conv(cout, cout),
        nn.ReLU(),
    ]


def residual_level(cin: int, cout: int, conv: ConvFactory) -> list[nn.Module]:
    """One convolution (conv-ReLU-BN), then a two-convolution residual block."""
    return [conv(cin, cout), nn.ReLU(), nn.BatchNorm2d(cout), Residual(cout)]


def upsample2(x: torch.Tensor) -> torch.Tensor:
    n, c, h, w = x.shape
    return x[:, :, :, None, :, None].expand(n, c, h, 2, w, 2).reshape(n, c, 2 * h, 2 * w)


class ShallowUNet(nn.Module):
    """Two-level U-Net with skip connections; ``level`` builds encoder and latent levels."""

    def __init__(
        self,
        level: Callable[[int, int, ConvFactory], list[nn.Module]],
        conv: ConvFactory = conv3x3,
        in_channels: int = 3,
        widths: tuple[int, int, int] = WIDTHS,
    ):
        super().__init__()
        w0, w1, w2 = widths
        self.enc0 = nn.Sequential(*level(in_channels, w0, conv))
        self.enc1 = nn.Sequential(*level(w0, w1, conv))
        # The latent level ends by bringing the width back to w1 with a plain convolution.
        self.latent = nn.Sequential(
            *level(w1, w2, conv), conv3x3(w2, w1), nn.ReLU(), nn.BatchNorm2d(w1)
        )
        self.dec1 = nn.Sequential(
            conv3x3(2 * w1, w1),
            nn.ReLU(),
            conv3x3(w1, w1),
            nn.ReLU(),
            conv3x3(w1, w0),
            nn.BatchNorm2d(w0),
            nn.ReLU(),
        )
        self.dec0 = nn.Sequential(
            conv3x3(2 * w0, w0), nn.ReLU(), conv3x3(w0, w0), nn.BatchNorm2d(w0)
        )
        self.head = conv3x3(w0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph))
        e0 = self.enc0(x)
        e1 = self.enc1(F.max_pool2d(e0, 2))
        lat = self.latent(F.max_pool2d(e1, 2))
        d1 = self.dec1(torch.cat((e1, upsample2(lat)), dim=1))
        d0 = self.dec0(torch.cat((e0, upsample2(d1)), dim=1))
        out = self.head(d0)
        return out[..., :h, :w]


def unet(**_) -> nn.Module:
    return ShallowUNet(plain_level, conv3x3)


def resunet(**_) -> nn.Module:
    return ShallowUNet(residual_level, conv3x3)


def sepunet(**_) -> nn.Module:
    return ShallowUNet(plain_level, separable3x3)
