"""Group-axis convolution op: ``[B, C_in, N_in, H, W]`` features with a tap-packed bank.

y[b, o, n, p] = bias[o] + Σ_{c, g, t} bank[s(b), o·N_out + n, t, c·N_in + g] · x[b, c, g, p + offset_t]

(a cross-correlation, as ``F.conv2d``; ``s(b) = 0`` for a shared bank, ``b`` for per-sample banks).
``auto`` (GPU) times both implementations once per shape unless a per-precision rule fixes the choice
(``PGCNN_AUTO_RULES=tf32=torch`` sends TF32 convs to cuDNN; :mod:`pgcnn_triton.kernels._backend`).
The sum over input elements is unnormalised (docs/method.md#circular-mask).

Registered as ``torch.ops.pgcnn_triton.group_conv2d`` / ``group_conv2d_pool`` (forward) and
``group_conv2d_backward`` with fake kernels and autograd, so ``torch.compile`` sees opaque ops.
Implementations: the tap-sparse Triton kernel (:mod:`.group_conv_triton`) and the dense ``conv2d``
reference (:mod:`.group_conv_reference`; cuDNN on GPU). ``auto`` on GPU times both once per shape
(forward and backward separately) and keeps the faster.
"""

from __future__ import annotations

import torch

from . import group_conv_reference as reference
from ._backend import precision_of, requested, run, shape_key, triton_available
from .group_conv_reference import dense_kernel, packed_kernel  # noqa: F401  (re-exported)
from .taps import tap_set

_POOLS = (None, "max", "mean")


def resolve_padding(padding, kernel_size: int) -> int:
    if padding == "same":
        return kernel_size // 2
    if padding == "valid":
        return 0
    if isinstance(padding, int) and not isinstance(padding, bool) and padding >= 0:
        return padding
    raise ValueError(f"padding must be 'same', 'valid' or a non-negative int, got {padding!r}")


def conv_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype the group conv runs in for input ``x``: the autocast dtype when autocast is on for
    ``x``'s device (the op is a custom op, which autocast would not cast by itself), else ``x.dtype``.
    float64 stays float64, as autocast leaves float64 tensors alone."""
    if x.is_floating_point() and x.dtype != torch.float64 and torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype


def _triton():
    from . import group_conv_triton

    return group_conv_triton


def _tf32() -> bool:
    # the op stands in for a cuDNN convolution, so it follows cuDNN's TF32 switch
    return torch.backends.cudnn.allow_tf32


def _key(name, *tensors, extra=()):
    return shape_key(name, *tensors, extra=(*extra, _tf32()))


def _out_hw(x, kernel_size, padding):
    return x.shape[-2] + 2 * padding - kernel_size + 1, x.shape[-1] + 2 * padding - kernel_size + 1


# ----------------------------------------------------------------------------------------- forward

@torch.library.custom_op("pgcnn_triton::group_conv2d", mutates_args=())
def _conv_op(x: torch.Tensor, bank: torch.Tensor, bias: torch.Tensor | None, kernel_size: int, padding: int,
             backend: str) -> torch.Tensor:
    # the op only needs how many bank rows share one bias entry
    out_channels = bias.shape[0] if bias is not None else bank.shape[1]

    def run_triton():
        return _triton().conv_forward(x, bank, bias, kernel_size, padding, out_channels, allow_tf32=_tf32())

    def run_torch():
        return reference.forward(x, bank, bias, kernel_size, padding)

    return run(backend, x.device, lambda: _key("conv_fwd", x, bank, extra=(kernel_size, padding, bias is not None)),
               {"triton": run_triton, "torch": run_torch}, precision_of(x.dtype, _tf32()))


@_conv_op.register_fake
def _(x, bank, bias, kernel_size, padding, backend):
    h, w = _out_hw(x, kernel_size, padding)
    return x.new_empty(x.shape[0], bank.shape[1], h, w)


@torch.library.custom_op("pgcnn_triton::group_conv2d_pool", mutates_args=())
def _conv_pool_op(x: torch.Tensor, bank: torch.Tensor, bias: torch.Tensor | None, kernel_size: int, padding: int,
                  out_channels: int, mode: str, backend: str) -> tuple[torch.Tensor, torch.Tensor]:
    def run_triton():
        return _triton().conv_forward(x, bank, bias, kernel_size, padding, out_channels, pool=mode,
                                      allow_tf32=_tf32())

    def run_torch():
        return reference.forward_pooled(x, bank, bias, kernel_size, out_channels, padding, mode)

    return run(backend, x.device, lambda: _key("conv_pool", x, bank, extra=(kernel_size, padding, out_channels, mode)),
               {"triton": run_triton, "torch": run_torch}, precision_of(x.dtype, _tf32()))


@_conv_pool_op.register_fake
def _(x, bank, bias, kernel_size, padding, out_channels, mode, backend):
    h, w = _out_hw(x, kernel_size, padding)
    index = x.new_empty(x.shape[0], out_channels, h, w, dtype=torch.int32) if mode == "max" \
        else x.new_empty(0, dtype=torch.int32)
    return x.new_empty(x.shape[0], out_channels, h, w), index


# ---------------------------------------------------------------------------------------- backward

@torch.library.custom_op("pgcnn_triton::group_conv2d_backward", mutates_args=())
def _conv_backward_op(grad_y: torch.Tensor, x: torch.Tensor, bank: torch.Tensor, kernel_size: int, padding: int,
                      need_x: bool, need_bank: bool, backend: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(grad_x, grad_bank)``; a gradient that is not needed comes back as an empty tensor."""
    grad_y = grad_y.contiguous()

    def run_triton():
        t = _triton()
        gx = t.conv_input_grad(grad_y, bank, x.shape, kernel_size, padding, _tf32()) if need_x else None
        gb = t.conv_bank_grad(grad_y, x, bank.shape, kernel_size, padding, _tf32()) if need_bank else None
        return gx, gb

    def run_torch():
        return reference.backward(grad_y, x, bank, kernel_size, padding, need_x, need_bank)

    gx, gb = run(backend, x.device, lambda: _key("conv_bwd", x, bank, extra=(kernel_size, padding, need_x, need_bank)),
                 {"triton": run_triton, "torch": run_torch}, precision_of(x.dtype, _tf32()))
    empty = x.new_empty(0)
    return (gx if gx is not None else empty), (gb if gb is not None else empty.to(bank.dtype))


