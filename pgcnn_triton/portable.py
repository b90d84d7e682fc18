"""Portable inference: a frozen Partial G-CNN as a plain torch program, with no pgcnn_triton op.

In deterministic evaluation every bank is a constant, so a frozen model is an ordinary CNN in disguise:
each group conv is a few standard ``conv2d`` between channel reshapes, the same convolutions the
library's CPU lowering runs (the tap disk as dense, possibly dilated, pieces where that pays, else
one k×k conv with zeros outside the disk: :mod:`pgcnn_triton.portable_convs`); the group pools are
``amax`` / ``mean`` reductions; the norms run on their frozen statistics. :func:`portable` builds
that program:

1. replace every conv layer by a :class:`~pgcnn_triton.portable_convs.PackedGroupConv` (weights
   from the frozen bank) or, with ``weights="kernel-net"``, a
   :class:`~pgcnn_triton.portable_convs.KernelNetGroupConv` (the kernel net and its fixed input
   points, the bank computed in the graph: the small ONNX files of :mod:`pgcnn_triton.deploy`);
2. ``torch.export`` the copy with a dynamic batch axis, the pooling custom ops traced as ATen
   reductions (:class:`PlainPools`).

:class:`DenseGroupConv` (every conv one dense k×k ``nn.Conv2d``) and :func:`dense_copy` remain for
comparison.

The result is a ``torch.fx.GraphModule`` of ATen ops only (any ``GroupModel``, presets or your own:
nothing model-specific is assumed). :func:`export_program` returns the ``ExportedProgram`` itself,
which ``torch.export.save`` writes as a ``.pt2`` that loads and runs where pgcnn_triton is not
installed; :mod:`pgcnn_triton.deploy` writes it, or an ONNX file, from a model or a checkpoint.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.export import Dim
from torch.overrides import TorchFunctionMode

from .freeze import FrozenConv, deterministic_copy, fix_evaluation_elements, freeze, layer_elements
from .kernels import dense_kernel, resolve_padding
from .nn.conv import LiftingConv
from .portable_convs import KernelNetGroupConv, PackedGroupConv
from .winograd import CONV_ALGORITHMS

#: ``weights`` of :func:`export_program`: the frozen banks cut into the conv weights (``"packed"``),
#: or the kernel nets and the graph that evaluates them (``"kernel-net"``).
WEIGHTS = ("packed", "kernel-net")

#: The largest batch the exported programs accept (the batch axis is dynamic from 1 to this).
MAX_BATCH = 1 << 16


class DenseGroupConv(nn.Module):
    """A frozen conv as one dense ``nn.Conv2d`` over ``[B, C_in·N_in, H, W]`` (zeros outside the disk).

    Same call signature as :class:`~pgcnn_triton.FrozenConv`: ``layer(x, *ignored)`` returns
    ``([B, C_out, N_out, H', W'], elements)``. The bank rows are ordered ``o·N_out + n`` and its columns
    ``c·N_in + g``, which are the memory orders of the output and input feature maps, so the channel
    reshapes are views.
    """

    def __init__(self, frozen: FrozenConv):
        super().__init__()
        bank = frozen.shared_bank()
        rows, _, cols = bank.shape
        # the attributes models read off their layers (input contract, spatial stages)
        self.kind, self.lifting = frozen.kind, frozen.lifting
        self.in_channels, self.out_channels = frozen.in_channels, frozen.out_channels
        self.kernel_size, self.padding = frozen.kernel_size, frozen.padding
        self.out_elements = rows // frozen.out_channels
        k = frozen.kernel_size
        self.conv = nn.Conv2d(cols, rows, k, padding=resolve_padding(frozen.padding, k),
                              bias=frozen.bias is not None, dtype=bank.dtype, device=bank.device)
        with torch.no_grad():
            self.conv.weight.copy_(dense_kernel(bank, k))
            if frozen.bias is not None:
                # one bias per output channel, shared by its N_out rows
                self.conv.bias.copy_(frozen.bias.to(bank.dtype).repeat_interleave(self.out_elements))
        self.conv.requires_grad_(False)
        self.register_buffer("elements", frozen.elements.detach().clone())

    def forward(self, x, *elements_and_masks):
        x4 = x if self.lifting else x.flatten(1, 2)
        y = self.conv(x4)
        return y.unflatten(1, (self.out_channels, self.out_elements)), self.elements

    def extra_repr(self):
        return f"{self.kind}: {self.in_channels}, {self.out_channels}, N_out={self.out_elements}"


# the pooling ops as ATen reductions; the arg-max outputs (for the backward only) are left out
def _group_pool_max(x, backend):
    return x.amax(2), None


def _group_pool_mean(x, backend):
    return x.mean(2)


def _global_max_pool(x, backend):
    return x.flatten(2).amax(2), None


class PlainPools(TorchFunctionMode):
    """While active, the pooling custom ops (``torch.ops.pgcnn_triton.group_pool_max``, ``group_pool_mean``,
    ``global_max_pool``) run as ATen reductions, so a trace of a frozen model records ``amax`` / ``mean``.

    Inference only: their arg-max outputs are ``None`` (the library reads them only in the backward).
    A mode, rather than decomposing the exported graph after the fact, keeps the export at one trace
    (the decomposition pass re-traced the whole program and cost twice the export)."""

    def __init__(self):
        super().__init__()
        ops = torch.ops.pgcnn_triton
        self.table = {ops.group_pool_max.default: _group_pool_max, ops.group_pool_mean.default: _group_pool_mean,
                      ops.global_max_pool.default: _global_max_pool}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        impl = self.table.get(func, func)
        return impl(*args, **(kwargs or {}))


def custom_ops(program) -> list[str]:
    """The ``pgcnn_triton`` ops left in an ``ExportedProgram`` or ``GraphModule`` graph (names)."""
    graph = program.graph
    return sorted({str(n.target) for n in graph.nodes if n.op == "call_function"
                   and str(n.target).startswith("pgcnn_triton.")})


def dense_copy(model: nn.Module, example_input: torch.Tensor | None = None) -> nn.Module:
    """The frozen model (``model`` itself if already frozen, else :func:`~pgcnn_triton.freeze`'d)
    with every :class:`~pgcnn_triton.FrozenConv` replaced by a :class:`DenseGroupConv`, in eval mode."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not any(isinstance(m, FrozenConv) for m in model.modules()):
        model = freeze(model, example_input=example_input)
    else:
        model = copy.deepcopy(model)
    for name, module in list(model.named_modules()):
        if isinstance(module, FrozenConv):
            model.set_submodule(name, DenseGroupConv(module))
    return model.eval().requires_grad_(False)  # an inference program: outputs need no autograd graph


def compact_copy(model: nn.Module, example_input: torch.Tensor | None = None, weights: str = "packed",
                 conv_algorithm: str = "direct") -> nn.Module:
    """A copy of ``model`` in deterministic eval whose conv layers run the library's CPU convs (in-disk
    taps only): :class:`~pgcnn_triton.portable_convs.PackedGroupConv` (``weights="packed"``, from the
    frozen banks) or :class:`~pgcnn_triton.portable_convs.KernelNetGroupConv` (``"kernel-net"``: the
    kernel nets and their fixed input points, a few kB per layer besides the nets' parameters). An
    already frozen model has no kernel nets left: it gets packed weights either way. ``conv_algorithm``:
    ``"direct"`` (every piece a ``conv2d``), ``"winograd"`` or ``"auto"`` (5×5 and 3×3 pieces as Winograd
    convolutions: :mod:`pgcnn_triton.winograd`)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {WEIGHTS}, got {weights!r}")
    if conv_algorithm not in CONV_ALGORITHMS:
        raise ValueError(f"conv_algorithm must be one of {CONV_ALGORITHMS}, got {conv_algorithm!r}")
    if weights == "kernel-net" and not any(isinstance(m, FrozenConv) for m in model.modules()):
        copied = deterministic_copy(model)
        for name, (layer, g_out, g_in) in layer_elements(copied, example_input).items():
            copied.set_submodule(name, KernelNetGroupConv(layer, g_out, g_in, isinstance(layer, LiftingConv),
                                                          conv_algorithm))
        with torch.no_grad():
            fix_evaluation_elements(copied)
    elif any(isinstance(m, FrozenConv) for m in model.modules()):
        copied = copy.deepcopy(model)
    else:
        copied = freeze(model, example_input=example_input)
    for name, module in list(copied.named_modules()):
        if isinstance(module, FrozenConv):
            copied.set_submodule(name, PackedGroupConv(module, conv_algorithm))
    return copied.eval().requires_grad_(False)


def example_for(model: nn.Module, example_input: torch.Tensor | None) -> torch.Tensor:
    """A batch of two inputs shaped as ``example_input`` (default ``[C_in, 32, 32]`` random images):
    export needs a batch other than 1 to keep the batch axis dynamic."""
    if example_input is None:
        channels = getattr(model, "input_channels", None) or getattr(model, "in_channels", None)
        if channels is None:
            raise ValueError("portable needs example_input for a model that does not state its input channels")
        device = next(iter(model.buffers()), torch.empty(0)).device
        return torch.randn(2, channels, 32, 32, device=device)
    if not isinstance(example_input, torch.Tensor) or example_input.dim() != 4:
        raise ValueError(f"example_input must be a [B, C, H, W] tensor, got "
                         f"{getattr(example_input, 'shape', type(example_input).__name__)}")
    return example_input[:1].expand(2, *example_input.shape[1:]).contiguous()


def export_program(model: nn.Module, example_input: torch.Tensor | None = None,
                   weights: str = "packed", conv_algorithm: str = "direct") -> torch.export.ExportedProgram:
    """The portable ``ExportedProgram`` of ``model``: ATen ops only, dynamic batch axis.

    Args:
        model: a pgcnn_triton model (frozen or not; it is not changed) or any module whose convs are
            pgcnn_triton layers.
        example_input: one input ``[B, C, H, W]``; H and W are fixed at its size (default: 32×32).
        weights: ``"packed"`` (default: the conv weights as constants, nothing computed but the
            convolutions) or ``"kernel-net"`` (the kernel nets and the graph that evaluates them:
            a program the size of the model's parameters, for a runtime that folds constant
            subgraphs, as ONNX Runtime does; see :func:`compact_copy`).
        conv_algorithm: ``"direct"`` (default: every piece a ``conv2d``), ``"winograd"`` (every 3×3
            and 5×5 piece as a Winograd convolution) or ``"auto"`` (those where it pays in ONNX
            Runtime: :func:`pgcnn_triton.winograd.pays`).

    Returns:
        An ``ExportedProgram`` computing ``model.eval()`` in the deterministic mode, for any batch
        size from 1 to :data:`MAX_BATCH`; ``torch.export.save`` writes it as a ``.pt2``.
    """
    if example_input is not None:
        example_for(model, example_input)  # its checks, before the freeze runs the model on it
    dense = compact_copy(model, example_input, weights, conv_algorithm)
    x = example_for(dense, example_input)
    with torch.no_grad(), PlainPools():
        program = torch.export.export(dense, (x,), dynamic_shapes=({0: Dim("batch", min=1, max=MAX_BATCH)},))
    left = custom_ops(program)
    if left:
        raise ValueError(f"the model's graph keeps pgcnn_triton ops with no portable form: {left} "
                         f"(call the group convs through pgcnn_triton layers, not the ops directly)")
    return program


def portable(model: nn.Module, example_input: torch.Tensor | None = None) -> torch.fx.GraphModule:
    """A portable copy of ``model`` for inference: a ``torch.fx.GraphModule`` of standard torch ops
    (the library's CPU ``conv2d`` pieces with the banks' in-disk taps, reshapes, ``amax`` / ``mean``, norms with frozen
    statistics, activations, ``linear``), equal to ``model.eval()`` in the deterministic mode.

    ``torch.export.export`` of it has no pgcnn_triton op, and the saved program runs without the
    library. Arguments as :func:`export_program`; input H and W are fixed at the example's size, the
    batch is free.
    """
    return export_program(model, example_input).module()


__all__ = ["MAX_BATCH", "WEIGHTS", "DenseGroupConv", "PlainPools", "compact_copy", "custom_ops", "dense_copy",
           "example_for", "export_program", "portable"]
