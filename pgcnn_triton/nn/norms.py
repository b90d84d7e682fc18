"""Normalisations of ``[B, C, G, H, W]`` group features (method.md §5.4)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

NORMS = ("batch", "layer")


class GroupBatchNorm(nn.BatchNorm3d):
    """Per-channel statistics over (B, G, H, W), affine: ``BatchNorm3d(C)`` on ``[B, C, G, H, W]``."""


class GroupLayerNorm(nn.GroupNorm):
    """Per-sample statistics over (C, G, H, W), affine per channel: ``GroupNorm(1, C, eps=1e-12)``."""

    def __init__(self, num_channels: int, eps: float = 1e-12):
        super().__init__(1, num_channels, eps=eps)


class GroupInstanceNorm(nn.Module):
    """Non-affine normalisation over (G, H, W) for every (b, c) (the CKResNet block's inner norm)."""

    def __init__(self, eps: float = 1e-5):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-3:], eps=self.eps)


def make_norm(name: str, channels: int) -> nn.Module:
    """``"batch"`` → :class:`GroupBatchNorm`, ``"layer"`` → :class:`GroupLayerNorm`."""
    key = {"batch": "batch", "batchnorm": "batch", "layer": "layer", "layernorm": "layer"}.get(str(name).lower())
    if key is None:
        raise ValueError(f"unknown norm {name!r}: expected one of {NORMS}")
    return GroupBatchNorm(channels) if key == "batch" else GroupLayerNorm(channels)
