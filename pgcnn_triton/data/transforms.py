"""Image transforms used to build datasets (no torchvision needed)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def rotate(images: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate ``[N, C, H, W]`` images counter-clockwise by ``angles`` (radians, ``[N]``), bilinear, zero fill.

    uint8 input gives uint8 output (rounded); float input gives float output.
    """
    if images.dim() != 4:
        raise ValueError(f"images must be [N, C, H, W], got shape {tuple(images.shape)}")
    angles = torch.as_tensor(angles, dtype=torch.float32).reshape(-1)
    if angles.numel() != images.shape[0]:
        raise ValueError(f"angles must hold one angle per image ({images.shape[0]}), got {angles.numel()}")
    x = images.float()
    cos, sin = torch.cos(angles), torch.sin(angles)
    # affine_grid maps output coords to input coords; this inverse rotation turns the content CCW.
    theta = torch.stack([torch.stack([cos, -sin, torch.zeros_like(cos)], 1),
                         torch.stack([sin, cos, torch.zeros_like(cos)], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if images.dtype == torch.uint8:
        return out.round().clamp(0, 255).to(torch.uint8)
    return out


def random_angles(n: int, max_degrees: float, seed: int) -> torch.Tensor:
    """``n`` angles uniform in ``[−max_degrees, max_degrees]`` degrees, as radians, from a seeded generator."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, generator=g) * 2 - 1) * math.radians(max_degrees)
