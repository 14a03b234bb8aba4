"""Stacked hourglass networks for magnitude-spectrogram separation.

The networks of two kinds (their records, which :func:`build_model` reads, are
``nets/kinds/hourglass.py`` and ``nets/kinds/park_original.py``), both fully convolutional over
(freq=512, time) inputs:

* ``hourglass``: the report's PyTorch network.  Every convolution is
  Conv2d(bias) -> BatchNorm2d -> ReLU.  An hourglass of recursion depth ``d``
  pools ``d + 1`` times; the channel count grows by ``growth`` at each pooling
  ("Ours": F=64, +64) or stays constant ("Park's": F=256, +0).
* ``park-original``: Park et al.'s TensorFlow network: plain conv + bias with
  ReLU, no BatchNorm, 4 poolings at 256 channels, linear 1x1 mask heads and
  identity-plus-1x1 merges between stacks (34,176,776 parameters).

``forward`` returns the prediction of every stack (the loss sums over stacks);
:func:`sources_from_prediction` turns the last one into voice/accompaniment magnitudes
for every target mode.  The architecture settings (:class:`ArchConfig`) live in
:mod:`hourglass_sep.nets.settings`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from hourglass_sep.nets.kind_record import network_kind
from hourglass_sep.nets.settings import ArchConfig

__all__ = [
    "Hourglass",
    "ParkStackedHourglass",
    "StackedHourglass",
    "build_model",
    "count_parameters",
    "loss_terms",
    "sources_from_prediction",
]


# ----------------------------------------------------------- the report's network
class ConvBNReLU(nn.Sequential):
    """The report's unit: Conv2d (same padding, bias) -> BatchNorm2d -> ReLU."""

    def __init__(self, ci: int, co: int, k: int = 3):
        super().__init__(
            nn.Conv2d(ci, co, k, padding=k // 2), nn.BatchNorm2d(co), nn.ReLU(inplace=True)
        )


class Hourglass(nn.Module):
    """skip = Conv(c, c); low = pool -> Conv(c, c+g) -> inner -> Conv(c+g, c) -> up x2."""

    def __init__(self, depth: int, c: int, growth: int):
        super().__init__()
        c2 = c + growth
        self.skip = ConvBNReLU(c, c)
        self.down = ConvBNReLU(c, c2)
        self.inner = Hourglass(depth - 1, c2, growth) if depth > 0 else ConvBNReLU(c2, c2)
        self.up = ConvBNReLU(c2, c)

    def forward(self, x):
        low = self.up(self.inner(self.down(F.max_pool2d(x, 2))))
        return self.skip(x) + F.interpolate(low, scale_factor=2, mode="nearest")


class SoftplusHead(nn.Module):
    """Linear 3x3 conv followed by softplus: positive output whose gradient never vanishes."""

    def __init__(self, ci: int, co: int):
        super().__init__()
        self.conv = nn.Conv2d(ci, co, 3, padding=1)

    def forward(self, x):
        return F.softplus(self.conv(x))


class StackedHourglass(nn.Module):
    def __init__(self, cfg: ArchConfig):
        super().__init__()
        self.cfg = cfg
        Fc, n_out = cfg.channels, cfg.outputs
        widths = (1, *cfg.stem)
        stem = [ConvBNReLU(widths[0], widths[1], 7)]
        stem += [ConvBNReLU(a, b) for a, b in zip(widths[1:-1], widths[2:])]
        stem.append(ConvBNReLU(widths[-1], Fc))
        self.stem = nn.Sequential(*stem)
        self.hourglasses = nn.ModuleList(
            Hourglass(cfg.poolings - 1, Fc, cfg.growth) for _ in range(cfg.stacks)
        )
        self.features = nn.ModuleList(
            nn.Sequential(ConvBNReLU(Fc, Fc), ConvBNReLU(Fc, Fc, 1)) for _ in range(cfg.stacks)
        )
        head = SoftplusHead if cfg.target == "end-to-end-softplus" else ConvBNReLU
        self.heads = nn.ModuleList(head(Fc, n_out) for _ in range(cfg.stacks))
        self.merge_pred = nn.ModuleList(ConvBNReLU(n_out, Fc) for _ in range(cfg.stacks - 1))
        self.merge_feat = nn.ModuleList(ConvBNReLU(Fc, Fc) for _ in range(cfg.stacks - 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        preds = []
        for i in range(self.cfg.stacks):
            feat = self.features[i](self.hourglasses[i](x))
            pred = self.heads[i](feat)
            preds.append(pred)
            if i < self.cfg.stacks - 1:
                x = self.merge(i, feat, pred)
        return preds

    def merge(self, i: int, feat: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        """The next stack's input: both branches re-projected and added (no identity term)."""
        return self.merge_pred[i](pred) + self.merge_feat[i](feat)


# ------------------------------------------------------- Park's original network
class ConvReLU(nn.Sequential):
    """Park's unit: conv + bias, ReLU; weights ~ N(0, 1/(k*k*c_in)) as his TF code."""

    def __init__(self, ci: int, co: int, k: int = 3, relu: bool = True):
        conv = nn.Conv2d(ci, co, k, padding=k // 2)
        nn.init.normal_(conv.weight, 0.0, math.sqrt(1.0 / (k * k * ci)))
        nn.init.zeros_(conv.bias)
        super().__init__(conv, *([nn.ReLU(inplace=True)] if relu else []))


class ParkHourglass(nn.Module):
    def __init__(self, n: int, f: int):
        super().__init__()
        self.up1 = ConvReLU(f, f)
        self.low1 = ConvReLU(f, f)
        self.low2 = ParkHourglass(n - 1, f) if n > 1 else ConvReLU(f, f)
        self.low3 = ConvReLU(f, f)

    def forward(self, x):
        up1 = self.up1(x)
        low = self.low3(self.low2(self.low1(F.max_pool2d(x, 2))))
        return up1 + F.interpolate(low, size=up1.shape[-2:], mode="nearest")


class ParkStackedHourglass(nn.Module):
    def __init__(self, cfg: ArchConfig):
        super().__init__()
        self.cfg = cfg
        f = cfg.channels
        widths = (1, *cfg.stem)
        stem = [ConvReLU(widths[0], widths[1], 7)]
        stem += [ConvReLU(a, b) for a, b in zip(widths[1:-1], widths[2:])]
        stem.append(ConvReLU(widths[-1], f))
        self.stem = nn.Sequential(*stem)
        self.hourglasses = nn.ModuleList(ParkHourglass(cfg.poolings, f) for _ in range(cfg.stacks))
        self.features = nn.ModuleList(
            nn.Sequential(ConvReLU(f, f), ConvReLU(f, f, 1)) for _ in range(cfg.stacks)
        )
        self.heads = nn.ModuleList(
            ConvReLU(f, cfg.outputs, 1, relu=False) for _ in range(cfg.stacks)
        )
        self.merge_feat = nn.ModuleList(
            ConvReLU(f, f, 1, relu=False) for _ in range(cfg.stacks - 1)
        )
        self.merge_pred = nn.ModuleList(
            ConvReLU(cfg.outputs, f, 1, relu=False) for _ in range(cfg.stacks - 1)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        preds = []
        for i in range(self.cfg.stacks):
            feat = self.features[i](self.hourglasses[i](x))
            pred = self.heads[i](feat)
            preds.append(pred)
            if i < self.cfg.stacks - 1:
                x = x + self.merge_feat[i](feat) + self.merge_pred[i](pred)
        return preds


def build_model(cfg: ArchConfig | dict) -> nn.Module:
    """The network of an architecture config (``ArchConfig`` or its dict), built by its kind's
    record (``nets/kinds/``): the one place that knows how a kind is built."""
    if isinstance(cfg, dict):
        cfg = ArchConfig.from_dict(cfg)
    return network_kind(cfg.kind).build(cfg)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def uses_mask(target: str) -> bool:
    return not target.startswith("end-to-end")


def loss_terms(
    pred: torch.Tensor, mix: torch.Tensor, voice: torch.Tensor, acc: torch.Tensor, target: str
) -> torch.Tensor:
    """Mean |estimate - target| of one stack's prediction (the report's L1 loss).

    Masks are applied to the mixture first (Park's loss: |mask * mix - source|).
    ``pred`` is (B, outputs, 512, T); ``mix``/``voice``/``acc`` are (B, 1, 512, T).
    """
    if target == "masks":
        est, ref = pred * mix, torch.cat([voice, acc], 1)
    elif target == "voice":
        est, ref = pred * mix, voice
    elif target == "accompaniment":
        est, ref = pred * mix, acc
    else:  # end-to-end
        est, ref = pred, torch.cat([voice, acc], 1)
    return (est - ref).abs().mean()


def sources_from_prediction(
    pred: torch.Tensor, mix: torch.Tensor, target: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(voice, accompaniment) magnitudes from the last stack's prediction.

    ``pred``: (B, outputs, 512, T); ``mix``: (B, 1, 512, T) normalised magnitude.
    Masks are clipped at 0 (Park's linear heads can go negative); single-mask modes
    give the other source as the mixture minus the estimate, floored at 0.
    """
    pred = pred.float().clamp_min(0)
    mix = mix.float()
    if target == "masks":
        return pred[:, 0:1] * mix, pred[:, 1:2] * mix
    if target == "voice":
        v = pred[:, 0:1] * mix
        return v, (mix - v).clamp_min(0)
    if target == "accompaniment":
        a = pred[:, 0:1] * mix
        return (mix - a).clamp_min(0), a
    return pred[:, 0:1], pred[:, 1:2]