@_conv_backward_op.register_fake
def _(grad_y, x, bank, kernel_size, padding, need_x, need_bank, backend):
    return (x.new_empty(x.shape) if need_x else x.new_empty(0),
            bank.new_empty(bank.shape) if need_bank else bank.new_empty(0))


def _setup(ctx, inputs):
    _, _, bias, kernel_size, padding = inputs[:5]
    ctx.kernel_size, ctx.padding, ctx.backend = kernel_size, padding, inputs[-1]
    ctx.has_bias = bias is not None


def _input_grads(ctx, grad_y, x, bank):
    need_x, need_bank = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    if not (need_x or need_bank):
        return None, None
    gx, gb = torch.ops.pgcnn_triton.group_conv2d_backward(grad_y, x, bank, ctx.kernel_size, ctx.padding,
                                                          need_x, need_bank, ctx.backend)
    return (gx if need_x else None), (gb if need_bank else None)


def _conv_setup(ctx, inputs, output):
    _setup(ctx, inputs)
    ctx.bias_channels = inputs[2].shape[0] if inputs[2] is not None else 1
    ctx.save_for_backward(inputs[0], inputs[1])


def _conv_backward(ctx, grad_y):
    x, bank = ctx.saved_tensors
    gx, gb = _input_grads(ctx, grad_y, x, bank)
    gbias = None
    if ctx.has_bias and ctx.needs_input_grad[2]:
        gbias = grad_y.sum((0, 2, 3)).reshape(ctx.bias_channels, -1).sum(1)
    return gx, gb, gbias, None, None, None


_conv_op.register_autograd(_conv_backward, setup_context=_conv_setup)


def _pool_setup(ctx, inputs, output):
    _setup(ctx, inputs)
    ctx.mode = inputs[6]
    ctx.n_out = inputs[1].shape[1] // inputs[5]
    ctx.save_for_backward(inputs[0], inputs[1], output[1])
    ctx.mark_non_differentiable(output[1])


