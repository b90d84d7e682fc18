"""Pooling over the group axis of ``[B, C, G, H, W]`` features, as registered custom ops.

Public: :func:`group_pool` (max or mean over G) and :func:`global_max_pool` (max over G, H, W).
Underneath, ``torch.ops.pgcnn_triton``:

* ``group_pool_max(x, backend) -> (values, argmax)``, ``group_pool_mean(x, backend) -> values``,
  ``global_max_pool(x, backend) -> (values, argmax)``, each with ``register_fake`` and ``register_autograd``;
* their backward ops ``group_pool_max_backward``, ``group_pool_mean_backward``, ``global_max_pool_backward``.

Each op body picks the Triton kernels (:mod:`.group_pool_triton`) or the torch reference
(:mod:`.group_pool_reference`) with :func:`._backend.resolve`; on CUDA ``auto`` means Triton (a one-pass
reduction at the HBM floor, nothing to time). ``backend`` travels into the ops as a string, ``""`` = not given.

Max ties: the whole gradient goes to the **first** maximal element (see :mod:`.group_pool_reference`).
"""

from __future__ import annotations

import torch

from . import group_pool_reference as reference
from ._backend import requested, run, shape_key

_MODES = ("max", "mean")


def _call(backend: str, name: str, *args):
    """``name(*args)`` of the Triton kernels or of the torch reference, as ``backend`` says (``auto`` on CUDA:
    Triton, a one-pass reduction with nothing to time; :func:`._backend.run` adds the capture warm-up rule
    and the fallback to torch when a launch fails)."""
    tensors = [a for a in args if isinstance(a, torch.Tensor)]

    def run_triton():
        # imported lazily: importing triton is slow, and it may be unavailable where only torch runs
        from . import group_pool_triton

        return getattr(group_pool_triton, name)(*args)

    def key():
        return shape_key(name, *tensors, extra=tuple(a for a in args if not isinstance(a, torch.Tensor)))

    return run(backend or None, tensors[0].device, key,
               {"triton": run_triton, "torch": lambda: getattr(reference, name)(*args)}, auto="triton")


# ---------------------------------------------------------------------------------------------- forward ops


@torch.library.custom_op("pgcnn_triton::group_pool_max", mutates_args=())
def _group_pool_max(x: torch.Tensor, backend: str) -> tuple[torch.Tensor, torch.Tensor]:
    return _call(backend, "group_max_forward", x)


@torch.library.custom_op("pgcnn_triton::group_pool_mean", mutates_args=())
def _group_pool_mean(x: torch.Tensor, backend: str) -> torch.Tensor:
    return _call(backend, "group_mean_forward", x)


@torch.library.custom_op("pgcnn_triton::global_max_pool", mutates_args=())
def _global_max_pool(x: torch.Tensor, backend: str) -> tuple[torch.Tensor, torch.Tensor]:
    return _call(backend, "global_max_forward", x)


@_group_pool_max.register_fake
def _(x, backend):
    B, C, _, H, W = x.shape
    return x.new_empty((B, C, H, W)), x.new_empty((B, C, H, W), dtype=torch.int32)


@_group_pool_mean.register_fake
def _(x, backend):
    B, C, _, H, W = x.shape
    return x.new_empty((B, C, H, W))


@_global_max_pool.register_fake
def _(x, backend):
    B, C = x.shape[:2]
    return x.new_empty((B, C)), x.new_empty((B, C), dtype=torch.int32)


# ---------------------------------------------------------------------------------------------- backward ops


@torch.library.custom_op("pgcnn_triton::group_pool_max_backward", mutates_args=())
def _group_pool_max_backward(grad: torch.Tensor, argmax: torch.Tensor, G: int, backend: str) -> torch.Tensor:
    return _call(backend, "group_max_backward", grad, argmax, G)


@torch.library.custom_op("pgcnn_triton::group_pool_mean_backward", mutates_args=())
def _group_pool_mean_backward(grad: torch.Tensor, G: int, backend: str) -> torch.Tensor:
    return _call(backend, "group_mean_backward", grad, G)


