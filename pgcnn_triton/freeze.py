"""Frozen inference: precompute every kernel bank once, drop the kernel nets.

At evaluation with the ``deterministic`` mode the group elements of every layer are fixed (offset
u = 0.5, gates open iff their keep probability > 0.5), so each conv's tap-packed bank is a constant.
:func:`freeze` evaluates it once per layer and returns a copy of the model whose convs are
:class:`FrozenConv` modules holding the bank as a buffer: a forward is the group convolutions and the
norms/pools only, with no kernel net, no sampler and no coordinate maths.

    frozen = pgcnn_triton.freeze(model, dtype=torch.bfloat16)   # or model.freeze(...)
    torch.save(frozen.state_dict(), "frozen.pt")
    exported = torch.export.export(frozen, (x,))

Per-sample element sets (``per_batch_element=True``) are identical in deterministic evaluation, so a
frozen layer holds one shared bank (S = 1) whatever the batch size.

A static-shape-mode layer is frozen on its valid slots only: its masks are fixed in deterministic
evaluation, so the frozen bank and elements are exactly the dynamic layer's, and ``freeze`` gives the
same frozen model (state_dict and outputs) for either shape mode.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .kernels import group_conv2d
from .nn.conv import GroupConv, LiftingConv, PointwiseGroupConv, _KernelConv, check_dtype
from .sampling import ElementSampler


class FrozenConv(nn.Module):
    """A lifting, group or pointwise conv with a precomputed bank; same call signature as the layer
    it replaces, and it returns ``(features, elements)`` with the frozen output elements.

    Buffers: ``bank`` ``[1, C_out·N_out, T, C_in·N_in]``, ``bias`` ``[C_out]`` (if the layer had one),
    ``elements`` (output elements). The bank runs in :func:`~pgcnn_triton.kernels.conv_dtype` of the
    input (cast if it was frozen in another dtype, e.g. bf16 banks given fp32 input). Extra arguments
    (elements, masks) are ignored: a frozen layer holds only valid slots.

    Input dtype: as the unfrozen layer, the input must have the layer's dtype (that of the model it
    was frozen from, and of the norms around it; it follows ``.to(dtype)``) unless autocast is on for
    its device; a bf16 ``dtype`` at freeze time changes only how the bank is stored.
    """

    def __init__(self, layer: _KernelConv, bank, elements, lifting: bool):
        super().__init__()
        self.kind = type(layer).__name__
        self.lifting = lifting
        self.in_channels, self.out_channels = layer.in_channels, layer.out_channels
        self.kernel_size, self.padding = layer.kernel_size, layer.padding
        self.register_buffer("bank", bank.detach().clone())
        bias = None if layer.bias is None else layer.bias.detach().clone()
        self.register_buffer("bias", bias)
        self.register_buffer("elements", elements.detach().clone())
        # an empty tensor whose dtype follows .to(): the dtype the input must have (not saved)
        self.register_buffer("dtype_reference", torch.empty(0, dtype=layer.dtype, device=bank.device),
                             persistent=False)

    @property
    def dtype(self) -> torch.dtype:
        return self.dtype_reference.dtype

    def shared_bank(self) -> torch.Tensor:
        """The bank ``[C_out·N_out, T, C_in·N_in]`` in the frozen dtype: the one set of elements every
        sample shares (a frozen conv never holds per-sample banks)."""
        bank = self.bank.to(self.dtype)
        if bank.dim() == 4:
            if bank.shape[0] != 1:
                raise ValueError(f"a frozen conv holds one shared bank, got {bank.shape[0]} sample banks")
            bank = bank[0]
        return bank

    def forward(self, x, *elements_and_masks):
        check_dtype(x, self.dtype, f"FrozenConv ({self.kind})")
        x5 = x[:, :, None] if self.lifting else x
        y = group_conv2d(x5, self.bank, self.kernel_size, self.out_channels, self.bias, self.padding)
        return y, self.elements

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing, unexpected, errors):
        # dynamic shape mode: the element count (and so the bank's shape) follows the learned θ, so a
        # frozen skeleton built from a fresh model takes the saved shapes
        for name in ("bank", "elements", "bias"):
            key = prefix + name
            current = getattr(self, name)
            if key in state_dict and current is not None and state_dict[key].shape != current.shape:
                setattr(self, name, torch.empty_like(state_dict[key], device=current.device))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing, unexpected, errors)

    def extra_repr(self):
        return (f"{self.kind}: {self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"bank={tuple(self.bank.shape)} {self.bank.dtype}, padding={self.padding!r}")


def _probe_inputs(model: nn.Module, example_input):
    """Run one deterministic eval forward and record every conv layer's input elements."""
    seen: dict[str, tuple] = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, _KernelConv):
            def hook(mod, args, name=name):
                seen[name] = args[1:]  # input elements (group conv), or (elements_in, elements_out)
            hooks.append(module.register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            model(example_input)
    finally:
        for h in hooks:
            h.remove()
    return seen


def _valid(elements, mask):
    """The valid slots of ``elements`` (all if ``mask`` is None): a host-side selection, once."""
    if elements is None or mask is None:
        return elements
    return elements[:, mask[0].nonzero().flatten()]


def _default_example(model: nn.Module, device):
    lift = getattr(model, "lift", None)
    if not isinstance(lift, LiftingConv):
        raise ValueError("freeze needs example_input for a model without a LiftingConv named 'lift'")
    return torch.randn(1, lift.in_channels, 32, 32, device=device)


def freeze(model: nn.Module, dtype: torch.dtype | None = None, example_input: torch.Tensor | None = None) -> nn.Module:
    """A frozen copy of ``model`` for inference, with the same outputs as ``model.eval()`` in the
    ``deterministic`` evaluation mode (the model itself is not changed).

    Args:
        model: a :class:`~pgcnn_triton.PartialGCNN`, :class:`~pgcnn_triton.GCNN` or any module whose
            convs are pgcnn_triton layers.
        dtype: the banks' dtype (default: the kernel nets' dtype). Use ``torch.bfloat16`` for bf16
            inference under ``torch.autocast`` (the banks are then not re-cast at each call).
        example_input: one input the model accepts, used once to trace the element chain (default:
            a ``[1, C_in, 32, 32]`` random image; pass one for models that need another size).

    Returns:
        A module of the same class, in eval mode, whose convs are :class:`FrozenConv` (buffers
        only); it saves/loads with ``state_dict`` (load into ``freeze(fresh_model)``) and works with
        ``torch.export.export`` and ``torch.compile``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating torch.dtype or None, got {dtype!r}")
    frozen = deterministic_copy(model)
    with torch.no_grad():
        for name, (layer, g_out, g_in) in layer_elements(frozen, example_input).items():
            bank = layer.make_bank(g_out, g_in, dtype or layer.kernel_net.output.weight.dtype)
            frozen.set_submodule(name, FrozenConv(layer, bank, g_out, isinstance(layer, LiftingConv)))
        fix_evaluation_elements(frozen)
    frozen.frozen = True
    return frozen


def fix_evaluation_elements(model: nn.Module) -> None:
    """Fix the elements of the modules besides the convs that sample them (e.g. an Augerino's augmentation,
    through its ``freeze_elements()``) at their deterministic evaluation elements."""
    for module in model.modules():
        fix = getattr(module, "freeze_elements", None)
        if callable(fix):
            fix()


def deterministic_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` in eval mode with every sampler in the ``deterministic`` mode."""
    copied = copy.deepcopy(model).eval()
    if hasattr(copied, "set_eval_mode"):
        copied.set_eval_mode("deterministic")
    for sampler in copied.modules():  # any module, not only a GroupModel: the banks need fixed elements
        if isinstance(sampler, ElementSampler):
            sampler.eval_mode = "deterministic"
    return copied


def layer_elements(model: nn.Module, example_input: torch.Tensor | None = None) -> dict[str, tuple]:
    """``{name: (layer, g_out, g_in)}`` for every conv layer of a :func:`deterministic_copy`: the
    fixed output and input elements (valid slots only, one shared set; ``g_in`` None for a lifting
    conv) that the layer's bank is made of. ``example_input``: as :func:`freeze`."""
    convs = {name: m for name, m in model.named_modules() if isinstance(m, _KernelConv)}
    if not convs:
        raise ValueError("model has no pgcnn_triton conv layers to freeze")
    first = next(iter(convs.values()))
    device = first.kernel_net.output.weight.device
    if example_input is None:
        example_input = _default_example(model, device)
    elif not isinstance(example_input, torch.Tensor):
        raise TypeError(f"example_input must be a torch.Tensor, got {type(example_input).__name__}")
    inputs = _probe_inputs(model, example_input[:1])
    missing = sorted(set(convs) - set(inputs))
    if missing:
        raise ValueError(f"the example forward did not reach the conv layers {missing}")
    out = {}
    with torch.no_grad():
        for name, layer in convs.items():
            # (the gate of mirror_gradient="features" has the value 1: nothing to freeze)
            args = inputs[name]
            if isinstance(layer, PointwiseGroupConv):
                g_in, g_out, mask_in, mask_out = (*args, None, None)[:4]
            elif isinstance(layer, GroupConv):
                g_in, mask_in = (*args, None)[:2]
                g_out, mask_out, _ = layer.output_elements(1, g_in, device, mask_in)
            else:
                g_in = mask_in = None
                g_out, mask_out, _ = layer.output_elements(1, None, device)
            g_in = _valid(None if g_in is None else g_in[:1], mask_in)
            out[name] = (layer, _valid(g_out[:1], mask_out), g_in)
    return out


__all__ = ["FrozenConv", "deterministic_copy", "fix_evaluation_elements", "freeze", "layer_elements"]
