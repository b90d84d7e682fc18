"""Triton group pooling: one-pass reductions over G (max with arg-max, mean) and over (G, H, W) (max with
arg-max), and their backward passes as deterministic gathers (every ``dx`` element is written once, no atomics).

Semantics match :mod:`.group_pool_reference` (first maximal index wins, NaN counts as the maximum).

Design notes:

* Inputs may have any strides (the strides are kernel arguments); outputs are fresh contiguous tensors.
* Loads are upcast to fp32 (fp64 stays fp64) right after the load: exact for max, accurate for mean, and
  the interpreter mishandles bf16 arithmetic otherwise. Outputs are stored in the input dtype.
* Group kernels loop over g on 1-D position vectors; the global kernel reduces ``[BLOCK_BC, BLOCK_R]``
  tiles of the flattened (G, H, W), looping over R with a running max / arg-max.
* Block sizes are chosen here, not autotuned (docs/kernels.md#group-pooling): on the GPU a fixed 512 (group) or
  2048 (global) element tile and 4 warps; under the interpreter the whole test problem in 1 program
  where it fits 2^16 elements (measured under the interpreter).
"""

import inspect

import torch
import triton
import triton.language as tl

from ._backend import interpreting
from ._launch import check_dtype, launch, next_pow2, upcast_loads

_NO_INDEX = tl.constexpr(2**31 - 1)  # index sentinel: larger than any valid index, so tl.min ignores it
# Elements per loop trip on the GPU (4 warps): 4 positions per thread per g in the group kernels,
# 16 per thread in the global one.
_GPU_GROUP_TILE = 512
_GPU_GLOBAL_TILE = 2048
_GPU_WARPS = 4
_INTERP_TILE = 1 << 16  # the interpreter's sweet spot (measured)


# ---------------------------------------------------------------------------------------------- helpers


@triton.jit
def _is_nan(v):
    return v != v  # noqa: PLR0124 - the NaN test that works in the interpreter too (no libdevice there)


@triton.jit
def _first_max(v, idx, valid):
    """Row-wise (axis 1) max of ``v`` and the first index (from ``idx``) where it occurs; NaN beats numbers.

    ``v`` is already upcast; invalid lanes are set to -inf here (bf16 ``other=`` is unreliable in the
    interpreter). ``tl.max`` may or may not propagate NaN depending on the backend, so NaN is handled apart.
    """
    v = tl.where(valid, v, float("-inf"))
    is_nan = _is_nan(v)
    has_nan = tl.max(is_nan.to(tl.int32), axis=1) > 0
    m = tl.max(v, axis=1)
    hit = tl.where(has_nan[:, None], is_nan, v == m[:, None]) & valid
    first = tl.min(tl.where(hit, idx, _NO_INDEX), axis=1)
    return tl.where(has_nan, float("nan"), m), first


@triton.jit
def _merge(best, arg, m, i):
    """Fold a later (max, index) into the running one: strictly larger wins, so ties keep the earlier
    index; a NaN replaces a number but not an earlier NaN."""
    take = (m > best) | (_is_nan(m) & ~_is_nan(best))
    return tl.where(take, m, best), tl.where(take, i, arg)


@triton.jit
def _bchw_offsets(p, C, H, W, sb, sc, sh, sw):
    """Offsets of the flat ``[B, C, H, W]`` positions ``p`` in a tensor with strides (sb, sc, sh, sw).

    The div/mod stay in int32 (the launcher checks positions fit); products are int64 so large tensors
    cannot overflow the address arithmetic.
    """
    w = p % W
    t = p // W
    h = t % H
    t = t // H
    c = t % C
    b = t // C
    return b.to(tl.int64) * sb + c.to(tl.int64) * sc + h.to(tl.int64) * sh + w.to(tl.int64) * sw


# ---------------------------------------------------------------------------------------------- kernels


# The group kernels loop over g with 1-D [BLOCK_P] vectors: every thread keeps the running max of its own
# positions (no cross-thread reduction), and each load/store is one coalesced row of pixels for
# [B, C, G, H, W]-contiguous tensors. (A [BLOCK_G, BLOCK_P] tile compiled for sm_90 with threads laid along
# g, i.e. strided accesses plus shuffles.)


@triton.jit
def _group_max_fwd_kernel(x_ptr, y_ptr, arg_ptr, P, C, G, H, W, sxb, sxc, sxg, sxh, sxw,
                          ACC: tl.constexpr, BLOCK_P: tl.constexpr):
    p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    pmask = p < P
    ptrs = x_ptr + _bchw_offsets(p, C, H, W, sxb, sxc, sxh, sxw)
    best = tl.full([BLOCK_P], float("-inf"), ACC)
    arg = tl.zeros([BLOCK_P], tl.int32)
    for g in range(G):
        v = tl.load(ptrs, mask=pmask).to(ACC)
        best, arg = _merge(best, arg, v, g)
        ptrs += sxg
    tl.store(y_ptr + p, best.to(y_ptr.dtype.element_ty), mask=pmask)
    tl.store(arg_ptr + p, arg, mask=pmask)


