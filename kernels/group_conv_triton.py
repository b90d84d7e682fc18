"""Tap-sparse implicit-GEMM group convolution in Triton: forward, input gradient, bank gradient.

GEMM view of the forward (docs/kernels.md#group-convolution-kernel): M = output pixels, N = bank rows (``o·N + n``),
K = in-disk taps × input channels (``c·G + g``). One flat K loop walks (tap, channel block); the tap's
(dy, dx) comes from a per-tap scalar table, so the 20 of 49 taps outside the disk at k = 7 cost
nothing. Padding is the zero fill of masked loads. A program's M tile lies inside one image when
every sample has its own bank (S = B: grid axis 2 is the sample), so the bank is never copied.

* :func:`conv_forward` — y (+ bias), optionally max / mean pooled over the output elements in the
  epilogue (the accumulator is viewed as ``[BLOCK_M, BLOCK_N / NP, NP]``, NP = next power of two ≥ N).
* :func:`conv_input_grad` — the same kernel on ``grad_y`` with the bank read transposed and the taps
  negated (a correlation with the flipped kernel).
* :func:`conv_bank_grad` — per tap a GEMM ``grad_y[rows, pixels] · x[pixels, cols]``; every program
  owns one output tile and loops over its pixel range, and split-K partial sums go to separate buffers
  added by ``torch.sum`` in a fixed order: deterministic, no atomics.

Reproducibility: a launch's result depends only on its inputs and its tile (``BLOCK_K`` / ``BLOCK_P`` fix
the summation order) and split. The split is a function of the shape; the tile is autotuned once per
process (timings differ between processes) unless the reproducible mode pins it
(:func:`._launch.deterministic`, :func:`.group_conv_tiles.pinned_tile`).

Grid limits: per-sample banks put the samples on grid axis z (and the bank gradient samples × taps ×
split), which CUDA caps at 65,535 programs: the launchers fold larger batches into several launches
(:func:`._launch.fold`), all through :func:`._launch.launch` (device guard, grid check).
"""

from __future__ import annotations

from functools import lru_cache

import torch
import triton
import triton.language as tl

from . import _launch
from ._backend import interpreting
from ._launch import deterministic, dot_precision, fold, launch, next_pow2, upcast_loads
from .group_conv_tiles import (  # noqa: F401 (tile configurations, re-exported: tests and _compile use them here)
    _FORCED_SPLIT,
    _FORCED_TILE,
    _QUICK_BY_DTYPE,
    SM90_SMEM_PER_BLOCK,
    autotune_configs,
    fits_sm90,
    forced_split,
    forced_tile,
    offered_configs,
    pinned_tile,
    smem_estimate,
)
from .taps import tap_layout


