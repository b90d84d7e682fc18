"""Pure-torch reference of the group-axis convolution (and its backward), via dense ``conv2d``.

y[b, o·N + n, p] = bias[o] + Σ_{t, c·G + g} bank[s(b), o·N + n, t, c·G + g] · x[b, c·G + g, p + offset_t + shift]

with ``shift = k // 2 − padding`` (a cross-correlation, as ``F.conv2d``); ``s(b) = 0`` for a shared
bank, ``b`` for per-sample banks. The tap-packed bank is scattered into a dense k×k kernel with a
gather (zeros outside the disk) and handed to one ``conv2d`` (grouped, ``groups = B``, for per-sample
banks); the backward is one ``aten.convolution_backward`` whose dense weight gradient is gathered
back to the in-disk taps. On GPU this is the cuDNN path that ``auto`` times the Triton kernel against.
On CPU, where oneDNN would multiply the zeros outside the disk too, the same functions run the split
lowering of :mod:`.group_conv_split` instead (a few dense sub-convolutions covering the disk exactly).
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

from . import group_conv_split
from .taps import num_disk_taps, tap_layout


@lru_cache(maxsize=None)
def _tap_cells(kernel_size: int, num_taps: int, device: torch.device) -> torch.Tensor:
    # cached per device: a host-to-device copy in every forward would synchronise the host on GPU
    layout = tap_layout(kernel_size, num_taps)
    cells = (layout.offsets[:, 0] + kernel_size // 2) * kernel_size + layout.offsets[:, 1] + kernel_size // 2
    return cells.to(device)


def dense_kernel(bank: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Tap-packed ``[..., O, T, I]`` → dense contiguous ``[..., O, I, k, k]`` with zeros outside the disk
    (T = k²: the square layout, no zeros)."""
    # one pass: scatter the taps into a zeroed NCHW buffer. On CPU this was 2× faster than a row
    # gather followed by a transposing copy, and a contiguous NCHW weight keeps oneDNN on its fast path
    # (a channels-last-strided weight made the 512-channel conv of the CIFAR CKResNet 40 % slower)
    *lead, rows, _, cols = bank.shape
    dense = bank.new_zeros(*lead, rows, cols, kernel_size * kernel_size)
    # _tap_cells validates T: the disk's or the square's count
    dense[..., _tap_cells(kernel_size, bank.shape[-2], bank.device)] = bank.transpose(-1, -2)
    return dense.reshape(*lead, rows, cols, kernel_size, kernel_size)


def packed_kernel(dense: torch.Tensor, kernel_size: int, num_taps: int | None = None) -> torch.Tensor:
    """Dense ``[..., O, I, k, k]`` → tap-packed ``[..., O, T, I]`` (the in-disk taps, or all k² for
    ``num_taps = k²``)."""
    # one transposing copy to [..., O, k·k, I], then a gather of whole I-rows (2-3× faster on CPU
    # than gathering single elements along the last axis and transposing after)
    rows_last = dense.reshape(*dense.shape[:-2], kernel_size * kernel_size).transpose(-1, -2).contiguous()
    cells = _tap_cells(kernel_size, num_taps or num_disk_taps(kernel_size), dense.device)
    return rows_last.index_select(-2, cells)


def _views(x, bank, kernel_size):
    x4, groups = group_conv_split.conv_input(x, bank)
    weight = dense_kernel(bank, kernel_size)
    return x4, weight.reshape(-1, *weight.shape[-3:]), groups


#: ``"auto"`` (the split lowering on CPU where it pays) or ``"dense"`` (always the dense masked conv, the
#: lowering before the split one existed: benchmarks compare the two in one run).
CPU_LOWERING = "auto"


def use_split(x: torch.Tensor, bank: torch.Tensor, kernel_size: int, split: bool | None = None) -> bool:
    """Whether to run the split lowering: ``split`` if given, else on CPU where it skips taps."""
    if split is not None:
        return split
    return (x.device.type == "cpu" and CPU_LOWERING == "auto"
            and group_conv_split.pays(kernel_size, bank.shape[-2], bank.shape[-1]))


def forward(x, bank, bias, kernel_size: int, padding: int, split: bool | None = None) -> torch.Tensor:
    """``x`` ``[B, C_in, G, H, W]``, ``bank`` ``[S, C_out·N, T, C_in·G]`` → ``[B, C_out·N, H', W']``.

    ``split``: run :mod:`.group_conv_split` (default: :func:`use_split`)."""
    if use_split(x, bank, kernel_size, split):
        return group_conv_split.forward(x, bank, bias, kernel_size, padding)
    b, rows = x.shape[0], bank.shape[1]
    x4, weight, groups = _views(x, bank, kernel_size)
    y = F.conv2d(x4, weight, group_conv_split.conv_bias(bias, rows, groups), padding=padding, groups=groups)
    # contiguous: the registered op promises the layout its fake kernel reports
    return y.reshape(b, rows, y.shape[-2], y.shape[-1]).contiguous()


def backward(grad_y, x, bank, kernel_size: int, padding: int, need_x: bool, need_bank: bool,
             split: bool | None = None):
    """``(grad_x, grad_bank)`` of :func:`forward` (``None`` where not needed); bias grad excluded."""
    if use_split(x, bank, kernel_size, split):
        return group_conv_split.backward(grad_y, x, bank, kernel_size, padding, need_x, need_bank)
    rows = bank.shape[1]
    x4, weight, groups = _views(x, bank, kernel_size)
    gy = grad_y.reshape(x4.shape[0], groups * rows, grad_y.shape[-2], grad_y.shape[-1])
    gx, gw, _ = torch.ops.aten.convolution_backward(
        gy, x4, weight, None, [1, 1], [padding, padding], [1, 1], False, [0, 0], groups,
        [need_x, need_bank, False])
    grad_x = gx.reshape(x.shape).contiguous() if need_x else None
    grad_bank = None
    if need_bank:
        grad_bank = packed_kernel(gw.reshape(bank.shape[0], rows, bank.shape[-1], kernel_size, kernel_size),
                                  kernel_size, bank.shape[-2]).contiguous()
    return grad_x, grad_bank


def forward_pooled(x, bank, bias, kernel_size: int, out_channels: int, padding: int, mode: str,
                   split: bool | None = None):
    """Convolution then max / mean over the output elements: ``(y [B, C_out, H', W'], argmax)``.

    The arg-max (int32) is the first maximal element; for ``mean`` it is an empty tensor."""
    y = forward(x, bank, bias, kernel_size, padding, split)
    y = y.reshape(y.shape[0], out_channels, -1, y.shape[-2], y.shape[-1])
    if mode == "max":
        # torch.max does not promise the first index on ties; torch.argmax does
        return y.amax(2), torch.argmax(y, 2).to(torch.int32)
    return y.mean(2), y.new_empty(0, dtype=torch.int32)
