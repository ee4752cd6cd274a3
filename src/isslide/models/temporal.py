"""Multi-temporal detectors: they read K interferograms of one centre (oldest first, the target
last in ``temporal.mode: consecutive``) and segment the target's moving areas.

Input ``(N, K, 3, H, W)``: per step coherence, cos phase and sin phase, zero on invalid pixels
and on a missing step (its validity flag 0, :mod:`isslide.dataset.temporal`); output logits
``(N, 1, H, W)`` for the target. A step counts as present when any of its inputs is non-zero,
which is exactly the dataset's validity flag (a missing step, or one with no valid pixel, is all
zero); the target step is always present.

* ``tunet_early``: early fusion, the shallow U-Net of :mod:`isslide.models.shallow` with the K
  steps stacked as ``3 K`` input channels (101,497 parameters for K = 3);
* ``tunet_attn``: a shared-weight shallow U-Net encoder applied to every step, fused over time
  at each of its three levels (the two skip connections and the bottleneck) by a per-pixel
  temporal attention whose query is the target step (keys from a 1x1 convolution, masked over
  the missing steps), added to the target's own features; then the U-Net decoder.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .shallow import WIDTHS, ShallowUNet, conv3x3, plain_level, upsample2

DEFAULT_STEPS = 3


class EarlyFusionUNet(nn.Module):
    def __init__(self, steps: int = DEFAULT_STEPS):
        super().__init__()
        self.steps = int(steps)
        self.net = ShallowUNet(plain_level, conv3x3, in_channels=3 * self.steps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, k, c, h, w = x.shape
        return self.net(x.reshape(n, k * c, h, w))


def step_presence(x: torch.Tensor) -> torch.Tensor:
    """(N, K) bool: the step has a non-zero input; the last step (the target) always counts."""
    present = x.flatten(2).abs().amax(dim=2) > 0
    present[:, -1] = True
    return present


class TemporalAttention(nn.Module):
    """Per pixel: ``f_target + sum_t a_t v_t`` with ``a = softmax_t(q(f_target) . k(f_t))``
    over the present steps (``q``, ``k``, ``v``: 1x1 convolutions)."""

    def __init__(self, width: int, key_width: int | None = None):
        super().__init__()
        d = key_width or max(4, width // 2)
        self.q = nn.Conv2d(width, d, 1)
        self.k = nn.Conv2d(width, d, 1)
        self.v = nn.Conv2d(width, width, 1)
        self.scale = d**-0.5

    def forward(self, f: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        n, k, c, h, w = f.shape
        flat = f.reshape(n * k, c, h, w)
        q = self.q(f[:, -1])  # (N, d, H, W)
        keys = self.k(flat).reshape(n, k, -1, h, w)
        vals = self.v(flat).reshape(n, k, c, h, w)
        score = (keys * q[:, None]).sum(dim=2) * self.scale  # (N, K, H, W)
        score = score.masked_fill(~present[:, :, None, None], float("-inf"))
        a = torch.softmax(score, dim=1)
        return f[:, -1] + (a[:, :, None] * vals).sum(dim=1)


class AttentionUNet(nn.Module):
    """Shared shallow U-Net encoder per step, temporal attention at every level, one decoder."""

    def __init__(self, steps: int = DEFAULT_STEPS, widths=WIDTHS):
        super().__init__()
        self.steps = int(steps)
        w0, w1, _ = widths
        base = ShallowUNet(plain_level, conv3x3, in_channels=3, widths=widths)
        self.enc0, self.enc1, self.latent = base.enc0, base.enc1, base.latent
        self.dec1, self.dec0, self.head = base.dec1, base.dec0, base.head
        self.att0 = TemporalAttention(w0)
        self.att1 = TemporalAttention(w1)
        self.att2 = TemporalAttention(w1)  # the latent level ends at width w1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, k, c, h, w = x.shape
        present = step_presence(x)
        ph, pw = (-h) % 4, (-w) % 4
        flat = x.reshape(n * k, c, h, w)
        if ph or pw:
            flat = F.pad(flat, (0, pw, 0, ph))
        e0 = self.enc0(flat)
        e1 = self.enc1(F.max_pool2d(e0, 2))
        lat = self.latent(F.max_pool2d(e1, 2))

        def fuse(att, f):
            return att(f.reshape(n, k, *f.shape[1:]), present)

        e0, e1, lat = fuse(self.att0, e0), fuse(self.att1, e1), fuse(self.att2, lat)
        d1 = self.dec1(torch.cat((e1, upsample2(lat)), dim=1))
        d0 = self.dec0(torch.cat((e0, upsample2(d1)), dim=1))
        return self.head(d0)[..., :h, :w]


def tunet_early(steps: int = DEFAULT_STEPS, **_) -> nn.Module:
    return EarlyFusionUNet(steps)


def tunet_attn(steps: int = DEFAULT_STEPS, **_) -> nn.Module:
    return AttentionUNet(steps)
