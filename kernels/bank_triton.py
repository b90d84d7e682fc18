"""Triton kernels of the kernel-bank op (layout in :mod:`.bank`), forward and backward.

The op is a GEMM whose rows are the kernel-net points p ↔ (s, n, t, g) (g fastest, so neighbouring
rows land on neighbouring bank addresses) and whose columns are the outputs q ↔ (o, c), inner
dimension H. Every bank address splits into ``row_offset(p) + col_offset(q)``, so the kernels
write (forward) or gather (backward) the tap-packed layout directly, with the tensors' own strides.

* forward: grid (P tiles, Q tiles); ``hidden_tile @ weight_tileᵀ`` + bias, cast on store;
* grad_hidden: grid (P tiles, H tiles), loop over Q: ``grad_tile @ weight_tile``;
* grad_weight / grad_bias: grid (Q tiles, H tiles, SPLIT), loop over one fixed P chunk per split:
  ``grad_tileᵀ @ hidden_tile``. Each split writes its own partial buffer, summed by torch in a
  fixed order, so the result is bitwise reproducible (no float atomics).

Loads are upcast to fp32 (fp64 for fp64 problems) right away: the interpreter cannot do bf16 math,
and the accumulation dtype of the op is fp32 anyway.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from . import _launch
from ._backend import interpreting
from ._launch import GridLimitError, dot_precision, launch, next_pow2
from .bank_reference import compute_dtype


@triton.jit
def _row_offsets(p, N_OUT, N_IN, T, stride_s, stride_n, stride_t, stride_g, INT64: tl.constexpr):
    """Offset of point p ↔ (s, n, t, g) (g fastest) given the strides of its four indices.

    The index split stays int32 (64-bit division is a slow software routine on the GPU); only the
    stride products widen to int64, and only when the launcher says an offset can pass 2^31.
    """
    g = p % N_IN
    r = p // N_IN
    t = r % T
    r = r // T
    n = r % N_OUT
    s = r // N_OUT
    if INT64:
        s, n, t, g = s.to(tl.int64), n.to(tl.int64), t.to(tl.int64), g.to(tl.int64)
    return s * stride_s + n * stride_n + t * stride_t + g * stride_g


@triton.jit
def _col_offsets(q, N_OUT, N_IN, C_IN, stride_out_ch, stride_in_ch, INT64: tl.constexpr):
    """Bank offset of output q ↔ (o, c): channel o·N_out on axis 1, channel c·N_in on axis 3."""
    o = (q // C_IN) * N_OUT
    c = (q % C_IN) * N_IN
    if INT64:
        o, c = o.to(tl.int64), c.to(tl.int64)
    return o * stride_out_ch + c * stride_in_ch


@triton.jit
def _cast(x, dst_ptr, RNE_BF16: tl.constexpr):
    """``x`` in the element type of ``dst_ptr``. With RNE_BF16 (interpreter, bf16 destination) round to
    nearest even by hand: the interpreter truncates fp32 → bf16, the GPU rounds."""
    if RNE_BF16:
        x = x.to(tl.float32)
        nan = x != x  # noqa: PLR0124 (the NaN test; a NaN must not round into inf or change sign)
        bits = tl.where(nan, 0x7FC00000, x.to(tl.uint32, bitcast=True))
        bits += 0x7FFF + ((bits >> 16) & 1)
        return (bits >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)
    return x.to(dst_ptr.dtype.element_ty)


@triton.jit
def bank_fwd_kernel(
    h_ptr, w_ptr, b_ptr, out_ptr,
    P, Q, H, N_OUT, N_IN, T, C_IN,
    hs_s, hs_n, hs_g, hs_t, hs_h,
    ws_q, ws_h, bs_q,
    os_s, os_ch, os_t, os_ci,
    HAS_BIAS: tl.constexpr, INT64: tl.constexpr, COMPUTE: tl.constexpr, PRECISION: tl.constexpr,
    RNE_BF16: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_Q: tl.constexpr, BLOCK_H: tl.constexpr,
):
    """bank[row(p) + col(q)] = Σ_h hidden[p, h] · weight[q, h] + bias[q], cast to the bank dtype."""
    p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    q = tl.program_id(1) * BLOCK_Q + tl.arange(0, BLOCK_Q)
    p_ok = p < P
    q_ok = q < Q
    h_rows = _row_offsets(p, N_OUT, N_IN, T, hs_s, hs_n, hs_t, hs_g, INT64)
    acc = tl.zeros((BLOCK_P, BLOCK_Q), dtype=COMPUTE)
    for h0 in range(0, H, BLOCK_H):
        hh = h0 + tl.arange(0, BLOCK_H)
        h_ok = hh < H
        x = tl.load(h_ptr + h_rows[:, None] + hh[None, :] * hs_h, mask=p_ok[:, None] & h_ok[None, :], other=0.0)
        w = tl.load(w_ptr + hh[:, None] * ws_h + q[None, :] * ws_q, mask=h_ok[:, None] & q_ok[None, :], other=0.0)
        acc += tl.dot(x.to(COMPUTE), w.to(COMPUTE), input_precision=PRECISION, out_dtype=COMPUTE)
    if HAS_BIAS:
        b = tl.load(b_ptr + q * bs_q, mask=q_ok, other=0.0)
        acc += b.to(COMPUTE)[None, :]
    rows = _row_offsets(p, N_OUT, N_IN, T, os_s, os_ch, os_t, os_ci, INT64)
    cols = _col_offsets(q, N_OUT, N_IN, C_IN, os_ch, os_ci, INT64)
    tl.store(out_ptr + rows[:, None] + cols[None, :], _cast(acc, out_ptr, RNE_BF16),
             mask=p_ok[:, None] & q_ok[None, :])


@triton.jit
def bank_grad_hidden_kernel(
    g_ptr, w_ptr, gh_ptr,
    P, Q, H, N_OUT, N_IN, T, C_IN,
    gs_s, gs_ch, gs_t, gs_ci,
    ws_q, ws_h,
    hs_s, hs_n, hs_g, hs_t, hs_h,
    INT64: tl.constexpr, COMPUTE: tl.constexpr, PRECISION: tl.constexpr, RNE_BF16: tl.constexpr,
    BLOCK_P: tl.constexpr, BLOCK_Q: tl.constexpr, BLOCK_H: tl.constexpr,
):
    """grad_hidden[p, h] = Σ_q grad_bank[row(p) + col(q)] · weight[q, h] (a gather: no atomics)."""
    p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    hh = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
    p_ok = p < P
    h_ok = hh < H
    g_rows = _row_offsets(p, N_OUT, N_IN, T, gs_s, gs_ch, gs_t, gs_ci, INT64)
    acc = tl.zeros((BLOCK_P, BLOCK_H), dtype=COMPUTE)
    for q0 in range(0, Q, BLOCK_Q):
        q = q0 + tl.arange(0, BLOCK_Q)
        q_ok = q < Q
        cols = _col_offsets(q, N_OUT, N_IN, C_IN, gs_ch, gs_ci, INT64)
        g = tl.load(g_ptr + g_rows[:, None] + cols[None, :], mask=p_ok[:, None] & q_ok[None, :], other=0.0)
        w = tl.load(w_ptr + q[:, None] * ws_q + hh[None, :] * ws_h, mask=q_ok[:, None] & h_ok[None, :], other=0.0)
        acc += tl.dot(g.to(COMPUTE), w.to(COMPUTE), input_precision=PRECISION, out_dtype=COMPUTE)
    h_rows = _row_offsets(p, N_OUT, N_IN, T, hs_s, hs_n, hs_t, hs_g, INT64)
    tl.store(gh_ptr + h_rows[:, None] + hh[None, :] * hs_h, _cast(acc, gh_ptr, RNE_BF16),
             mask=p_ok[:, None] & h_ok[None, :])


@triton.jit
def bank_grad_weight_kernel(
    g_ptr, h_ptr, gw_ptr, gb_ptr,
    P, Q, H, N_OUT, N_IN, T, C_IN, CHUNK,
    gs_s, gs_ch, gs_t, gs_ci,
    hs_s, hs_n, hs_g, hs_t, hs_h,
    HAS_BIAS: tl.constexpr, INT64: tl.constexpr, COMPUTE: tl.constexpr, PRECISION: tl.constexpr,
    BLOCK_P: tl.constexpr, BLOCK_Q: tl.constexpr, BLOCK_H: tl.constexpr,
):
    """Partial sums over points [k·CHUNK, (k+1)·CHUNK) of grad_weight[q, h] and grad_bias[q], k = split.

    Writes ``gw[k, q, h]`` and (H tile 0 only) ``gb[k, q]``: every element has exactly one writer.
    """
    q = tl.program_id(0) * BLOCK_Q + tl.arange(0, BLOCK_Q)
    hh = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
    split = tl.program_id(2)
    q_ok = q < Q
    h_ok = hh < H
    cols = _col_offsets(q, N_OUT, N_IN, C_IN, gs_ch, gs_ci, INT64)
    acc = tl.zeros((BLOCK_Q, BLOCK_H), dtype=COMPUTE)
    bias_acc = tl.zeros((BLOCK_Q,), dtype=COMPUTE)
    for i in range(0, CHUNK, BLOCK_P):
        p = split * CHUNK + i + tl.arange(0, BLOCK_P)
        p_ok = p < P
        g_rows = _row_offsets(p, N_OUT, N_IN, T, gs_s, gs_ch, gs_t, gs_ci, INT64)
        h_rows = _row_offsets(p, N_OUT, N_IN, T, hs_s, hs_n, hs_t, hs_g, INT64)
        g = tl.load(g_ptr + g_rows[:, None] + cols[None, :], mask=p_ok[:, None] & q_ok[None, :], other=0.0)
        x = tl.load(h_ptr + h_rows[:, None] + hh[None, :] * hs_h, mask=p_ok[:, None] & h_ok[None, :], other=0.0)
        g = g.to(COMPUTE)
        acc += tl.dot(tl.trans(g), x.to(COMPUTE), input_precision=PRECISION, out_dtype=COMPUTE)
        if HAS_BIAS:
            bias_acc += tl.sum(g, axis=0)
    gw_ptr += split.to(tl.int64) * Q * H  # scalar int64 base: the partial buffers can be large
    tl.store(gw_ptr + q[:, None] * H + hh[None, :], acc, mask=q_ok[:, None] & h_ok[None, :])
    if HAS_BIAS:
        tl.store(gb_ptr + split * Q + q, bias_acc, mask=q_ok & (tl.program_id(1) == 0))


# ---------------------------------------------------------------------------------------------
# launchers

_TL_COMPUTE = {torch.float32: tl.float32, torch.float64: tl.float64}
_HALF = (torch.float16, torch.bfloat16)


def _precision(ct: torch.dtype, *tensors: torch.Tensor) -> str:
    """``tl.dot`` input precision. 16-bit inputs upcast to fp32 are exact in TF32 (≤ 10 mantissa bits)."""
    if not interpreting() and all(t.dtype in _HALF for t in tensors):
        return "tf32"
    return dot_precision(ct, torch.backends.cuda.matmul.allow_tf32)


def _rne_bf16(out: torch.Tensor) -> bool:
    return interpreting() and out.dtype == torch.bfloat16


def _block_h(h: int) -> int:
    # tl.dot needs K ≥ 16 on the GPU; above 64 the H loop (or H grid axis) takes over
    return min(max(16, next_pow2(h)), 64)


def _blocks(kind: str, P: int, Q: int, H: int) -> tuple[int, int, int, int]:
    """(BLOCK_P, BLOCK_Q, BLOCK_H, num_warps) for ``kind`` in fwd / grad_hidden / grad_weight."""
    if interpreting():
        # the interpreter pays per program and per loop trip: cover a test problem with 1-4 programs,
        # keeping every tile ≤ 2^16 elements
        bq = min(max(16, next_pow2(Q)), 64)
        bp = min(max(16, next_pow2(P)), 1024)
        return bp, bq, _block_h(H), 4
    return _gpu_blocks(kind, H)


def _gpu_blocks(kind: str, H: int) -> tuple[int, int, int, int]:
    """Fixed GPU configs, no autotune (the op does microseconds of work; autotune's launch overhead
    would dominate). Chosen from sm_90 compiles (H = 32): no register spills in fp32 ieee or tf32."""
    bh = _block_h(H)
    if kind == "fwd":  # 186 / 128 registers (ieee / tf32)
        return 128, 64, bh, 8
    if kind == "grad_hidden":  # 112 / 159
        return 128, 64, bh, 8
    return 32, 64, bh, 4  # grad_weight: 194 / 161; two gathered tiles per P step


def _shape(hidden: torch.Tensor, weight: torch.Tensor, out_channels: int):
    S, n_out, n_in, T, H = hidden.shape
    P, Q = S * n_out * n_in * T, weight.shape[0]
    if P >= 2**31 or Q >= 2**31:  # point / output indices are int32 in the kernels
        raise ValueError(f"kernel_bank: {P} points × {Q} outputs exceeds the Triton kernel's int32 indices")
    return P, Q, H, n_out, n_in, T, Q // out_channels


def _needs_int64(*tensors: torch.Tensor) -> bool:
    """True when some element offset (or a masked lane's, up to one tile past the end) can pass 2^31."""
    span = max(sum((n - 1) * abs(st) for n, st in zip(t.shape, t.stride())) for t in tensors)
    return span >= 2**31 - 2**24


def bank_forward(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    out_channels: int,
    dtype: torch.dtype | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Triton forward. ``out`` (optional, any strides) receives the bank; else a new contiguous tensor."""
    P, Q, H, n_out, n_in, T, c_in = _shape(hidden, weight, out_channels)
    S = hidden.shape[0]
    if out is None:
        out = torch.empty(S, out_channels * n_out, T, c_in * n_in, dtype=dtype or hidden.dtype, device=hidden.device)
    if P == 0 or Q == 0:
        return out
    ct = compute_dtype(hidden, weight, bias)
    int64 = _needs_int64(hidden, out)
    if int64:  # the H offsets (hh · stride) stay int32 in the kernels: make that stride 1
        hidden = hidden.contiguous()
    bp, bq, bh, warps = _blocks("fwd", P, Q, H)
    flags = dict(HAS_BIAS=bias is not None, INT64=int64, COMPUTE=_TL_COMPUTE[ct], PRECISION=_precision(ct, hidden, weight),
                 RNE_BF16=_rne_bf16(out), BLOCK_P=bp, BLOCK_Q=bq, BLOCK_H=bh, num_warps=warps)
    # Q tiles go on grid axis y: past its limit, one launch per chunk of output channels (whole rows of
    # the weight, a slice of the bank's axis 1), so column offsets stay those of the chunk
    per_launch = _launch.MAX_GRID[1] * bq // c_in
    if per_launch < 1:
        raise GridLimitError(f"kernel_bank: {c_in} weight rows per output channel need more than "
                             f"{_launch.MAX_GRID[1]} programs on grid axis y")
    for o0 in range(0, out_channels, per_launch):
        o1 = min(o0 + per_launch, out_channels)
        w = weight[o0 * c_in:o1 * c_in]
        b = bias[o0 * c_in:o1 * c_in] if bias is not None else w
        dst = out[:, o0 * n_out:o1 * n_out]
        launch(bank_fwd_kernel, (triton.cdiv(P, bp), triton.cdiv(w.shape[0], bq)), hidden.device,
               hidden, w, b, dst,
               P, w.shape[0], H, n_out, n_in, T, c_in,
               *hidden.stride(), *w.stride(), b.stride(0) if bias is not None else 0,
               *dst.stride(), **flags)
    return out


def _split(P: int, bp: int, tiles: int, device: torch.device) -> int:
    """Number of P chunks for grad_weight: enough programs to fill the GPU, a fixed function of the shape."""
    if interpreting() or device.type != "cuda":
        return 1
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    return max(1, min(triton.cdiv(2 * sms, tiles), triton.cdiv(P, 4 * bp)))


def bank_backward(
    grad_bank: torch.Tensor,
    hidden: torch.Tensor,
    weight: torch.Tensor,
    has_bias: bool,
    out_channels: int,
    split: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Triton backward, same contract as :func:`.bank_reference.bank_backward_reference`.

    ``split`` forces the number of P chunks of the weight gradient (tests); by default it depends
    only on the shape and the GPU model, so repeated runs are bitwise identical.
    """
    P, Q, H, n_out, n_in, T, c_in = _shape(hidden, weight, out_channels)
    ct = compute_dtype(grad_bank, hidden, weight)
    prec = _precision(ct, grad_bank, hidden, weight)
    dev = hidden.device
    grad_hidden = torch.empty(hidden.shape, dtype=hidden.dtype, device=dev)
    if P == 0 or Q == 0 or H == 0:
        grad_hidden.zero_()
        gw = torch.zeros(Q, H, dtype=weight.dtype, device=dev)
        return grad_hidden, gw, (torch.zeros(Q, dtype=ct, device=dev) if has_bias else None)
    int64 = _needs_int64(grad_bank, hidden, grad_hidden)
    if int64:  # as in bank_forward
        hidden = hidden.contiguous()
    gstrides = grad_bank.stride()

    bp, bq, bh, warps = _blocks("grad_hidden", P, Q, H)
    launch(
        bank_grad_hidden_kernel, (triton.cdiv(P, bp), triton.cdiv(H, bh)), dev, grad_bank, weight, grad_hidden,
        P, Q, H, n_out, n_in, T, c_in,
        *gstrides, *weight.stride(), *grad_hidden.stride(),
        INT64=int64, COMPUTE=_TL_COMPUTE[ct], PRECISION=prec,
        RNE_BF16=_rne_bf16(grad_hidden), BLOCK_P=bp, BLOCK_Q=bq, BLOCK_H=bh, num_warps=warps,
    )

    bp, bq, bh, warps = _blocks("grad_weight", P, Q, H)
    tiles = triton.cdiv(Q, bq) * triton.cdiv(H, bh)
    if split:
        bp = min(bp, max(16, next_pow2(triton.cdiv(P, split))))  # so that a forced split really splits
    else:
        split = _split(P, bp, tiles, dev)
    split = min(split, _launch.MAX_GRID[2])  # the splits are grid axis z
    chunk = triton.cdiv(triton.cdiv(P, split), bp) * bp  # a multiple of BLOCK_P: tiles never straddle chunks
    split = triton.cdiv(P, chunk)  # drop empty chunks
    gw = torch.empty(split, Q, H, dtype=ct, device=dev)
    gb = torch.empty(split, Q, dtype=ct, device=dev) if has_bias else gw
    launch(
        bank_grad_weight_kernel, (triton.cdiv(Q, bq), triton.cdiv(H, bh), split), dev, grad_bank, hidden, gw, gb,
        P, Q, H, n_out, n_in, T, c_in, chunk,
        *gstrides, *hidden.stride(),
        HAS_BIAS=has_bias, INT64=int64, COMPUTE=_TL_COMPUTE[ct], PRECISION=prec,
        BLOCK_P=bp, BLOCK_Q=bq, BLOCK_H=bh, num_warps=warps,
    )
    grad_weight = gw.sum(0).to(weight.dtype)
    return grad_hidden, grad_weight, (gb.sum(0) if has_bias else None)


# ---------------------------------------------------------------------------------------------
# sm_90 compile check (CI compiles every case without a GPU, see docs/kernels.md#compiling-without-a-gpu)

_TL_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16", torch.float64: "fp64"}


def _signature(fn, pointers: dict[str, torch.dtype], constexprs: dict) -> dict[str, str]:
    sig = {}
    for name in fn.arg_names:
        if name in constexprs:
            sig[name] = "constexpr"
        elif name.endswith("_ptr"):
            sig[name] = "*" + _TL_NAMES[pointers[name]]
        else:
            sig[name] = "i32"
    return sig


def compile_cases() -> list[dict]:
    """Every kernel at its GPU block configurations and dtypes, for ``triton.compile`` on sm_90.

    Each dict: ``name``, ``fn``, ``signature``, ``constexprs``, ``num_warps`` (the format
    ``triton.compiler.ASTSource(fn=..., signature=..., constexprs=...)`` takes).
    """
    f32, bf16 = torch.float32, torch.bfloat16
    # (input dtype, bank dtype, dot precisions): fp32 model with fp32 / bf16 bank, bf16 model
    dtypes = [(f32, f32, ("ieee", "tf32")), (f32, bf16, ("ieee", "tf32")), (bf16, bf16, ("tf32",))]
    cases = []

    def add(name, fn, pointers, kind, H, **flags):
        bp, bq, bh, warps = _gpu_blocks(kind, H)
        constexprs = dict(flags, COMPUTE=tl.float32, BLOCK_P=bp, BLOCK_Q=bq, BLOCK_H=bh)
        cases.append({"name": f"{name}[P{bp},Q{bq},H{bh}]", "fn": fn,
                      "signature": _signature(fn, pointers, constexprs), "constexprs": constexprs,
                      "num_warps": warps})

    for ind, outd, precisions in dtypes:
        for prec in precisions:
            tag = f"{_TL_NAMES[ind]}->{_TL_NAMES[outd]},{prec}"
            # H = 32 (the kernel nets' width), with bias, int32 offsets: the path every model runs
            variants = [{"H": 32, "bias": True, "int64": False}]
            if (ind, outd, prec) == (f32, f32, "ieee"):  # the other constexpr values, once
                variants += [{"H": 32, "bias": False, "int64": False}, {"H": 32, "bias": True, "int64": True},
                             {"H": 16, "bias": True, "int64": False}, {"H": 64, "bias": True, "int64": False}]
            for v in variants:
                H = v["H"]
                flags = {"HAS_BIAS": v["bias"], "INT64": v["int64"], "PRECISION": prec, "RNE_BF16": False}
                label = f"{tag},H={H},bias={v['bias']},int64={v['int64']}"
                add(f"bank_fwd({label})", bank_fwd_kernel,
                    {"h_ptr": ind, "w_ptr": ind, "b_ptr": ind, "out_ptr": outd}, "fwd", H, **flags)
                add(f"bank_grad_weight({label})", bank_grad_weight_kernel,
                    {"g_ptr": outd, "h_ptr": ind, "gw_ptr": f32, "gb_ptr": f32}, "grad_weight", H,
                    **{k: v for k, v in flags.items() if k != "RNE_BF16"})
                if v["bias"]:  # grad_hidden has no bias flag
                    flags.pop("HAS_BIAS")
                    add(f"bank_grad_hidden({label})", bank_grad_hidden_kernel,
                        {"g_ptr": outd, "w_ptr": ind, "gh_ptr": ind}, "grad_hidden", H, **flags)
    return cases