@torch.library.custom_op("pgcnn_triton::global_max_pool_backward", mutates_args=())
def _global_max_pool_backward(grad: torch.Tensor, argmax: torch.Tensor, G: int, H: int, W: int,
                              backend: str) -> torch.Tensor:
    return _call(backend, "global_max_backward", grad, argmax, G, H, W)


@_group_pool_max_backward.register_fake
def _(grad, argmax, G, backend):
    B, C, H, W = grad.shape
    return grad.new_empty((B, C, G, H, W))


@_group_pool_mean_backward.register_fake
def _(grad, G, backend):
    B, C, H, W = grad.shape
    return grad.new_empty((B, C, G, H, W))


@_global_max_pool_backward.register_fake
def _(grad, argmax, G, H, W, backend):
    B, C = grad.shape
    return grad.new_empty((B, C, G, H, W))


# ---------------------------------------------------------------------------------------------- autograd


def _setup_max(ctx, inputs, output):
    x, backend = inputs
    ctx.mark_non_differentiable(output[1])  # the arg-max is an index
    ctx.save_for_backward(output[1])
    ctx.shape, ctx.backend = x.shape, backend


def _group_max_grad(ctx, grad, _grad_argmax):
    (argmax,) = ctx.saved_tensors
    return _group_pool_max_backward(grad, argmax, ctx.shape[2], ctx.backend), None


def _global_max_grad(ctx, grad, _grad_argmax):
    (argmax,) = ctx.saved_tensors
    _, _, G, H, W = ctx.shape
    return _global_max_pool_backward(grad, argmax, G, H, W, ctx.backend), None


def _setup_mean(ctx, inputs, output):
    x, backend = inputs
    ctx.G, ctx.backend = x.shape[2], backend


def _group_mean_grad(ctx, grad):
    return _group_pool_mean_backward(grad, ctx.G, ctx.backend), None


_group_pool_max.register_autograd(_group_max_grad, setup_context=_setup_max)
_group_pool_mean.register_autograd(_group_mean_grad, setup_context=_setup_mean)
_global_max_pool.register_autograd(_global_max_grad, setup_context=_setup_max)


# ---------------------------------------------------------------------------------------------- public API


def _check_input(x: torch.Tensor, reduced: str, dims: tuple[int, ...]) -> None:
    if x.dim() != 5:
        raise ValueError(f"x must have shape [B, C, G, H, W], got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got {x.dtype}")
    # A max over nothing has no value and no arg-max (torch.amax raises too).
    if any(x.shape[d] == 0 for d in dims):
        raise ValueError(f"cannot pool over an empty {reduced} axis: x has shape {tuple(x.shape)}")


def group_pool(x: torch.Tensor, mode: str = "max", backend: str | None = None) -> torch.Tensor:
    """Max or mean over the group axis: ``[B, C, G, H, W]`` → ``[B, C, H, W]``.

    ``backend``: ``"triton"``, ``"torch"``, ``"auto"`` or ``None`` (context / ``PGCNN_BACKEND`` / auto; see
    :mod:`._backend`). For max, the gradient goes entirely to the first maximal group element.
    """
    _check_input(x, "G", (2,))
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    # fixed now, so the backward runs where the forward ran even after a use_backend block ends
    name = requested(backend)
    if mode == "max":
        return _group_pool_max(x, name)[0]
    return _group_pool_mean(x, name)


def global_max_pool(x: torch.Tensor, backend: str | None = None) -> torch.Tensor:
    """Max over (G, H, W): ``[B, C, G, H, W]`` → ``[B, C]`` (the invariant head of the CKResNet).

    The gradient goes entirely to the first maximal position in ``g·H·W + h·W + w`` order.
    """
    _check_input(x, "G, H, W", (2, 3, 4))
    return _global_max_pool(x, requested(backend))[0]
