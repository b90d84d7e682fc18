"""Pure-torch group pooling, forward and backward: the reference the Triton kernels are tested against.

Layout: ``x`` is ``[B, C, G, H, W]``. Max pooling returns the pooled values and the arg-max as int32.

Tie rule (shared with the Triton kernels): the arg-max is the **first** maximal index, as ``torch.argmax``,
and the backward sends the **whole** gradient to that element (``torch.amax`` would split it evenly
between ties). A NaN counts as larger than any number, so NaNs propagate to the output; the first NaN wins.
Every backward here is a gather (each output element is computed independently), so it is deterministic.
"""

from __future__ import annotations

import torch


def _pick(x: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Values and first arg-max (int32) of ``x`` along ``dim`` (``torch.argmax`` treats NaN as the maximum)."""
    index = x.argmax(dim, keepdim=True)
    return x.gather(dim, index).squeeze(dim), index.squeeze(dim).to(torch.int32)


def group_max_forward(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Max over G: ``[B, C, G, H, W]`` → values ``[B, C, H, W]`` and the first arg-max ``g`` (int32)."""
    return _pick(x, 2)


def group_max_backward(grad: torch.Tensor, argmax: torch.Tensor, G: int) -> torch.Tensor:
    """``dx[b, c, g, h, w] = grad[b, c, h, w]`` where ``g == argmax[b, c, h, w]``, else 0."""
    g = torch.arange(G, device=grad.device).view(G, 1, 1)
    return torch.where(g == argmax.unsqueeze(2), grad.unsqueeze(2), 0).contiguous()


def group_mean_forward(x: torch.Tensor) -> torch.Tensor:
    """Mean over G: ``[B, C, G, H, W]`` → ``[B, C, H, W]``."""
    return x.mean(2)


def group_mean_backward(grad: torch.Tensor, G: int) -> torch.Tensor:
    """``dx[b, c, g, h, w] = grad[b, c, h, w] / G`` for every ``g`` (a fresh contiguous tensor)."""
    B, C, H, W = grad.shape
    return (grad / G).unsqueeze(2).expand(B, C, G, H, W).contiguous()


def global_max_forward(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Max over (G, H, W): ``[B, C, G, H, W]`` → values ``[B, C]`` and the first arg-max (int32) into the
    flattened ``g·H·W + h·W + w``."""
    return _pick(x.flatten(2), 2)


def global_max_backward(grad: torch.Tensor, argmax: torch.Tensor, G: int, H: int, W: int) -> torch.Tensor:
    """``dx[b, c, g, h, w] = grad[b, c]`` at the flattened arg-max position, zeros elsewhere."""
    B, C = grad.shape
    r = torch.arange(G * H * W, device=grad.device)
    return torch.where(r == argmax.unsqueeze(2), grad.unsqueeze(2), 0).view(B, C, G, H, W)
