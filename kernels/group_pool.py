"""Pooling over the group axis of ``[B, C, G, H, W]`` features (pure-torch reference)."""

from __future__ import annotations

import torch

_MODES = ("max", "mean")


def group_pool(x: torch.Tensor, mode: str = "max") -> torch.Tensor:
    """Max or mean over the group axis: ``[B, C, G, H, W]`` → ``[B, C, H, W]``."""
    if x.dim() != 5:
        raise ValueError(f"x must have shape [B, C, G, H, W], got {tuple(x.shape)}")
    if mode == "max":
        return x.amax(2)
    if mode == "mean":
        return x.mean(2)
    raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")


def global_max_pool(x: torch.Tensor) -> torch.Tensor:
    """Max over (G, H, W): ``[B, C, G, H, W]`` → ``[B, C]`` (the invariant head of the CKResNet)."""
    if x.dim() != 5:
        raise ValueError(f"x must have shape [B, C, G, H, W], got {tuple(x.shape)}")
    return x.amax((2, 3, 4))
