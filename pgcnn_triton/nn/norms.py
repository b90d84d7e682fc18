"""Normalisations of ``[B, C, G, H, W]`` group features (docs/method.md#pooling-and-normalisation).

Every norm takes an optional static-shape-mode slot mask (``norm(x, mask)``, bool ``[S, G]``,
S ∈ {1, B}; ``None``: all valid): its statistics then run over the valid slots only (running
statistics follow), and its masked outputs are exactly zero, so it computes what the norm computes
on the dynamic layer's smaller tensor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import eps as check_eps
from .._checks import integer, number
from .conv import slot_weights

NORMS = ("batch", "layer")


def masked_moments(x: torch.Tensor, w: torch.Tensor, dims: tuple[int, ...]):
    """Mean, biased variance and count of ``x`` over ``dims`` (which include H, W: axes 3, 4), counting
    the slots where ``w`` = 1 (``w`` broadcasts to ``x`` as ``[S, 1, G, 1, 1]``).

    One pass for the per-slot moments over (H, W), then the valid slots combined (all of one size:
    the mean of the slot means, and of the slot variances plus the spread of the slot means)."""
    var_s, mean_s = torch.var_mean(x, dim=(3, 4), correction=0, keepdim=True)
    rest = tuple(d for d in dims if d not in (3, 4))
    slots = w.expand_as(mean_s).sum(rest, keepdim=True)
    mean = (mean_s * w).sum(rest, keepdim=True) / slots
    var = ((var_s + (mean_s - mean).square()) * w).sum(rest, keepdim=True) / slots
    return mean, var, slots * (x.shape[3] * x.shape[4])


def stats_dtype(x: torch.Tensor) -> torch.dtype:
    """Statistics of bf16 / fp16 features are taken in float32, as the plain norms do."""
    return torch.promote_types(x.dtype, torch.float32)


def layer_norm_dtype(x: torch.Tensor) -> torch.dtype:
    """The output dtype of ``F.layer_norm`` / ``F.group_norm`` for ``x``: float32 under CUDA autocast
    (whose float32 list holds them; CPU autocast leaves them in ``x``'s dtype), else ``x``'s."""
    if x.device.type == "cuda" and torch.is_autocast_enabled("cuda"):
        return stats_dtype(x)
    return x.dtype


class GroupBatchNorm(nn.BatchNorm3d):
    """Per-channel statistics over (B, G, H, W), affine: ``BatchNorm3d(C)`` on ``[B, C, G, H, W]``.

    Arguments as ``nn.BatchNorm3d``, checked: ``num_features`` an int >= 1, ``eps`` finite > 0,
    ``momentum`` None or in [0, 1]."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None):
        integer(num_features, "num_features")
        check_eps(eps)
        if momentum is not None:
            number(momentum, "momentum", low=0.0, high=1.0)
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None:
            return super().forward(x)
        if not (self.training or not self.track_running_stats):
            # running statistics: the plain norm on every slot (exactly the dynamic layer's values on
            # the valid ones, one native pass in x's dtype), then the masked slots zeroed
            y = super().forward(x)
            return y * slot_weights(mask, y)
        out_dtype, x = x.dtype, x.to(stats_dtype(x))
        w = slot_weights(mask, x)
        mean, var, count = masked_moments(x, w, (0, 2, 3, 4))
        if self.track_running_stats:
            self._update_running(mean, var, count)
        y = (x - mean) * torch.rsqrt(var + self.eps)
        if self.affine:
            y = y * self.weight.view(1, -1, 1, 1, 1) + self.bias.view(1, -1, 1, 1, 1)
        return (y * w).to(out_dtype)

    def _update_running(self, mean, var, count):
        # as nn.BatchNorm: the running variance is the unbiased one, momentum None = cumulative average
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            momentum = self.momentum if self.momentum is not None else 1.0 / self.num_batches_tracked
            unbiased = var * count / (count - 1).clamp_min(1)
            self.running_mean.lerp_(mean.flatten().to(self.running_mean.dtype), momentum)
            self.running_var.lerp_(unbiased.flatten().to(self.running_var.dtype), momentum)


class GroupLayerNorm(nn.GroupNorm):
    """Per-sample statistics over (C, G, H, W), affine per channel: ``GroupNorm(1, C, eps=1e-12)``.

    ``eps`` (here and in the other norms) must be finite and at least float32's smallest normal number
    (:data:`pgcnn_triton._checks.EPS_MIN`): below it a constant channel would divide 0 by 0."""

    def __init__(self, num_channels: int, eps: float = 1e-12):
        super().__init__(1, integer(num_channels, "num_channels"), eps=check_eps(eps))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None:
            return super().forward(x)
        out_dtype, x = layer_norm_dtype(x), x.to(stats_dtype(x))
        w = slot_weights(mask, x)
        mean, var, _ = masked_moments(x, w, (1, 2, 3, 4))
        y = (x - mean) * torch.rsqrt(var + self.eps)
        if self.affine:
            y = y * self.weight.view(1, -1, 1, 1, 1) + self.bias.view(1, -1, 1, 1, 1)
        return (y * w).to(out_dtype)


class GroupInstanceNorm(nn.Module):
    """Non-affine normalisation over (G, H, W) for every (b, c) (the CKResNet block's inner norm)."""

    def __init__(self, eps: float = 1e-5):
        super().__init__()
        self.eps = check_eps(eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None:
            return F.layer_norm(x, x.shape[-3:], eps=self.eps)
        out_dtype, x = layer_norm_dtype(x), x.to(stats_dtype(x))
        w = slot_weights(mask, x)
        mean, var, _ = masked_moments(x, w, (2, 3, 4))
        # the mask folded into the per-(b, c, slot) scale: one pass for the output
        return ((x - mean) * (torch.rsqrt(var + self.eps) * w)).to(out_dtype)


def make_norm(name: str, channels: int) -> nn.Module:
    """``"batch"`` → :class:`GroupBatchNorm`, ``"layer"`` → :class:`GroupLayerNorm`."""
    key = {"batch": "batch", "batchnorm": "batch", "layer": "layer", "layernorm": "layer"}.get(str(name).lower())
    if key is None:
        raise ValueError(f"unknown norm {name!r}: expected one of {NORMS}")
    return GroupBatchNorm(channels) if key == "batch" else GroupLayerNorm(channels)
