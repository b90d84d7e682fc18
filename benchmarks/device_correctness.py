"""The device check's correctness rows: every kernel against a float64 reference on the same device, with a
relative-norm tolerance per precision (``TOL``); ``correctness`` runs them and emits one row each.

Pooled rows compare gradients through the Triton run's own arg-max: rounding flips near-tied maxima
without any kernel error. On CPU the same rows run through the Triton interpreter (``--tiny``).
"""

from __future__ import annotations

import contextlib

import torch
from common import Precision, emit
from pgcnn_triton.kernels import disk_taps, global_max_pool, group_conv2d, group_pool, kernel_bank

# fp16 and TF32 round operands to 10 mantissa bits, bf16 to 7; all accumulate in fp32
TOL = {"fp32": 1e-5, "tf32": 5e-3, "fp16": 5e-3, "bf16": 2e-2}


def rel(a, b):
    return float((a.detach().double() - b.detach().double()).norm() / b.detach().double().norm().clamp_min(1e-30))


# ------------------------------------------------------------------------------------ correctness

def conv_inputs(b, c, n, k, h, shared, device, dtype=torch.float64):
    taps = disk_taps(k).num_taps
    x = torch.randn(b, c, n, h, h, device=device, dtype=dtype)
    bank = torch.randn(1 if shared else b, c * n, taps, c * n, device=device, dtype=dtype) / (taps * c * n) ** 0.5
    bias = torch.randn(c, device=device, dtype=dtype)
    return x, bank, bias


def precision(prec):
    """``(Precision context, operand dtype)`` of a correctness row; fp16 runs with TF32 off."""
    if prec == "fp16":
        return Precision("fp32"), torch.float16
    context = Precision(prec)
    return context, context.dtype


def check_conv(device, shape, shared, prec, split=None):
    """The group conv's y, dx, dbank; ``split`` forces that many partial sums in the bank gradient."""
    from pgcnn_triton.kernels.group_conv_triton import forced_split

    b, c, n, k, h = shape
    x64, bank64, bias64 = conv_inputs(b, c, n, k, h, shared, device)

    def grads(x, bank, bias, backend):
        x, bank, bias = (t.detach().requires_grad_() for t in (x, bank, bias))
        y = group_conv2d(x, bank, k, c, bias, backend=backend)
        gy = torch.ones_like(y) * torch.linspace(-1, 1, y.numel(), device=device, dtype=y.dtype).reshape(y.shape)
        gx, gb = torch.autograd.grad(y, (x, bank), gy)
        return y, gx, gb

    ref = grads(x64, bank64, bias64, "torch")
    context, dtype = precision(prec)
    with context, forced_split(split) if split else contextlib.nullcontext():
        out = grads(x64.to(dtype), bank64.to(dtype), bias64.to(dtype), "triton")
    name = f"group_conv {'S=1' if shared else 'S=B'}{f' split={split}' if split else ''}"
    return [(name + part, prec, str(shape), rel(o, r)) for part, o, r in zip((" y", " dx", " dbank"), out, ref)]


