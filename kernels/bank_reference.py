"""Pure-torch reference of the kernel-bank op, forward and backward (layout in :mod:`.bank`).

Both run the GEMM in float32 (float64 when any input is float64) whatever the storage dtypes, so
bf16 hidden features give the same bank as the Triton kernel, which accumulates in fp32 too.
"""

from __future__ import annotations

import torch
from einops import rearrange


def compute_dtype(*tensors: torch.Tensor | None) -> torch.dtype:
    """float64 if any given tensor is float64, else float32 (the accumulation dtype of the op)."""
    return torch.float64 if any(t is not None and t.dtype == torch.float64 for t in tensors) else torch.float32


def bank_forward_reference(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    out_channels: int,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """``[S, N_out, N_in, T, H]`` hidden → ``[S, C_out·N_out, T, C_in·N_in]`` bank in ``dtype or hidden.dtype``."""
    ct = compute_dtype(hidden, weight, bias)
    # F.linear adds the bias inside the GEMM (addmm) instead of a second pass over the values
    values = torch.nn.functional.linear(hidden.to(ct), weight.to(ct), None if bias is None else bias.to(ct))
    bank = rearrange(values, "s n g t (o c) -> s (o n) t (c g)", o=out_channels)
    # a fresh contiguous tensor: custom ops may not return views of their inputs
    return bank.to(dtype or hidden.dtype).contiguous()


def bank_backward_reference(
    grad_bank: torch.Tensor,
    hidden: torch.Tensor,
    weight: torch.Tensor,
    has_bias: bool,
    out_channels: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Gradients of :func:`bank_forward_reference` given ``grad_bank``.

    Returns ``(grad_hidden, grad_weight, grad_bias)``: ``grad_hidden`` in ``hidden.dtype``,
    ``grad_weight`` in ``weight.dtype``, ``grad_bias`` in the compute dtype (``None`` without bias).
    """
    ct = compute_dtype(grad_bank, hidden, weight)
    n_in = hidden.shape[2]
    # one contiguous copy, shared by both GEMMs below (each would otherwise copy the permuted view)
    g = rearrange(grad_bank.to(ct), "s (o n) t (c g) -> s n g t (o c)", o=out_channels, g=n_in).contiguous()
    grad_hidden = torch.matmul(g, weight.to(ct))
    rows = g.reshape(-1, g.shape[-1])
    grad_weight = rows.t() @ hidden.to(ct).reshape(-1, hidden.shape[-1])
    grad_bias = rows.sum(0) if has_bias else None
    return grad_hidden.to(hidden.dtype), grad_weight.to(weight.dtype), grad_bias