@triton.jit
def _group_mean_fwd_kernel(x_ptr, y_ptr, P, C, G, H, W, sxb, sxc, sxg, sxh, sxw,
                           ACC: tl.constexpr, BLOCK_P: tl.constexpr):
    p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    pmask = p < P
    ptrs = x_ptr + _bchw_offsets(p, C, H, W, sxb, sxc, sxh, sxw)
    acc = tl.zeros([BLOCK_P], ACC)
    for _ in range(G):
        acc += tl.load(ptrs, mask=pmask).to(ACC)
        ptrs += sxg
    tl.store(y_ptr + p, (acc / G).to(y_ptr.dtype.element_ty), mask=pmask)


@triton.jit
def _group_max_bwd_kernel(dy_ptr, arg_ptr, dx_ptr, P, C, G, H, W, sdb, sdc, sdh, sdw,
                          ACC: tl.constexpr, BLOCK_P: tl.constexpr):
    # dx is contiguous [B, C, G, H, W]: position p = (bc, hw) lands at (bc·G + g)·HW + hw.
    p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    pmask = p < P
    dy = tl.load(dy_ptr + _bchw_offsets(p, C, H, W, sdb, sdc, sdh, sdw), mask=pmask).to(ACC)
    am = tl.load(arg_ptr + p, mask=pmask, other=-1)
    HW = H * W
    out = dx_ptr + (p // HW).to(tl.int64) * G * HW + p % HW
    for g in range(G):
        tl.store(out, tl.where(am == g, dy, 0.0).to(dx_ptr.dtype.element_ty), mask=pmask)
        out += HW


@triton.jit
def _group_mean_bwd_kernel(dy_ptr, dx_ptr, P, C, G, H, W, sdb, sdc, sdh, sdw,
                           ACC: tl.constexpr, BLOCK_P: tl.constexpr):
    p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    pmask = p < P
    dy = tl.load(dy_ptr + _bchw_offsets(p, C, H, W, sdb, sdc, sdh, sdw), mask=pmask).to(ACC)
    val = (dy / G).to(dx_ptr.dtype.element_ty)  # divide (not multiply by 1/G) to round like torch
    HW = H * W
    out = dx_ptr + (p // HW).to(tl.int64) * G * HW + p % HW
    for _ in range(G):
        tl.store(out, val, mask=pmask)
        out += HW


@triton.jit
def _global_max_fwd_kernel(x_ptr, y_ptr, arg_ptr, BC, C, G, H, W, sxb, sxc, sxg, sxh, sxw,
                           ACC: tl.constexpr, BLOCK_BC: tl.constexpr, BLOCK_R: tl.constexpr):
    # One [BLOCK_BC, BLOCK_R] tile per trip over the flattened r = g·HW + h·W + w, keeping a running max.
    bc = tl.program_id(0) * BLOCK_BC + tl.arange(0, BLOCK_BC)
    rows = bc < BC
    base = (bc // C).to(tl.int64) * sxb + (bc % C).to(tl.int64) * sxc
    HW = H * W
    R = G * HW
    best = tl.full([BLOCK_BC], float("-inf"), ACC)
    arg = tl.zeros([BLOCK_BC], tl.int32)
    for r0 in range(0, R, BLOCK_R):
        r = r0 + tl.arange(0, BLOCK_R)
        rest = r % HW
        off = (r // HW).to(tl.int64) * sxg + (rest // W).to(tl.int64) * sxh + (rest % W).to(tl.int64) * sxw
        valid = rows[:, None] & (r < R)[None, :]
        v = tl.load(x_ptr + base[:, None] + off[None, :], mask=valid).to(ACC)
        m, i = _first_max(v, r[None, :], valid)
        best, arg = _merge(best, arg, m, i)
    tl.store(y_ptr + bc, best.to(y_ptr.dtype.element_ty), mask=rows)
    tl.store(arg_ptr + bc, arg, mask=rows)


@triton.jit
def _global_max_bwd_kernel(dy_ptr, arg_ptr, dx_ptr, BC, C, R, sdb, sdc,
                           ACC: tl.constexpr, BLOCK_BC: tl.constexpr, BLOCK_R: tl.constexpr):
    # dx is contiguous, i.e. [BC, R]; every element is written (dy at the arg-max, zeros elsewhere).
    bc = tl.program_id(0) * BLOCK_BC + tl.arange(0, BLOCK_BC)
    rows = bc < BC
    dy = tl.load(dy_ptr + (bc // C).to(tl.int64) * sdb + (bc % C).to(tl.int64) * sdc, mask=rows).to(ACC)
    am = tl.load(arg_ptr + bc, mask=rows, other=-1)
    base = bc.to(tl.int64) * R
    for r0 in range(0, R, BLOCK_R):
        r = r0 + tl.arange(0, BLOCK_R)
        valid = rows[:, None] & (r < R)[None, :]
        val = tl.where(r[None, :] == am[:, None], dy[:, None], 0.0)
        tl.store(dx_ptr + base[:, None] + r[None, :], val.to(dx_ptr.dtype.element_ty), mask=valid)


# ---------------------------------------------------------------------------------------------- launchers


def _acc(dtype: torch.dtype):
    return tl.float64 if dtype == torch.float64 else tl.float32


def _mean_out_dtype(dtype: torch.dtype) -> torch.dtype:
    """The interpreter casts fp32 → bf16 by truncation (the GPU rounds to nearest even): there the mean
    kernels write fp32 and torch rounds. Max and its gathers copy bf16 values exactly, so they need not."""
    return torch.float32 if upcast_loads(dtype) else dtype


def group_blocks(P: int, interpret: bool) -> dict:
    """Block size of the group kernels: ``BLOCK_P`` positions per program (they loop over G)."""
    return {"BLOCK_P": min(next_pow2(P), _INTERP_TILE) if interpret else _GPU_GROUP_TILE}


def global_blocks(BC: int, R: int, interpret: bool) -> dict:
    """Block sizes of the global kernels: ``BLOCK_BC`` rows × ``BLOCK_R`` of the flattened (G, H, W).

    On the GPU one row per program: with several rows sm_90 lays threads along the rows (strided loads).
    """
    if not interpret:
        return {"BLOCK_BC": 1, "BLOCK_R": min(next_pow2(R), _GPU_GLOBAL_TILE)}
    block_r = min(next_pow2(R), _INTERP_TILE // 4)
    return {"BLOCK_BC": min(next_pow2(BC), max(1, _INTERP_TILE // block_r)), "BLOCK_R": block_r}


def _new_output(shape: tuple, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Allocate a kernel output (the one allocation point, so tests can poison and guard outputs)."""
    return torch.empty(shape, dtype=dtype, device=device)


def _check(x: torch.Tensor, argument: str = "x") -> None:
    check_dtype(x, argument)
    if x.numel() >= 2**31:
        raise ValueError(f"{argument} has {x.numel()} elements; the Triton pooling kernels index with int32")


def _launch(kernel, n_programs: int, device: torch.device, *args, **meta) -> None:
    # an empty output launches nothing (a zero-size grid is an error on some backends)
    launch(kernel, (n_programs,), device, *args, num_warps=_GPU_WARPS, **meta)


def group_max_forward(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Max over G of ``[B, C, G, H, W]``: values ``[B, C, H, W]`` (x.dtype) and first arg-max (int32)."""
    _check(x)
    B, C, G, H, W = x.shape
    y = _new_output((B, C, H, W), x.dtype, x.device)
    arg = _new_output((B, C, H, W), torch.int32, x.device)
    P = y.numel()
    blocks = group_blocks(P, interpreting())
    _launch(_group_max_fwd_kernel, triton.cdiv(P, blocks["BLOCK_P"]), x.device,
            x, y, arg, P, C, G, H, W, *x.stride(), ACC=_acc(x.dtype), **blocks)
    return y, arg


def group_mean_forward(x: torch.Tensor) -> torch.Tensor:
    """Mean over G of ``[B, C, G, H, W]`` → ``[B, C, H, W]``, accumulated in fp32 (fp64 for fp64)."""
    _check(x)
    B, C, G, H, W = x.shape
    y = _new_output((B, C, H, W), _mean_out_dtype(x.dtype), x.device)
    P = y.numel()
    blocks = group_blocks(P, interpreting())
    _launch(_group_mean_fwd_kernel, triton.cdiv(P, blocks["BLOCK_P"]), x.device,
            x, y, P, C, G, H, W, *x.stride(), ACC=_acc(x.dtype), **blocks)
    return y.to(x.dtype)


def group_max_backward(grad: torch.Tensor, argmax: torch.Tensor, G: int) -> torch.Tensor:
    """``dx[b, c, g, h, w] = grad[b, c, h, w]`` where ``g == argmax``, else 0 (contiguous ``dx``)."""
    _check(grad, "grad")
    B, C, H, W = grad.shape
    argmax = argmax.to(torch.int32).contiguous()
    dx = _new_output((B, C, G, H, W), grad.dtype, grad.device)
    P = grad.numel()
    blocks = group_blocks(P, interpreting())
    _launch(_group_max_bwd_kernel, triton.cdiv(P, blocks["BLOCK_P"]) if G else 0, grad.device,
            grad, argmax, dx, P, C, G, H, W, *grad.stride(), ACC=_acc(grad.dtype), **blocks)
    return dx


def group_mean_backward(grad: torch.Tensor, G: int) -> torch.Tensor:
    """``dx[b, c, g, h, w] = grad[b, c, h, w] / G`` (contiguous ``dx``)."""
    _check(grad, "grad")
    B, C, H, W = grad.shape
    dx = _new_output((B, C, G, H, W), _mean_out_dtype(grad.dtype), grad.device)
    P = grad.numel()
    blocks = group_blocks(P, interpreting())
    _launch(_group_mean_bwd_kernel, triton.cdiv(P, blocks["BLOCK_P"]) if G else 0, grad.device,
            grad, dx, P, C, G, H, W, *grad.stride(), ACC=_acc(grad.dtype), **blocks)
    return dx.to(grad.dtype)


def global_max_forward(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Max over (G, H, W): values ``[B, C]`` and the first arg-max (int32) into ``g·H·W + h·W + w``."""
    _check(x)
    B, C, G, H, W = x.shape
    y = _new_output((B, C), x.dtype, x.device)
    arg = _new_output((B, C), torch.int32, x.device)
    blocks = global_blocks(B * C, G * H * W, interpreting())
    _launch(_global_max_fwd_kernel, triton.cdiv(B * C, blocks["BLOCK_BC"]), x.device,
            x, y, arg, B * C, C, G, H, W, *x.stride(), ACC=_acc(x.dtype), **blocks)
    return y, arg


def global_max_backward(grad: torch.Tensor, argmax: torch.Tensor, G: int, H: int, W: int) -> torch.Tensor:
    """``dx[b, c, g, h, w] = grad[b, c]`` at the flattened arg-max, zeros elsewhere (contiguous ``dx``)."""
    _check(grad, "grad")
    B, C = grad.shape
    R = G * H * W
    argmax = argmax.to(torch.int32).contiguous()
    dx = _new_output((B, C, G, H, W), grad.dtype, grad.device)
    blocks = global_blocks(B * C, R, interpreting())
    _launch(_global_max_bwd_kernel, triton.cdiv(B * C, blocks["BLOCK_BC"]) if R else 0, grad.device,
            grad, argmax, dx, B * C, C, R, *grad.stride(), ACC=_acc(grad.dtype), **blocks)
    return dx


# ---------------------------------------------------------------------------------------------- sm_90 CI


# Pointer element types per kernel argument; ``None`` means "the data dtype of the case".
_POINTERS = {"x_ptr": None, "y_ptr": None, "dy_ptr": None, "dx_ptr": None, "arg_ptr": "i32"}
_GPU_SHAPE = {"B": 64, "C": 64, "G": 8, "H": 32, "W": 32}  # the target layer (docs/kernels.md#roofline)


def _signature(fn, data: str) -> dict:
    """``ASTSource`` signature: pointers ``*fp32``/``*bf16``/``*i32``, ints ``i32``, constexprs ``constexpr``."""
    params = inspect.signature(getattr(fn, "fn", fn)).parameters
    signature = {}
    for name, param in params.items():
        if param.annotation is tl.constexpr or "constexpr" in str(param.annotation):
            signature[name] = "constexpr"
        elif name in _POINTERS:
            signature[name] = "*" + (_POINTERS[name] or data)
        else:
            signature[name] = "i32"
    return signature


def compile_cases() -> list[dict]:
    """Every kernel at its GPU block configuration (target layer shape), for fp32 and bf16 data.

    Each dict has ``name``, ``fn``, ``signature``, ``constexprs`` and ``num_warps``, ready for
    ``triton.compile(ASTSource(fn, signature, constexprs), target=GPUTarget("cuda", 90, 32),
    options={"num_warps": num_warps})`` in a process without ``TRITON_INTERPRET``.
    """
    s = _GPU_SHAPE
    group = group_blocks(s["B"] * s["C"] * s["H"] * s["W"], interpret=False)
    glob = global_blocks(s["B"] * s["C"], s["G"] * s["H"] * s["W"], interpret=False)
    kernels = [
        ("group_max_fwd", _group_max_fwd_kernel, group),
        ("group_mean_fwd", _group_mean_fwd_kernel, group),
        ("group_max_bwd", _group_max_bwd_kernel, group),
        ("group_mean_bwd", _group_mean_bwd_kernel, group),
        ("global_max_fwd", _global_max_fwd_kernel, glob),
        ("global_max_bwd", _global_max_bwd_kernel, glob),
    ]
    cases = []
    for data in ("fp32", "bf16"):
        for name, fn, blocks in kernels:
            cases.append({
                "name": f"group_pool.{name}.{data}",
                "fn": fn,
                "signature": _signature(fn, data),
                "constexprs": {"ACC": tl.float32, **blocks},
                "num_warps": _GPU_WARPS,
            })
    return cases
