"""The two regularisers of Partial G-CNNs (docs/method.md#regularisers)."""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

from ..sampling import PartialSampler


def kernel_norm_penalty(norms: list[torch.Tensor], weight: float) -> torch.Tensor | None:
    """``weight · Σ_l (‖K_l‖ + ‖b_l‖)`` from the norms recorded by :func:`pgcnn_triton.nn.collect_kernel_norms`.

    ``None`` when ``weight`` is 0 or nothing was recorded.
    """
    if not weight or not norms:
        return None
    return weight * torch.stack(norms).sum()


def partial_parameters(model: nn.Module) -> list[torch.Tensor]:
    """The ``probs`` of every partial sampler, in module order (θ, or [θ, mirror logit] for E2)."""
    return [m.probs for m in model.modules() if isinstance(m, PartialSampler)]


def monotonic_penalty(model: nn.Module, weight: float) -> torch.Tensor | None:
    """``weight · Σ_l ReLU(probs_{l+1} − probs_l)`` over consecutive partial layers (component-wise for E2).

    Penalises a layer that is more equivariant than the one before it. ``None`` if ``weight`` is 0 or
    the model has fewer than two partial layers.
    """
    probs = partial_parameters(model)
    if not weight or len(probs) < 2:
        return None
    terms = [torch.relu(b - a).sum() for a, b in pairwise(probs) if a.shape == b.shape]
    return weight * torch.stack(terms).sum() if terms else None
