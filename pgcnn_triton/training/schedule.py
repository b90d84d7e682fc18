"""Per-iteration schedule: linear warm-up, then cosine annealing to ``min_lr`` (docs/method.md#training-recipe)."""

from __future__ import annotations

import math
from functools import partial

import torch


def lr_factor(step: int, *, warmup_steps: int, total_steps: int, base_lr: float, min_lr: float = 1e-6,
              scheduler: str = "cosine") -> float:
    """Multiplier of ``base_lr`` at optimizer step ``step`` (0-based).

    * warm-up (``step < warmup_steps``): ``(step + 1) / warmup_steps``, rising linearly to 1;
    * then ``min_lr/base_lr + (1 − min_lr/base_lr)·(1 + cos(π·t/T))/2`` with ``t = step − warmup_steps``
      and ``T = total_steps − warmup_steps``, reaching ``min_lr`` at ``total_steps``;
    * ``scheduler="constant"``: always 1.
    """
    if scheduler == "constant":
        return 1.0
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(total_steps - warmup_steps, 1)
    t = min(step - warmup_steps, span)
    floor = min(min_lr / base_lr, 1.0)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t / span))


def build_scheduler(optimizer: torch.optim.Optimizer, *, steps_per_epoch: int, epochs: int, warmup_epochs: int = 5,
                    min_lr: float = 1e-6, scheduler: str = "cosine") -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` stepped once per iteration; each param group anneals from its own lr to ``min_lr``.

    The warm-up is ``min(warmup_epochs, epochs − 1)`` epochs, so a short run still reaches its cosine phase.
    """
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
    warmup = min(warmup_epochs, max(epochs - 1, 0)) * steps_per_epoch
    total = epochs * steps_per_epoch
    lambdas = [partial(lr_factor, warmup_steps=warmup, total_steps=total, base_lr=group["lr"], min_lr=min_lr,
                       scheduler=scheduler) for group in optimizer.param_groups]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)