def check_conv_pooled(device, shape, shared, prec, pool):
    """The conv with max / mean pooling fused into its epilogue. The Triton run's arg-max picks the element
    whose gradient the float64 reference computes: rounding (TF32, bf16, even fp32's summation order)
    flips near-tied arg-maxes, which reroutes a gradient without any error in the kernels. y is compared
    with the reference's own max (a flipped tie changes it by the size of the tie only)."""
    b, c, n, k, h = shape
    x64, bank64, bias64 = conv_inputs(b, c, n, k, h, shared, device)
    context, dtype = precision(prec)
    with context:
        x, bank, bias = (t.to(dtype).requires_grad_() for t in (x64, bank64, bias64))
        y, index = torch.ops.pgcnn_triton.group_conv2d_pool(x, bank, bias, k, k // 2, c, pool, "triton")
        gy = torch.linspace(-1, 1, y.numel(), device=device, dtype=y.dtype).reshape(y.shape)
        gx, gb = torch.autograd.grad(y, (x, bank), gy)
    x64, bank64 = x64.requires_grad_(), bank64.requires_grad_()
    full = group_conv2d(x64, bank64, k, c, bias64, backend="torch")  # [B, C, N, H, W]
    if pool == "max":
        y_ref, chosen = full.amax(2), full.gather(2, index.long().unsqueeze(2)).squeeze(2)
    else:
        y_ref = chosen = full.mean(2)
    gx_ref, gb_ref = torch.autograd.grad(chosen, (x64, bank64), gy.double())
    name = f"group_conv+{pool}pool {'S=1' if shared else 'S=B'}"
    return [(name + part, prec, str(shape), rel(o, r))
            for part, o, r in zip((" y", " dx", " dbank"), (y, gx, gb), (y_ref, gx_ref, gb_ref))]


def check_conv_channels_last(device, shape, shared, prec):
    """The Triton conv's channels-last forward and input gradient (``channels_last=True``: operands whose
    ``[B, C·N, H, W]`` view is channels-last, what the kernel table times) against the reference op."""
    from pgcnn_triton.kernels import group_conv_triton as gct

    b, c, n, k, h = shape
    x64, bank64, _ = conv_inputs(b, c, n, k, h, shared, device)
    x64.requires_grad_()
    y64 = group_conv2d(x64, bank64, k, c, backend="torch")
    gy64 = torch.randn_like(y64)
    (gx64,) = torch.autograd.grad(y64, x64, gy64)
    context, dtype = precision(prec)
    with context:
        tf32 = torch.backends.cudnn.allow_tf32
        bank = bank64.to(dtype)
        x_cl = x64.detach().to(dtype).reshape(b, c * n, h, h).contiguous(memory_format=torch.channels_last)
        y = gct.conv_forward(x_cl.reshape(b, c, n, h, h), bank, None, k, k // 2, c, allow_tf32=tf32,
                             channels_last=True)
        gy_cl = gy64.to(dtype).reshape(b, c * n, h, h).contiguous(memory_format=torch.channels_last)
        gx = gct.conv_input_grad(gy_cl, bank, x64.shape, k, k // 2, tf32, channels_last=True)
    name = f"group_conv channels-last {'S=1' if shared else 'S=B'}"
    return [(name + " y", prec, str(shape), rel(y.reshape(y64.shape), y64)),
            (name + " dx", prec, str(shape), rel(gx, gx64))]


def check_bank(device, prec, s, n, taps, c, hidden=32):
    h = torch.randn(s, n, n, taps, hidden, device=device, dtype=torch.float64)
    w = torch.randn(c * c, hidden, device=device, dtype=torch.float64) / hidden ** 0.5
    bias = torch.randn(c * c, device=device, dtype=torch.float64)

    def run(backend, dtype, out_dtype):
        hh, ww, bb = (t.to(dtype).requires_grad_() for t in (h, w, bias))
        bank = kernel_bank(hh, ww, bb, c, dtype=out_dtype, backend=backend)
        gy = torch.linspace(-1, 1, bank.numel(), device=device, dtype=bank.dtype).reshape(bank.shape)
        return (bank, *torch.autograd.grad(bank, (hh, ww, bb), gy))

    ref = run("torch", torch.float64, torch.float64)
    with Precision(prec):
        # the kernel net runs in fp32; bf16 is the bank's output dtype (the conv operand)
        out = run("triton", torch.float32, torch.bfloat16 if prec == "bf16" else torch.float32)
    shape = f"S={s} N={n} T={taps} C={c} H={hidden}"
    return [(f"kernel_bank {part}", prec, shape, rel(o, r))
            for part, o, r in zip(("bank", "dhidden", "dweight", "dbias"), out, ref)]


def check_pool(device, prec, shape):
    x64 = torch.randn(*shape, device=device, dtype=torch.float64)
    rows = []
    for name, fn in (("group_pool max", lambda t, be: group_pool(t, "max", backend=be)),
                     ("group_pool mean", lambda t, be: group_pool(t, "mean", backend=be)),
                     ("global_max_pool", lambda t, be: global_max_pool(t, backend=be))):
        x = x64.to(Precision(prec).dtype)
        outs = []
        for backend in ("torch", "triton"):
            xx = x.detach().requires_grad_()
            y = fn(xx, backend)
            outs.append((y, torch.autograd.grad(y, xx, torch.ones_like(y))[0]))
        rows.append((name, prec, str(tuple(shape)), max(rel(outs[1][0], outs[0][0]), rel(outs[1][1], outs[0][1]))))
    return rows


# --------------------------------------------------------------------------------------- timing

def correctness(device, tiny, sink, precisions=("fp32", "bf16", "tf32", "fp16")) -> list[dict]:
    check_shape = (2, 2, 4, 3, 6) if tiny else (8, 32, 8, 7, 16)
    plan = []
    for prec in (("fp32", "bf16") if tiny else precisions):
        plan += [lambda p=prec: check_conv(device, check_shape, False, p),
                 lambda p=prec: check_conv(device, check_shape, True, p)]
        if prec != "fp16":  # the kernel net runs in fp32 and the pooling ops have no fp16 use
            plan += [lambda p=prec: check_bank(device, p, *((2, 3, 5, 2) if tiny else (8, 8, 29, 32))),
                     lambda p=prec: check_pool(device, p, (2, 3, 5, 4, 4) if tiny else (16, 32, 8, 32, 32))]
        plan.append(lambda p=prec: check_conv_pooled(device, check_shape, False, p, "max"))
        if tiny and prec != "fp32":  # the interpreter's time: the other new rows once, in fp32
            continue
        plan += [lambda p=prec: check_conv_pooled(device, check_shape, True, p, "mean"),
                 lambda p=prec: check_conv(device, check_shape, True, p, split=3),
                 lambda p=prec: check_conv(device, check_shape, False, p, split=3),
                 lambda p=prec: check_conv_channels_last(device, check_shape, False, p)]
    rows = []
    for part in plan:
        try:
            found = part()
        except Exception as exc:  # report and go on: the timing parts still tell something
            found = [(f"FAILED {type(exc).__name__}: {str(exc)[:200]}", "?", "", float("inf"))]
        for op, prec, shape, err in found:
            row = {"op": op, "precision": prec, "shape": shape, "rel_err": err, "tol": TOL.get(prec, 0.0),
                   "ok": "yes" if err <= TOL.get(prec, 0.0) else "NO"}
            emit(row, sink)
            rows.append(row)
    return rows