@triton.jit
def _conv_kernel(
    x_ptr, w_ptr, bias_ptr, y_ptr, idx_ptr, tap_y_ptr, tap_x_ptr,
    M_per, HW_out, W_out, H_in, W_in, K_chan, T,
    N_cols, N_pad, N_sub, N_bias, shift_h, shift_w,
    sxb, sxc, sxh, sxw,
    sws, swn, swt, swk,
    syb, syc, syh, syw,
    HAS_BIAS: tl.constexpr, POOL: tl.constexpr, POOL_NP: tl.constexpr, IS_F64: tl.constexpr,
    PREC: tl.constexpr, UPCAST: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    pid_g = tl.program_id(2)
    local = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    m_ok = local < M_per
    m = pid_g * M_per + local
    b = m // HW_out
    r = m % HW_out
    oh = r // W_out
    ow = r % W_out
    # GEMM column j → bank row (j // N_pad)·N_sub + j % N_pad; N_pad > N_sub only when pooling
    j = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    n_ok = ((j % N_pad) < N_sub) & (j < N_cols)
    row = (j // N_pad) * N_sub + j % N_pad
    x_base = x_ptr + b.to(tl.int64) * sxb
    w_base = w_ptr + pid_g.to(tl.int64) * sws + row.to(tl.int64) * swn
    if IS_F64:
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float64)
    else:
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    k_blocks = tl.cdiv(K_chan, BLOCK_K)
    for it in range(0, T * k_blocks):
        t = it // k_blocks
        k = (it - t * k_blocks) * BLOCK_K + tl.arange(0, BLOCK_K)
        k_ok = k < K_chan
        ih = oh + tl.load(tap_y_ptr + t) + shift_h
        iw = ow + tl.load(tap_x_ptr + t) + shift_w
        a_ok = m_ok & (ih >= 0) & (ih < H_in) & (iw >= 0) & (iw < W_in)
        a = tl.load((x_base + ih * sxh + iw * sxw)[:, None] + k[None, :].to(tl.int64) * sxc,
                    mask=a_ok[:, None] & k_ok[None, :], other=0.0)
        w = tl.load(w_base[None, :] + t * swt + k[:, None].to(tl.int64) * swk,
                    mask=k_ok[:, None] & n_ok[None, :], other=0.0)
        if UPCAST:
            a = a.to(tl.float32)
            w = w.to(tl.float32)
        acc += tl.dot(a, w, input_precision=PREC)
    if HAS_BIAS:
        acc += tl.load(bias_ptr + row // N_bias, mask=n_ok, other=0.0).to(acc.dtype)[None, :]
    pix = b.to(tl.int64) * syb + oh * syh + ow * syw
    if POOL == 0:
        tl.store(y_ptr + pix[:, None] + row[None, :].to(tl.int64) * syc, acc.to(y_ptr.dtype.element_ty),
                 mask=m_ok[:, None] & n_ok[None, :])
    else:
        GROUPS: tl.constexpr = BLOCK_N // POOL_NP
        acc3 = tl.reshape(acc, (BLOCK_M, GROUPS, POOL_NP))
        sub_ok = (tl.arange(0, POOL_NP) < N_sub)[None, None, :]
        o = pid_n * GROUPS + tl.arange(0, GROUPS)
        out_ok = m_ok[:, None] & (o < N_cols // N_pad)[None, :]
        out = pix[:, None] + o[None, :].to(tl.int64) * syc
        if POOL == 1:
            acc3 = tl.where(sub_ok, acc3, float("-inf"))
            tl.store(y_ptr + out, tl.max(acc3, 2).to(y_ptr.dtype.element_ty), mask=out_ok)
            tl.store(idx_ptr + out, tl.argmax(acc3, 2).to(tl.int32), mask=out_ok)
        else:
            mean = tl.sum(tl.where(sub_ok, acc3, 0.0), 2) / N_sub
            tl.store(y_ptr + out, mean.to(y_ptr.dtype.element_ty), mask=out_ok)


@triton.jit
def _bank_grad_kernel(
    dy_ptr, x_ptr, dw_ptr, tap_y_ptr, tap_x_ptr,
    P_per, HW_out, W_out, H_in, W_in, N_rows, K_chan, T, SPLIT, shift_h, shift_w,
    sdb, sdc, sdh, sdw,
    sxb, sxc, sxh, sxw,
    sw_split, sws, swn, swt,
    IS_F64: tl.constexpr, PREC: tl.constexpr, UPCAST: tl.constexpr,
    BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr,
):
    pid_r = tl.program_id(0)
    pid_c = tl.program_id(1)
    pid_z = tl.program_id(2)
    split = pid_z % SPLIT
    t = (pid_z // SPLIT) % T
    grp = pid_z // (SPLIT * T)
    rows = pid_r * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
    r_ok = rows < N_rows
    c_ok = cols < K_chan
    ty = tl.load(tap_y_ptr + t) + shift_h
    tx = tl.load(tap_x_ptr + t) + shift_w
    chunk = tl.cdiv(tl.cdiv(P_per, BLOCK_P), SPLIT) * BLOCK_P
    start = split * chunk
    stop = tl.minimum(start + chunk, P_per)
    if IS_F64:
        acc = tl.zeros((BLOCK_R, BLOCK_C), dtype=tl.float64)
    else:
        acc = tl.zeros((BLOCK_R, BLOCK_C), dtype=tl.float32)
    for p0 in range(start, stop, BLOCK_P):
        p = p0 + tl.arange(0, BLOCK_P)
        p_ok = p < stop
        m = grp * P_per + p
        b = (m // HW_out).to(tl.int64)
        rem = m % HW_out
        oh = rem // W_out
        ow = rem % W_out
        ih = oh + ty
        iw = ow + tx
        x_ok = p_ok & (ih >= 0) & (ih < H_in) & (iw >= 0) & (iw < W_in)
        g = tl.load(dy_ptr + rows[:, None].to(tl.int64) * sdc + (b * sdb + oh * sdh + ow * sdw)[None, :],
                    mask=r_ok[:, None] & p_ok[None, :], other=0.0)
        v = tl.load(x_ptr + (b * sxb + ih * sxh + iw * sxw)[:, None] + cols[None, :].to(tl.int64) * sxc,
                    mask=x_ok[:, None] & c_ok[None, :], other=0.0)
        if UPCAST:
            g = g.to(tl.float32)
            v = v.to(tl.float32)
        acc += tl.dot(g, v, input_precision=PREC)
    out = (dw_ptr + split.to(tl.int64) * sw_split + grp.to(tl.int64) * sws + t * swt
           + rows[:, None].to(tl.int64) * swn + cols[None, :])
    tl.store(out, acc.to(dw_ptr.dtype.element_ty), mask=r_ok[:, None] & c_ok[None, :])


# the channel strides tell NCHW from channels-last operands, which tune (and compile) differently; what
# else changes the best tile without being a kernel argument is in the tuner's variant (tune_variant)
_CONV_KEY = ["M_per", "HW_out", "K_chan", "T", "N_cols", "N_pad", "sxc", "syc"]
_WGRAD_KEY = ["P_per", "HW_out", "N_rows", "K_chan", "T", "SPLIT", "sdc", "sxc"]


def tune_variant(precision: str, per_sample: bool, samples: int) -> tuple:
    """What the autotuner keeps separate tunings for beyond its key's kernel arguments: the ``tl.dot``
    precision (TF32 tensor-core dots vs exact fp32 FMA are different kernels), shared vs per-sample banks
    (a per-sample bank is read once per sample: another memory profile) and, for per-sample banks, the
    batch's power-of-two bucket (the grid's sample axis, which no key argument shows)."""
    return precision, per_sample, next_pow2(samples) if per_sample else 1


def _tuned(which: str, dtype: torch.dtype, variant: tuple = ()):
    return _tuned_with(which, tuple(autotune_configs(dtype)), variant)


@lru_cache(maxsize=None)
def _tuned_with(which: str, tiles: tuple, variant: tuple = ()):
    # one autotuner per variant: each keeps its own cache of tuned configurations, while the compiled
    # kernels stay shared in the JIT function's cache
    if which == "conv":
        configs = [triton.Config({"BLOCK_M": m, "BLOCK_N": n, "BLOCK_K": k}, num_warps=w, num_stages=s)
                   for m, n, k, w, s in tiles]
        return triton.autotune(configs=configs, key=_CONV_KEY)(_conv_kernel)
    configs = [triton.Config({"BLOCK_R": m, "BLOCK_C": n, "BLOCK_P": k}, num_warps=w, num_stages=s)
               for m, n, k, w, s in tiles]
    return triton.autotune(configs=configs, key=_WGRAD_KEY)(_bank_grad_kernel)


@lru_cache(maxsize=None)
def _tap_tables(kernel_size: int, num_taps: int, negate: bool, device: torch.device):
    offsets = tap_layout(kernel_size, num_taps).offsets.to(torch.int32)
    if negate:
        offsets = -offsets
    return offsets[:, 0].contiguous().to(device), offsets[:, 1].contiguous().to(device)


def _interp_block(n: int, cap: int) -> int:
    # the interpreter runs programs one after another: cover small problems with 1–4 programs
    return min(max(16, next_pow2(n)), cap)


def _launch_options(tile: tuple) -> dict:
    return {} if interpreting() else {"num_warps": tile[3], "num_stages": tile[4]}


def _conv_tile(dtype, pool, pool_np, m_per, n_cols, k_chan):
    """``(BLOCK_M, BLOCK_N, BLOCK_K, launch options)`` of a conv launch, or None: autotune."""
    forced = _FORCED_TILE[0]
    if forced is not None and not pool:
        return (*forced[:3], _launch_options(forced))
    if interpreting():
        return _interp_block(m_per, 256), max(pool_np, _interp_block(n_cols, 64)), _interp_block(k_chan, 32), {}
    if pool:
        return 128, max(pool_np, 64), 32 if dtype == torch.float32 else 64, {"num_warps": 8, "num_stages": 3}
    if deterministic():
        tile = pinned_tile(dtype)
        return (*tile[:3], _launch_options(tile))
    return None


def _launch_conv(src, bank_view, bias, out, idx, kernel_size, negate, shift, groups, n_cols, n_pad, n_sub,
                 n_bias, pool, pool_np, k_chan, allow_tf32):
    """Run ``_conv_kernel``: ``src`` [B, K_chan, Hs, Ws]; ``bank_view`` = (tensor, sws, swn, swt, swk).

    Per-sample banks (``groups`` = B) put the samples on grid axis z: past its limit, one launch per
    chunk of samples (slices of the operands, so the kernel sees a smaller batch)."""
    bsz, _, h_in, w_in = src.shape
    h_out, w_out = out.shape[-2], out.shape[-1]
    m_per = bsz * h_out * w_out // groups
    w, sws, swn, swt, swk = bank_view
    tap_y, tap_x = _tap_tables(kernel_size, w.shape[2], negate, src.device)
    dtype = src.dtype
    prec = dot_precision(dtype, allow_tf32)
    flags = dict(HAS_BIAS=bias is not None, POOL=pool, POOL_NP=pool_np, IS_F64=dtype == torch.float64,
                 PREC=prec, UPCAST=upcast_loads(dtype))
    tile = _conv_tile(dtype, pool, pool_np, m_per, n_cols, k_chan)
    for b0, b1 in fold(groups, 1, "group_conv") if groups > 1 else [(0, bsz)]:
        x_c, w_c, out_c = src[b0:b1], w[b0:b1] if groups > 1 else w, out[b0:b1]
        idx_c = idx[b0:b1] if idx is not None else out_c
        z = b1 - b0 if groups > 1 else 1
        args = (x_c, w_c, bias if bias is not None else x_c, out_c, idx_c, tap_y, tap_x,
                m_per, h_out * w_out, w_out, h_in, w_in, k_chan, tap_y.numel(),
                n_cols, n_pad, n_sub, n_bias, shift, shift,
                *x_c.stride(), sws, swn, swt, swk, out_c.stride(0), out_c.stride(1), out_c.stride(-2),
                out_c.stride(-1))
        if tile is not None:
            bm, bn, bk, extra = tile
            grid = (triton.cdiv(m_per, bm), triton.cdiv(n_cols, bn), z)
            launch(_conv_kernel, grid, src.device, *args, **flags, BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, **extra)
        else:
            def grid(meta, z=z):
                return (triton.cdiv(m_per, meta["BLOCK_M"]), triton.cdiv(n_cols, meta["BLOCK_N"]), z)
            tuned = _tuned("conv", dtype, tune_variant(prec, groups > 1, z))
            launch(tuned, grid, src.device, *args, **flags)


def conv_forward(x, bank, bias, kernel_size: int, padding: int, out_channels: int, pool: str = "",
                 allow_tf32: bool = True, channels_last: bool = False):
    """``x`` ``[B, C_in, G, H, W]``, ``bank`` ``[S, C_out·N, T, C_in·G]`` (``x.dtype``) →
    ``[B, C_out·N, H', W']``, or with ``pool`` = "max" / "mean" ``([B, C_out, H', W'], argmax)``.

    Any strides of ``x`` work. ``channels_last=True`` writes the output channels-last as well: with
    ``x`` whose ``[B, C_in·G, H, W]`` view is channels-last, every operand row is channel-contiguous,
    which lets the sm_90 build pipeline its bf16 loads (``cp.async``), which the NCHW build does not.
    Not used by the op (its fake kernel promises contiguous NCHW); the kernel table measures it."""
    bsz, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    s, rows, _, cols = bank.shape
    x4 = x.reshape(bsz, cols, h, w)
    bank = bank.contiguous()
    h_out, w_out = h + 2 * padding - kernel_size + 1, w + 2 * padding - kernel_size + 1
    groups = bsz if s > 1 else 1
    sws = bank.stride(0) if s > 1 else 0
    view = (bank, sws, bank.stride(1), bank.stride(2), bank.stride(3))
    shift = kernel_size // 2 - padding
    n_sub = rows // out_channels
    layout = torch.channels_last if channels_last else torch.contiguous_format
    if not pool:
        y = torch.empty(bsz, rows, h_out, w_out, device=x.device, dtype=x.dtype, memory_format=layout)
        _launch_conv(x4, view, bias, y, None, kernel_size, False, shift, groups, rows, n_sub, n_sub, n_sub,
                     0, 1, cols, allow_tf32)
        return y
    pool_np = next_pow2(n_sub)
    y = torch.empty(bsz, out_channels, h_out, w_out, device=x.device, dtype=x.dtype, memory_format=layout)
    idx = torch.empty(bsz, out_channels, h_out, w_out, device=x.device, dtype=torch.int32,
                      memory_format=layout) if pool == "max" \
        else torch.empty(0, device=x.device, dtype=torch.int32)
    _launch_conv(x4, view, bias, y, idx if pool == "max" else None, kernel_size, False, shift, groups,
                 out_channels * pool_np, pool_np, n_sub, n_sub, 1 if pool == "max" else 2, pool_np, cols,
                 allow_tf32)
    return y, idx


def conv_input_grad(grad_y, bank, x_shape, kernel_size: int, padding: int, allow_tf32: bool = True,
                    channels_last: bool = False):
    """``grad_x`` ``[B, C_in, G, H, W]`` of :func:`conv_forward` (without pooling); ``channels_last``:
    written so that its ``[B, C_in·G, H, W]`` view is channels-last (see :func:`conv_forward`)."""
    bsz, h, w = x_shape[0], x_shape[-2], x_shape[-1]
    s, rows, _, cols = bank.shape
    bank = bank.contiguous()
    groups = bsz if s > 1 else 1
    # the bank read transposed: GEMM columns are the input channels, K runs over the bank rows
    view = (bank, bank.stride(0) if s > 1 else 0, bank.stride(3), bank.stride(2), bank.stride(1))
    layout = torch.channels_last if channels_last else torch.contiguous_format
    gx = torch.empty(bsz, cols, h, w, device=grad_y.device, dtype=grad_y.dtype, memory_format=layout)
    _launch_conv(grad_y, view, None, gx, None, kernel_size, True, padding - kernel_size // 2, groups, cols,
                 cols, cols, cols, 0, 1, rows, allow_tf32)
    return gx.reshape(x_shape)


def conv_bank_grad(grad_y, x, bank_shape, kernel_size: int, padding: int, allow_tf32: bool = True):
    """``grad_bank`` ``[S, C_out·N, T, C_in·G]`` of :func:`conv_forward` (without pooling)."""
    bsz, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    s, rows, taps, cols = bank_shape
    x4 = x.reshape(bsz, cols, h, w)
    h_out, w_out = grad_y.shape[-2], grad_y.shape[-1]
    groups = bsz if s > 1 else 1
    p_per = bsz * h_out * w_out // groups
    tap_y, tap_x = _tap_tables(kernel_size, taps, False, x.device)
    shift = kernel_size // 2 - padding
    dtype = x.dtype
    acc_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    forced = _FORCED_TILE[0]
    extra = {}
    if forced is not None:
        split, block, extra = 1, forced[:3], _launch_options(forced)
    elif interpreting():
        split, block = 1, (_interp_block(rows, 64), _interp_block(cols, 64), _interp_block(p_per, 256))
    else:
        # enough programs to fill the GPU (132 SMs) with fixed-order partial sums
        base = triton.cdiv(rows, 128) * triton.cdiv(cols, 128) * taps * groups
        split = max(1, min(triton.cdiv(264, base), triton.cdiv(p_per, 1024)))
        block = None
        if deterministic():
            tile = pinned_tile(dtype)
            block, extra = tile[:3], _launch_options(tile)
    if _FORCED_SPLIT[0] is not None:
        split = _FORCED_SPLIT[0]
        if block is not None:  # a pixel block small enough that each split gets pixels
            block = (*block[:2], min(block[2], max(16, next_pow2(triton.cdiv(p_per, split)))))
    # grid axis z holds (sample, tap, split): at most its limit per launch, one launch per chunk of samples
    split = max(1, min(split, _launch.MAX_GRID[2] // taps))
    partial = torch.empty(split, s, rows, taps, cols, device=x.device, dtype=acc_dtype)
    flags = dict(IS_F64=dtype == torch.float64, PREC=dot_precision(dtype, allow_tf32), UPCAST=upcast_loads(dtype))
    for b0, b1 in fold(groups, taps * split, "group_conv bank gradient") if groups > 1 else [(0, bsz)]:
        dy_c, x_c = grad_y[b0:b1], x4[b0:b1]
        part_c = partial[:, b0:b1] if groups > 1 else partial
        z = taps * (b1 - b0 if groups > 1 else 1) * split
        args = (dy_c, x_c, part_c, tap_y, tap_x, p_per, h_out * w_out, w_out, h, w, rows, cols, taps, split,
                shift, shift, *dy_c.stride(), *x_c.stride(), part_c.stride(0), part_c.stride(1),
                part_c.stride(2), part_c.stride(3))
        if block is not None:
            grid = (triton.cdiv(rows, block[0]), triton.cdiv(cols, block[1]), z)
            launch(_bank_grad_kernel, grid, x.device, *args, **flags, BLOCK_R=block[0], BLOCK_C=block[1],
                   BLOCK_P=block[2], **extra)
        else:
            def grid(meta, z=z):
                return (triton.cdiv(rows, meta["BLOCK_R"]), triton.cdiv(cols, meta["BLOCK_C"]), z)
            tuned = _tuned("wgrad", dtype, tune_variant(flags["PREC"], groups > 1, b1 - b0))
            launch(tuned, grid, x.device, *args, **flags)
    total = partial[0] if split == 1 else partial.sum(0)
    return total.to(dtype)


# How a forward launch on contiguous NCHW activations and a contiguous bank specialises the kernels'
# integer arguments on the GPU (unit strides become constants, strides and pointers are multiples of
# 16 at the preset shapes), so the compile test sees the vectorisation and pipelining the GPU gets.
_GPU_SPECIALISATION = {
    # the CKResNet's 256→256 conv at 32×32, batch 64 (T = 29, N = 8 are the non-multiples)
    "conv": dict(ones=("sxw", "syw", "swk"),
                 divisible=("x_ptr", "w_ptr", "bias_ptr", "y_ptr", "idx_ptr", "M_per", "HW_out", "W_out", "H_in",
                            "W_in", "K_chan", "N_cols", "sxb", "sxc", "sxh", "swn", "swt", "syb", "syc", "syh")),
    # the same with channels-last activations and output (unit channel strides)
    "conv_cl": dict(ones=("sxc", "syc", "swk"),
                    divisible=("x_ptr", "w_ptr", "bias_ptr", "y_ptr", "idx_ptr", "M_per", "HW_out", "W_out", "H_in",
                               "W_in", "K_chan", "N_cols", "sxb", "sxh", "sxw", "swn", "swt", "syb", "syh", "syw")),
    "wgrad_cl": dict(ones=("sdc", "sxc"),
                     divisible=("dy_ptr", "x_ptr", "dw_ptr", "P_per", "HW_out", "W_out", "H_in", "W_in", "N_rows",
                                "K_chan", "sdb", "sdh", "sdw", "sxb", "sxh", "sxw", "sw_split", "sws", "swn", "swt")),
    "wgrad": dict(ones=("sdw", "sxw"),
                  divisible=("dy_ptr", "x_ptr", "dw_ptr", "P_per", "HW_out", "W_out", "H_in", "W_in", "N_rows",
                             "K_chan", "sdb", "sdc", "sdh", "sxb", "sxc", "sxh", "sw_split", "sws", "swn", "swt")),
}


def compile_cases() -> list[dict]:
    """Every kernel of this module at its GPU configurations: each tile :func:`offered_configs` offers,
    for the forward / input-gradient kernel and the bank-gradient kernel, in the dtype it is offered
    for (2-byte: bf16, 4-byte: fp32 with TF32 dots, 8-byte: fp64), plus the fixed pooling tiles.
    Cases carry ``element_bytes`` and ``smem_limit`` so the compile test can check shared memory."""
    from ._compile import signature

    conv_ptrs = {"x_ptr": "*bf16", "w_ptr": "*bf16", "bias_ptr": "*bf16", "y_ptr": "*bf16", "idx_ptr": "*i32",
                 "tap_y_ptr": "*i32", "tap_x_ptr": "*i32"}
    grad_ptrs = {"dy_ptr": "*bf16", "x_ptr": "*bf16", "dw_ptr": "*fp32", "tap_y_ptr": "*i32", "tap_x_ptr": "*i32"}
    cases = []
    limit = dict(smem_limit=SM90_SMEM_PER_BLOCK)

    def conv(name, dtype, prec, pool, pool_np, bm, bn, bk, warps, stages, f64=False):
        ptrs = {k: (v if v == "*i32" else dtype) for k, v in conv_ptrs.items()}
        flags = dict(HAS_BIAS=True, POOL=pool, POOL_NP=pool_np, IS_F64=f64, PREC=prec, UPCAST=False,
                     BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk)
        cases.append(dict(name=f"group_conv {name} {bm}x{bn}x{bk} w{warps} s{stages}", fn=_conv_kernel,
                          signature=signature(_conv_kernel, ptrs, flags), constexprs=flags,
                          num_warps=warps, num_stages=stages, **limit))

    def wgrad(name, dtype, prec, br, bc, bp, warps, stages, f64=False):
        ptrs = {k: (dtype if k in ("dy_ptr", "x_ptr") else v) for k, v in grad_ptrs.items()}
        if f64:
            ptrs["dw_ptr"] = "*fp64"
        flags = dict(IS_F64=f64, PREC=prec, UPCAST=False, BLOCK_R=br, BLOCK_C=bc, BLOCK_P=bp)
        cases.append(dict(name=f"group_conv bank_grad {name} {br}x{bc}x{bp} w{warps} s{stages}",
                          fn=_bank_grad_kernel, signature=signature(_bank_grad_kernel, ptrs, flags),
                          constexprs=flags, num_warps=warps, num_stages=stages, **limit))

    kinds = {2: ("bf16", "*bf16", "ieee", False), 4: ("tf32", "*fp32", "tf32", False),
             8: ("fp64", "*fp64", "ieee", True)}
    for size, tiles in offered_configs().items():
        name, ptr, prec, f64 = kinds[size]
        for bm, bn, bk, warps, stages in tiles:
            conv(name, ptr, prec, 0, 1, bm, bn, bk, warps, stages, f64)
            wgrad(name, ptr, prec, bm, bn, bk, warps, stages, f64)
            cases[-2]["element_bytes"] = cases[-1]["element_bytes"] = size
            cases[-2].update(_GPU_SPECIALISATION["conv"])
            cases[-1].update(_GPU_SPECIALISATION["wgrad"])
    # channels-last operands (conv_forward(..., channels_last=True)) for the short bf16 set
    for bm, bn, bk, warps, stages in _QUICK_BY_DTYPE[2]:
        conv("cl bf16", "*bf16", "ieee", 0, 1, bm, bn, bk, warps, stages)
        wgrad("cl bf16", "*bf16", "ieee", bm, bn, bk, warps, stages)
        cases[-2].update(_GPU_SPECIALISATION["conv_cl"])
        cases[-1].update(_GPU_SPECIALISATION["wgrad_cl"])
    conv("fp16", "*fp16", "ieee", 0, 1, 128, 128, 64, 8, 3)
    conv("pool max bf16 N=8", "*bf16", "ieee", 1, 8, 128, 64, 64, 8, 3)
    conv("pool mean bf16 N=6", "*bf16", "ieee", 2, 8, 128, 64, 64, 8, 3)
    conv("pool max tf32 N=8", "*fp32", "tf32", 1, 8, 128, 64, 32, 8, 3)
    return cases
