"""Adam with the three parameter groups of docs/method.md#optimiser-and-schedule: weights, partial-equivariance parameters, ω0."""

from __future__ import annotations

import torch
from torch import nn

from ..sampling import PartialSampler


def partition_parameters(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """Split trainable parameters into ``{"weights", "probs", "omega0"}``.

    ``probs``: every :class:`~pgcnn_triton.sampling.PartialSampler` parameter (θ, mirror logits, gates);
    ``omega0``: learnable SIREN frequencies; ``weights``: everything else.
    """
    probs = {id(p) for m in model.modules() if isinstance(m, PartialSampler) for p in m.parameters()}
    groups = {"weights": [], "probs": [], "omega0": []}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if id(p) in probs:
            groups["probs"].append(p)
        elif name.split(".")[-1] == "omega0":
            groups["omega0"].append(p)
        else:
            groups["weights"].append(p)
    return groups


def build_optimizer(model: nn.Module, lr: float, lr_probs: float | None = None,
                    lr_omega0: float | None = None) -> torch.optim.Adam:
    """Adam over the non-empty groups of :func:`partition_parameters`, each with its learning rate.

    Each param group carries a ``"name"`` key (``weights`` / ``probs`` / ``omega0``).
    """
    rates = {"weights": lr, "probs": lr if lr_probs is None else lr_probs,
             "omega0": lr if lr_omega0 is None else lr_omega0}
    groups = [{"params": params, "lr": rates[name], "name": name}
              for name, params in partition_parameters(model).items() if params]
    if not groups:
        raise ValueError("model has no trainable parameters")
    return torch.optim.Adam(groups)
