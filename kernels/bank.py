"""Kernel bank op: the kernel net's last linear layer, laid out as the tap-packed conv bank.

bank[s, o·N_out + n, t, c·N_in + g] = Σ_h hidden[s, n, g, t, h] · weight[o·C_in + c, h] + bias[o·C_in + c]

* ``hidden``: ``[S, N_out, N_in, T, H]``, the kernel net's last hidden features at every kernel-net
  input point (output element n, input element g, in-disk tap t);
* ``weight``: ``[C_out·C_in, H]`` (C_out-major, as the kernel net emits it), ``bias``: ``[C_out·C_in]``;
* result: ``[S, C_out·N_out, T, C_in·N_in]``. Output channels are ordered ``o·N_out + n`` so the conv
  output is already ``[B, C_out, N_out, H, W]``; input channels ``c·N_in + g`` match ``[B, C_in, N_in, H, W]``.

Only in-disk taps exist in this layout, so there is no mask to apply.

The op is registered as ``torch.ops.pgcnn_triton.kernel_bank`` (a ``torch.library.custom_op`` with a
fake kernel and autograd through ``pgcnn_triton::kernel_bank_backward``). Its body runs the Triton
kernels (:mod:`.bank_triton`) or the pure-torch reference (:mod:`.bank_reference`), chosen by
:func:`._backend.resolve`; both accumulate in fp32 (fp64 for fp64 inputs).
"""

import torch

from . import _backend
from ._backend import shape_key
from ._launch import check_dtype
from .bank_reference import bank_backward_reference, bank_forward_reference


def kernel_bank(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    out_channels: int,
    dtype: torch.dtype | None = None,
    backend: str | None = None,
) -> torch.Tensor:
    """Build the tap-packed kernel bank (see the module docstring for the layout).

    Args:
        hidden: ``[S, N_out, N_in, T, H]`` kernel-net features. weight: ``[C_out·C_in, H]``.
        bias: ``[C_out·C_in]`` or ``None``. out_channels: C_out.
        dtype: dtype of the bank (default ``hidden.dtype``); the sum is always done in fp32 or fp64.
        backend: ``"triton"``, ``"torch"`` or ``"auto"``; ``None`` defers to
            :func:`~pgcnn_triton.kernels.use_backend` / ``PGCNN_BACKEND``.
    """
    for name, t in (("hidden", hidden), ("weight", weight), ("bias", bias)):
        if t is None and name == "bias":
            continue
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        check_dtype(t, name)
        if t.device != hidden.device:
            raise ValueError(f"{name} is on {t.device} but hidden is on {hidden.device}")
    if isinstance(out_channels, bool) or not isinstance(out_channels, int):
        raise TypeError(f"out_channels must be a positive int, got {type(out_channels).__name__}")
    if out_channels < 1:
        raise ValueError(f"out_channels must be a positive int, got {out_channels}")
    if dtype is not None and (not isinstance(dtype, torch.dtype) or not dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating-point torch.dtype or None, got {dtype!r}")
    if hidden.dim() != 5:
        raise ValueError(f"hidden must have shape [S, N_out, N_in, T, H], got {tuple(hidden.shape)}")
    if weight.dim() != 2 or weight.shape[1] != hidden.shape[-1]:
        raise ValueError(
            f"weight must have shape [C_out*C_in, {hidden.shape[-1]}] to match hidden, got {tuple(weight.shape)}"
        )
    if weight.shape[0] % out_channels:
        raise ValueError(f"weight rows ({weight.shape[0]}) must be a multiple of out_channels ({out_channels})")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"bias must have shape [{weight.shape[0]}] (one per weight row), got {tuple(bias.shape)}")
    # Resolve argument / use_backend() / PGCNN_BACKEND now, so the backward (run after a use_backend
    # block may have closed) uses the same implementation as the forward.
    name = _backend.requested(backend)
    return torch.ops.pgcnn_triton.kernel_bank(hidden, weight, bias, out_channels, dtype, name)


def _run(backend: str, device: torch.device, key, run_triton, run_torch):
    # "auto" on CUDA means Triton (this op has no cuDNN rival, nothing to time); the launch helpers of
    # _backend.run add the capture warm-up rule and the fallback to torch when a launch fails
    return _backend.run(backend or None, device, key, {"triton": run_triton, "torch": run_torch}, auto="triton")


@torch.library.custom_op(
    "pgcnn_triton::kernel_bank", mutates_args=(),
    schema="(Tensor hidden, Tensor weight, Tensor? bias, int out_channels, ScalarType? dtype, str backend) -> Tensor",
)
def _kernel_bank_op(hidden, weight, bias, out_channels, dtype, backend):
    def run_triton():
        # imported late: triton may be absent on CPU-only installs
        from .bank_triton import bank_forward

        return bank_forward(hidden, weight, bias, out_channels, dtype)

    return _run(backend, hidden.device, lambda: shape_key("kernel_bank", hidden, weight, bias) + (out_channels, dtype),
                run_triton, lambda: bank_forward_reference(hidden, weight, bias, out_channels, dtype))


@_kernel_bank_op.register_fake
def _(hidden, weight, bias, out_channels, dtype, backend):
    s, n_out, n_in, t, _ = hidden.shape
    c_in = weight.shape[0] // out_channels
    return hidden.new_empty((s, out_channels * n_out, t, c_in * n_in), dtype=dtype or hidden.dtype)


@torch.library.custom_op(
    "pgcnn_triton::kernel_bank_backward", mutates_args=(),
    schema="(Tensor grad, Tensor hidden, Tensor weight, bool has_bias, int out_channels, str backend)"
    " -> (Tensor, Tensor, Tensor)",
)
def _kernel_bank_backward_op(grad, hidden, weight, has_bias, out_channels, backend):
    """(grad_hidden, grad_weight, grad_bias); grad_bias is in the compute dtype, empty without bias."""
    def run_triton():
        from .bank_triton import bank_backward

        return bank_backward(grad, hidden, weight, has_bias, out_channels)

    gh, gw, gb = _run(backend, hidden.device,
                      lambda: shape_key("kernel_bank_backward", grad, hidden, weight) + (has_bias, out_channels),
                      run_triton, lambda: bank_backward_reference(grad, hidden, weight, has_bias, out_channels))
    return gh, gw, gb if gb is not None else weight.new_empty(0)


@_kernel_bank_backward_op.register_fake
def _(grad, hidden, weight, has_bias, out_channels, backend):
    ct = torch.float64 if torch.float64 in (grad.dtype, hidden.dtype, weight.dtype) else torch.float32
    gb = weight.new_empty(weight.shape[0], dtype=ct) if has_bias else weight.new_empty(0)
    return torch.empty_like(hidden), torch.empty_like(weight), gb


def _setup_context(ctx, inputs, output):
    hidden, weight, bias, out_channels, _, backend = inputs
    ctx.save_for_backward(hidden, weight)
    ctx.bias_dtype = None if bias is None else bias.dtype
    ctx.out_channels = out_channels
    ctx.backend = backend


def _backward(ctx, grad):
    hidden, weight = ctx.saved_tensors
    has_bias = ctx.bias_dtype is not None
    gh, gw, gb = torch.ops.pgcnn_triton.kernel_bank_backward(grad, hidden, weight, has_bias, ctx.out_channels,
                                                             ctx.backend)
    return gh, gw, (gb.to(ctx.bias_dtype) if has_bias else None), None, None, None


_kernel_bank_op.register_autograd(_backward, setup_context=_setup_context)
