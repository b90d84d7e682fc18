"""Group-axis convolution op: ``[B, C_in, N_in, H, W]`` features with a tap-packed bank.

y[b, o, n, p] = bias[o] + Σ_{c, g, t} bank[s(b), o·N_out + n, t, c·N_in + g] · x[b, c, g, p + offset_t]

(a cross-correlation, as ``F.conv2d``; ``s(b) = 0`` for a shared bank, ``b`` for per-sample banks).
The sum over input elements is unnormalised (method.md §4.5). This module is the pure-torch
reference: it scatters the in-disk taps into a dense k×k kernel with a gather (no boolean-mask
assignment) and calls one ``conv2d`` (a grouped conv with ``groups = B`` for per-sample banks).
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

from .taps import disk_taps


@lru_cache(maxsize=None)
def _dense_index(kernel_size: int, device: torch.device) -> torch.Tensor:
    # cached per device: a host-to-device copy in every forward would synchronise the host on GPU
    return disk_taps(kernel_size).dense_index.to(device)


def resolve_padding(padding, kernel_size: int) -> int:
    if padding == "same":
        return kernel_size // 2
    if padding == "valid":
        return 0
    if isinstance(padding, int) and not isinstance(padding, bool) and padding >= 0:
        return padding
    raise ValueError(f"padding must be 'same', 'valid' or a non-negative int, got {padding!r}")


def dense_kernel(bank: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Tap-packed ``[..., O, T, I]`` → dense ``[..., O, I, k, k]`` with zeros outside the disk."""
    layout = disk_taps(kernel_size)
    if bank.shape[-2] != layout.num_taps:
        raise ValueError(
            f"bank has {bank.shape[-2]} taps but kernel_size={kernel_size} has {layout.num_taps} in-disk taps"
        )
    padded = torch.cat([bank, bank.new_zeros(*bank.shape[:-2], 1, bank.shape[-1])], -2)
    dense = padded.index_select(-2, _dense_index(kernel_size, bank.device))
    return dense.transpose(-1, -2).reshape(*bank.shape[:-2], bank.shape[-1], kernel_size, kernel_size)


def group_conv2d(
    x: torch.Tensor,
    bank: torch.Tensor,
    kernel_size: int,
    out_channels: int,
    bias: torch.Tensor | None = None,
    padding="same",
) -> torch.Tensor:
    """Convolve group features with a shared ``[C_out·N_out, T, C_in·N_in]`` (or ``[1, …]``) bank or
    per-sample ``[B, C_out·N_out, T, C_in·N_in]`` banks. Returns ``[B, C_out, N_out, H', W']``."""
    if x.dim() != 5:
        raise ValueError(f"x must have shape [B, C_in, N_in, H, W], got {tuple(x.shape)}")
    if bank.dim() == 3:
        bank = bank[None]
    if bank.dim() != 4:
        raise ValueError(f"bank must have shape [S, C_out*N_out, T, C_in*N_in], got {tuple(bank.shape)}")
    b, c_in, n_in, h, w = x.shape
    s, rows, _, cols = bank.shape
    if cols != c_in * n_in:
        raise ValueError(f"bank has {cols} input columns but x has C_in*N_in = {c_in}*{n_in} = {c_in * n_in}")
    if s not in (1, b):
        raise ValueError(f"bank must be shared (S=1) or per-sample (S=B={b}), got S={s}")
    if rows % out_channels:
        raise ValueError(f"bank rows ({rows}) must be a multiple of out_channels ({out_channels})")
    pad = resolve_padding(padding, kernel_size)
    weight = dense_kernel(bank, kernel_size).to(x.dtype)
    full_bias = None if bias is None else bias.to(x.dtype).repeat_interleave(rows // out_channels)
    if s == 1:
        y = F.conv2d(x.reshape(b, cols, h, w), weight[0], full_bias, padding=pad)
    else:
        y = F.conv2d(x.reshape(1, b * cols, h, w), weight.reshape(b * rows, cols, kernel_size, kernel_size),
                     None if full_bias is None else full_bias.repeat(b), padding=pad, groups=b)
    return y.reshape(b, out_channels, rows // out_channels, y.shape[-2], y.shape[-1])
