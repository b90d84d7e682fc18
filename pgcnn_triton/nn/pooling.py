"""Pooling of ``[B, C, G, H, W]`` group features: spatial, over the group axis, global.

The group-axis and global pools take an optional static-shape-mode slot mask (``pool(x, mask)``,
bool ``[S, G]``; ``None``: all valid) and then ignore the masked slots: a max never picks one, a mean
divides by the number of valid slots. The spatial pool needs none (it never mixes slots).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .._checks import integer
from ..kernels import global_max_pool, group_pool
from .conv import slot_weights


def exclude_masked(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``x`` with its masked slots at −inf, so that no max picks them (None: ``x`` unchanged)."""
    if mask is None:
        return x
    return torch.where(mask[:, None, :, None, None], x, torch.full_like(x[:1, :1, :1, :1, :1], float("-inf")))


def masked_group_pool(x: torch.Tensor, mode: str, mask: torch.Tensor | None) -> torch.Tensor:
    """Max or mean over G of the valid slots: ``[B, C, G, H, W]`` → ``[B, C, H, W]``."""
    if mask is None:
        return group_pool(x, mode)
    if mode == "max":
        return group_pool(exclude_masked(x, mask), "max")
    w = slot_weights(mask, x)
    return (x * w).sum(2) / w.sum(2)


def masked_global_max_pool(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Max over (G, H, W) of the valid slots: ``[B, C, G, H, W]`` → ``[B, C]``."""
    return global_max_pool(exclude_masked(x, mask))


def masked_global_mean_pool(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over (G, H, W) of the valid slots: ``[B, C, G, H, W]`` → ``[B, C]``."""
    if mask is None:
        return x.mean((2, 3, 4))
    w = slot_weights(mask, x)
    return (x * w).sum((2, 3, 4)) / (w.sum(2) * x.shape[3] * x.shape[4]).flatten(1)


class SpatialMaxPool(nn.Module):
    """``max_pool2d`` over (H, W) for every (channel, element); the elements are unchanged."""

    def __init__(self, kernel_size: int = 2, stride: int | None = None):
        super().__init__()
        self.kernel_size = integer(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else integer(stride, "stride")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5:
            raise ValueError(f"x must have shape [B, C, G, H, W], got {tuple(x.shape)}")
        if min(x.shape[3:]) < self.kernel_size:
            raise ValueError(f"SpatialMaxPool(kernel_size={self.kernel_size}) needs inputs of at least "
                             f"{self.kernel_size}x{self.kernel_size}, got {x.shape[3]}x{x.shape[4]}")
        b, c = x.shape[:2]
        y = F.max_pool2d(rearrange(x, "b c g h w -> b (c g) h w"), self.kernel_size, self.stride)
        return rearrange(y, "b (c g) h w -> b c g h w", b=b, c=c)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class GroupPool(nn.Module):
    """Max or mean over the group axis: ``[B, C, G, H, W]`` → ``[B, C, H, W]`` (an invariant map)."""

    def __init__(self, mode: str = "max"):
        super().__init__()
        if mode not in ("max", "mean"):
            raise ValueError(f"mode must be 'max' or 'mean', got {mode!r}")
        self.mode = mode

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return masked_group_pool(x, self.mode, mask)


class GlobalMaxPool(nn.Module):
    """Max over (G, H, W): ``[B, C, G, H, W]`` → ``[B, C]``."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return masked_global_max_pool(x, mask)


class GlobalMeanPool(nn.Module):
    """Mean over (G, H, W): ``[B, C, G, H, W]`` → ``[B, C]``."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() != 5:
            raise ValueError(f"x must have shape [B, C, G, H, W], got {tuple(x.shape)}")
        return masked_global_mean_pool(x, mask)