def _pool_backward(ctx, grad_y, _grad_index):
    x, bank, index = ctx.saved_tensors
    b, c, h, w = grad_y.shape
    if ctx.mode == "max":  # the whole gradient goes to the first maximal element
        full = grad_y.new_zeros(b, c, ctx.n_out, h, w)
        full.scatter_(2, index.long().unsqueeze(2), grad_y.unsqueeze(2))
    else:
        full = (grad_y / ctx.n_out).unsqueeze(2).expand(b, c, ctx.n_out, h, w)
    gx, gb = _input_grads(ctx, full.reshape(b, c * ctx.n_out, h, w), x, bank)
    gbias = grad_y.sum((0, 2, 3)) if ctx.has_bias and ctx.needs_input_grad[2] else None
    return gx, gb, gbias, None, None, None, None, None


_conv_pool_op.register_autograd(_pool_backward, setup_context=_pool_setup)


# ------------------------------------------------------------------------------------ public entry

def group_conv2d(
    x: torch.Tensor,
    bank: torch.Tensor,
    kernel_size: int,
    out_channels: int,
    bias: torch.Tensor | None = None,
    padding="same",
    pool: str | None = None,
    backend: str | None = None,
) -> torch.Tensor:
    """Convolve group features with a tap-packed bank.

    Args:
        x: ``[B, C_in, N_in, H, W]`` features.
        bank: shared ``[C_out·N_out, T, C_in·N_in]`` (or ``[1, …]``) or per-sample
            ``[B, C_out·N_out, T, C_in·N_in]`` bank (T in-disk taps of ``kernel_size``, or all k² taps:
            the square layout of :mod:`.taps`). x, bank and
            bias are cast to :func:`conv_dtype` (``x.dtype``, or the autocast dtype under autocast).
        kernel_size: odd k. out_channels: C_out. bias: optional ``[C_out]``.
        padding: ``"same"``, ``"valid"`` or an int (stride 1).
        pool: ``None``, or ``"max"`` / ``"mean"`` over the output elements, fused into the epilogue.
        backend: ``"triton"``, ``"torch"`` or ``"auto"`` (default: see :mod:`pgcnn_triton.kernels._backend`).

    Returns:
        ``[B, C_out, N_out, H', W']``, or ``[B, C_out, H', W']`` when pooled.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 5:
        raise ValueError(f"x must have shape [B, C_in, N_in, H, W], got {getattr(x, 'shape', type(x).__name__)}")
    if bank.dim() == 3:
        bank = bank[None]
    if bank.dim() != 4:
        raise ValueError(f"bank must have shape [S, C_out*N_out, T, C_in*N_in], got {tuple(bank.shape)}")
    b, c_in, n_in, h, w = x.shape
    s, rows, taps, cols = bank.shape
    if cols != c_in * n_in:
        raise ValueError(f"bank has {cols} input columns but x has C_in*N_in = {c_in}*{n_in} = {c_in * n_in}")
    if s not in (1, b):
        raise ValueError(f"bank must be shared (S=1) or per-sample (S=B={b}), got S={s}")
    if isinstance(out_channels, bool) or not isinstance(out_channels, int) or out_channels < 1:
        raise ValueError(f"out_channels must be a positive int, got {out_channels!r}")
    if rows % out_channels:
        raise ValueError(f"bank rows ({rows}) must be a multiple of out_channels ({out_channels})")
    tap_set(kernel_size, taps)  # the disk's or the square's tap count, else a ValueError
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise ValueError(f"bias must have shape [{out_channels}] (out_channels), got {tuple(bias.shape)}")
    if pool not in _POOLS:
        raise ValueError(f"pool must be one of {_POOLS}, got {pool!r}")
    pad = resolve_padding(padding, kernel_size)
    if h + 2 * pad < kernel_size or w + 2 * pad < kernel_size:
        raise ValueError(f"input {h}x{w} is smaller than kernel_size={kernel_size} with padding {pad}")
    # fixed now, so the backward runs where the forward ran even after a use_backend block ends
    backend = requested(backend)
    dtype = conv_dtype(x)
    x, bank = x.to(dtype), bank.to(dtype)
    bias = None if bias is None else bias.to(dtype)
    n_out = rows // out_channels
    if pool is not None:
        y, _ = torch.ops.pgcnn_triton.group_conv2d_pool(x, bank, bias, kernel_size, pad, out_channels, pool,
                                                        backend)
        return y
    y = torch.ops.pgcnn_triton.group_conv2d(x, bank, bias, kernel_size, pad, backend)
    return y.reshape(b, out_channels, n_out, y.shape[-2], y.shape[-1])


__all__ = ["conv_dtype", "dense_kernel", "group_conv2d", "packed_kernel", "resolve_padding", "triton_available"]
