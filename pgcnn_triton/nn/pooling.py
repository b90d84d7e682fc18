"""Pooling of ``[B, C, G, H, W]`` group features: spatial, over the group axis, global."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ..kernels import global_max_pool, group_pool


class SpatialMaxPool(nn.Module):
    """``max_pool2d`` over (H, W) for every (channel, element); the elements are unchanged."""

    def __init__(self, kernel_size: int = 2, stride: int | None = None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5:
            raise ValueError(f"x must have shape [B, C, G, H, W], got {tuple(x.shape)}")
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return group_pool(x, self.mode)


class GlobalMaxPool(nn.Module):
    """Max over (G, H, W): ``[B, C, G, H, W]`` → ``[B, C]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return global_max_pool(x)


class GlobalMeanPool(nn.Module):
    """Mean over (G, H, W): ``[B, C, G, H, W]`` → ``[B, C]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5:
            raise ValueError(f"x must have shape [B, C, G, H, W], got {tuple(x.shape)}")
        return x.mean((2, 3, 4))
