"""Kernel bank op: the kernel net's last linear layer, laid out as the tap-packed conv bank.

bank[s, o·N_out + n, t, c·N_in + g] = Σ_h hidden[s, n, g, t, h] · weight[o·C_in + c, h] + bias[o·C_in + c]

* ``hidden``: ``[S, N_out, N_in, T, H]``, the kernel net's last hidden features at every kernel-net
  input point (output element n, input element g, in-disk tap t);
* ``weight``: ``[C_out·C_in, H]`` (C_out-major, as the kernel net emits it), ``bias``: ``[C_out·C_in]``;
* result: ``[S, C_out·N_out, T, C_in·N_in]``. Output channels are ordered ``o·N_out + n`` so the conv
  output is already ``[B, C_out, N_out, H, W]``; input channels ``c·N_in + g`` match ``[B, C_in, N_in, H, W]``.

Only in-disk taps exist in this layout, so there is no mask to apply. This module is the pure-torch
reference; a Triton kernel replaces it behind the same signature.
"""

from __future__ import annotations

import torch
from einops import rearrange


def kernel_bank(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    out_channels: int,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Build the tap-packed kernel bank (see the module docstring for the layout)."""
    if hidden.dim() != 5:
        raise ValueError(f"hidden must have shape [S, N_out, N_in, T, H], got {tuple(hidden.shape)}")
    if weight.dim() != 2 or weight.shape[1] != hidden.shape[-1]:
        raise ValueError(
            f"weight must have shape [C_out*C_in, {hidden.shape[-1]}] to match hidden, got {tuple(weight.shape)}"
        )
    if weight.shape[0] % out_channels:
        raise ValueError(f"weight rows ({weight.shape[0]}) must be a multiple of out_channels ({out_channels})")
    values = torch.matmul(hidden, weight.t())
    if bias is not None:
        values = values + bias
    bank = rearrange(values, "s n g t (o c) -> s (o n) t (c g)", o=out_channels)
    return bank if dtype is None else bank.to(dtype)
