"""Collect the norms of the kernels generated in a forward, without keeping kernels on modules.

The paper's weight-decay term is ``λ·Σ_layers (‖K_l‖₂ + ‖b_l‖₂)``: unsquared Frobenius norms of the
*generated* (masked) kernel of every lifting / group / pointwise conv, plus its bias (docs/method.md#regularisers).
The tap-packed bank holds exactly the in-disk taps, so its norm equals the masked kernel's norm.

    with collect_kernel_norms() as norms:
        logits = model(x)
    loss = ce(logits, y) + weight_decay * torch.stack(norms).sum()

Outside the context nothing is recorded (no cost, no references kept). The norms are differentiable.
The collector is a plain module global rather than a ``ContextVar`` so that ``torch.compile`` traces
``record_kernel`` without a graph break (Dynamo guards on the attribute and replays the appends);
collect in one thread at a time (data-parallel training uses processes, not threads).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

_ACTIVE: list | None = None


@contextmanager
def collect_kernel_norms():
    """Context manager yielding a list that receives one scalar per conv call: ``‖bank‖ + ‖bias‖``."""
    norms: list[torch.Tensor] = []
    global _ACTIVE
    outer, _ACTIVE = _ACTIVE, norms
    try:
        yield norms
    finally:
        _ACTIVE = outer


def record_kernel(bank: torch.Tensor, bias: torch.Tensor | None) -> None:
    """Called by the conv layers with the bank they generated (a no-op unless collecting)."""
    norms = _ACTIVE
    if norms is None:
        return
    # float32 at least (bf16 / fp16 banks), float64 banks stay float64
    value = bank.to(torch.promote_types(bank.dtype, torch.float32)).norm()
    if bias is not None:
        value = value + bias.to(value.dtype).norm()
    norms.append(value)
