"""Lifting, group and pointwise group convolutions with continuous (kernel-net) kernels.

Each layer's forward, in order: the sampler gives the output elements; the group turns them (and the
input elements) into kernel-net coordinates at the in-disk taps; the kernel net maps coordinates to
hidden features; the bank op applies its last layer in the tap-packed layout; the group-conv op
convolves. Layers return ``(features, elements)`` with features ``[B, C, G, H, W]`` and elements
``[S, G]`` (SE2) or ``[S, G, 2]`` (E2), S ∈ {1, B}. Nothing derived from a forward is kept on the module.

Static shape mode (``shape_mode="static"``): a layer returns ``(features, elements, mask)``, where
``mask`` is a bool ``[S, G]`` slot mask (S ∈ {1, B}) or ``None`` (every slot valid), and takes the
input's mask as its last argument (``None``: all valid). A conv sums only over valid input slots
(their bank columns are zero, so masked inputs contribute exactly nothing whatever they hold) and its
masked outputs are exactly zero (bank rows zero, bias masked), so the kernel-norm regulariser sees
the bank of the valid slots only: the same numbers as the dynamic layer's smaller bank.
"""

from __future__ import annotations

import torch
from torch import nn

from .._checks import constructor_arguments
from ..kernelnets import make_kernel_net, min_kernel_layers
from ..kernels import check_kernel_size, check_taps, conv_dtype, group_conv2d, kernel_bank, resolve_padding, taps_of
from ..sampling import FullGroupSampler, PartialSampler, make_config
from .kernel_norms import record_kernel


def _positive_int(value, argument):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{argument} must be a positive int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{argument} must be a positive int, got {value}")
    return value


def check_features(x, rank: int, channels: int, argument: str = "x") -> None:
    """Raise a clear error unless ``x`` is a floating tensor of the given rank and channel count."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{argument} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{argument} must be a floating-point tensor, got dtype {x.dtype}")
    if x.dim() != rank:
        shape = "[B, C, H, W]" if rank == 4 else "[B, C, G, H, W]"
        raise ValueError(f"{argument} must have shape {shape} (rank {rank}), got rank {x.dim()} {tuple(x.shape)}")
    if x.shape[1] != channels:
        raise ValueError(f"{argument} has {x.shape[1]} channels, expected in_channels={channels}")


def check_dtype(x: torch.Tensor, dtype: torch.dtype, layer: str) -> None:
    """Raise a TypeError naming both dtypes unless ``x`` has the layer's ``dtype`` or autocast is on.

    As ``nn.Conv2d``: a layer does not cast its input (an fp16 / fp64 input to an fp32 layer would
    otherwise run the conv in the input's dtype and fail deeper, in a norm or the head). Under
    ``torch.autocast`` for ``x``'s device type the input may differ (the conv then runs in the
    autocast dtype, see :func:`~pgcnn_triton.kernels.conv_dtype`).
    """
    if x.dtype != dtype and not torch.is_autocast_enabled(x.device.type):
        raise TypeError(
            f"{layer} got input of dtype {x.dtype} but its parameters are {dtype}: layers do not cast their "
            f"input (as nn.Conv2d). Cast one of them (x.to({dtype}) or model.to({x.dtype})), or run under "
            f"torch.autocast"
        )


def slot_weights(mask: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor | None:
    """A ``[S, G]`` slot mask as a 0/1 multiplier ``[S, 1, G, 1, 1]`` of ``x``'s dtype (None stays None)."""
    if mask is None:
        return None
    return mask.to(x.dtype)[:, None, :, None, None]


def apply_gate(y: torch.Tensor, gate: torch.Tensor | None) -> torch.Tensor:
    """Multiply the outputs by a ``[S, G]`` slot multiplier (a mask or a straight-through gate), or not."""
    if gate is None:
        return y
    return y * gate.to(y.dtype)[:, None, :, None, None]


def mask_bank(bank: torch.Tensor, mask_out, mask_in, out_channels: int) -> torch.Tensor:
    """Zero the bank rows of masked output slots and the columns of masked input slots.

    Rows are ordered ``o·N_out + n`` and columns ``c·N_in + g`` (:func:`~pgcnn_triton.kernels.kernel_bank`),
    so a slot mask is tiled over the channels."""
    if mask_out is not None:
        rows = mask_out.to(bank.dtype).repeat(1, out_channels)
        bank = bank * rows[:, :, None, None]
    if mask_in is not None:
        cols = mask_in.to(bank.dtype).repeat(1, bank.shape[-1] // mask_in.shape[1])
        bank = bank * cols[:, None, None, :]
    return bank


def split_output(out: tuple) -> tuple:
    """``(features, elements, mask)`` of a layer's output in either shape mode (mask None in dynamic)."""
    if len(out) == 3:
        return out
    return out[0], out[1], None


class _KernelConv(nn.Module):
    """Shared machinery: channels, kernel net, tap layout, bias."""

    spatial_kernel = True  # the kernel net sees tap positions (False: the pointwise shortcut)

    def __init__(self, in_channels, out_channels, kernel_size, sampling, kernel_net, kernel_hidden,
                 kernel_layers, omega0, learn_omega0, padding, bias, coordinate_dim, taps="disk"):
        super().__init__()
        self.in_channels = _positive_int(in_channels, "in_channels")
        self.out_channels = _positive_int(out_channels, "out_channels")
        self.kernel_size = check_kernel_size(kernel_size)
        resolve_padding(padding, self.kernel_size)
        self.padding = padding
        self.taps = check_taps(taps)
        self.sampling = sampling
        self.group = sampling.group_obj
        # named as the conv's arguments (the kernel net would call them hidden / num_layers)
        _positive_int(kernel_hidden, "kernel_hidden")
        fewest = min_kernel_layers(kernel_net)
        if _positive_int(kernel_layers, "kernel_layers") < fewest:
            raise ValueError(f"kernel_layers must be >= {fewest} for a {kernel_net} kernel net, got {kernel_layers}")
        self.kernel_net = make_kernel_net(kernel_net, coordinate_dim, self.out_channels * self.in_channels,
                                          kernel_hidden, kernel_layers, omega0, learn_omega0)
        self.bias = nn.Parameter(torch.zeros(self.out_channels)) if bias else None
        # float64 tap positions, moved with the module (no host copy in forward)
        self.register_buffer("tap_points", taps_of(self.kernel_size, taps).points.clone(), persistent=False)

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        # the tap positions stay float64 whatever dtype the module is cast to (group maths in float64)
        self.tap_points = taps_of(self.kernel_size, self.taps).points.to(self.tap_points.device)
        return self

    @property
    def dtype(self) -> torch.dtype:
        """The layer's parameter dtype (its kernel net's), which the input must match outside autocast."""
        return self.kernel_net.output.weight.dtype

    def _check_input(self, x, rank):
        if isinstance(x, torch.Tensor) and x.device.type == "meta":
            raise ValueError(f"{type(self).__name__} got x on the meta device (a shape without data), which it "
                             f"cannot compute on: pass a cpu or cuda tensor")
        check_features(x, rank, self.in_channels)
        check_dtype(x, self.dtype, type(self).__name__)

    @property
    def static(self) -> bool:
        return self.sampling.shape_mode == "static"

    def _result(self, y, elements, mask):
        return (y, elements, mask) if self.static else (y, elements)

    def _check_mask(self, x, mask, argument="mask"):
        if mask is None:
            return
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            raise TypeError(f"{argument} must be None or a bool tensor [S, G], got "
                            f"{type(mask).__name__ if not isinstance(mask, torch.Tensor) else mask.dtype}")
        if mask.dim() != 2 or mask.shape[1] != x.shape[2] or mask.shape[0] not in (1, x.shape[0]):
            raise ValueError(f"{argument} must have shape [S, G] with S in (1, B={x.shape[0]}) and "
                             f"G={x.shape[2]}, got {tuple(mask.shape)}")

    def _check_elements(self, x, elements, argument="elements"):
        """``elements`` as float64 after checking them against ``x`` (any floating dtype is accepted)."""
        elements = self.group.as_elements(elements, argument)
        if elements.shape[1] != x.shape[2]:
            raise ValueError(
                f"x has {x.shape[2]} group elements on its axis 2 but {argument} lists {elements.shape[1]}"
            )
        if elements.shape[0] not in (1, x.shape[0]):
            raise ValueError(f"{argument} must hold 1 or B={x.shape[0]} sample sets, got {elements.shape[0]}")
        return elements

    def make_bank(self, g_out, g_in, dtype) -> torch.Tensor:
        """The tap-packed bank ``[S, C_out·N_out, T, C_in·N_in]`` for these elements, in ``dtype``."""
        points = self.tap_points if self.spatial_kernel else None
        reduce = self.sampling.estimator != "reference"  # the original's unreduced inverse (groups.py)
        coords = self.group.kernel_inputs(g_out, g_in, points, self.sampling.coordinate, reduce)
        # the kernel net stays in its parameters' dtype under autocast: a SIREN's sin(ω0·(Wx + b)) in bf16
        # has phase errors of ~ω0·|Wx|·2⁻⁸, and its small, cancelling gradients lost half their accuracy
        # (median relative error vs fp32 0.57 → 0.24 on mnist6-180-se2-partial); it is a small share
        # of the step. The bank is still written in the conv's dtype.
        with torch.autocast(coords.device.type, enabled=False):
            hidden = self.kernel_net.features(coords.to(self.kernel_net.output.weight.dtype))
        out = self.kernel_net.output
        return kernel_bank(hidden, out.weight, out.bias, self.out_channels, dtype=dtype)

    def _conv(self, x5, g_out, g_in, mask_out=None, mask_in=None, gate=None):
        # the bank is written straight in the conv's dtype (bf16 under autocast): no separate cast
        bank = mask_bank(self.make_bank(g_out, g_in, conv_dtype(x5)), mask_out, mask_in, self.out_channels)
        record_kernel(bank, self.bias)
        y = group_conv2d(x5, bank, self.kernel_size, self.out_channels, self.bias, self.padding)
        if self.bias is not None and mask_out is not None:
            y = apply_gate(y, mask_out)  # the bias is the only thing a masked (zero) bank row adds
        return apply_gate(y, gate)

    def extra_repr(self):
        taps = "" if self.taps == "disk" else f", taps={self.taps!r}"
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"group={self.group.name}, N={self.sampling.num_elements}, padding={self.padding!r}{taps}")


class LiftingConv(_KernelConv):
    """R² → G: lifts ``[B, C_in, H, W]`` images to ``[B, C_out, N, H', W']`` group features.

    The lifting layer always samples the full group (stratified, or the C_n / D_n grid); partial
    settings of ``sampling`` do not apply to it. Returns ``(features, elements)``, or in static
    shape mode ``(features, elements, None)`` (every slot valid).

    Args:
        in_channels, out_channels: channel counts.
        kernel_size: odd kernel size k; only the in-disk taps are used.
        sampling: a :class:`~pgcnn_triton.sampling.SamplingConfig`; or pass its fields as keyword
            arguments (``group="E2", num_elements=8, ...``).
        kernel_net: ``"SIREN"``, ``"MAGNet"``, ``"FourierNet"``, ``"GaborNet"``, ``"MLP"`` or
            ``"MLP(norm=…, activation=…)"`` (:func:`~pgcnn_triton.kernelnets.parse_kernel_net`);
            kernel_hidden, kernel_layers, omega0, learn_omega0 (SIREN only) configure it.
        padding: ``"same"``, ``"valid"`` or an int. bias: learnable ``[C_out]`` bias (init 0).
        taps: ``"disk"`` (default: the circular mask, docs/method.md#circular-mask) or ``"square"`` (all k² taps,
            what the original's mask keeps for the degenerate element of ``last_conv_T2``, docs/method.md#full-cifar-heads).
    """

    def __init__(self, in_channels, out_channels, kernel_size=7, *, sampling=None, kernel_net="SIREN",
                 kernel_hidden=32, kernel_layers=3, omega0=10.0, learn_omega0=False, padding="same",
                 bias=True, taps="disk", **sampling_options):
        config = make_config(sampling, sampling_options, type(self).__name__, constructor_arguments(type(self)))
        super().__init__(in_channels, out_channels, kernel_size, config, kernel_net, kernel_hidden,
                         kernel_layers, omega0, learn_omega0, padding, bias, coordinate_dim=2, taps=taps)
        self.sampler = FullGroupSampler(config.replace(partial=False))

    def forward(self, x):
        self._check_input(x, 4)
        g_out, mask, gate = self.output_elements(x.shape[0], None, x.device)
        return self._result(self._conv(x[:, :, None], g_out, None, mask, None, gate), g_out, mask)

    def output_elements(self, batch_size, elements, device, mask=None):
        """``(elements, mask, gate)`` of the output (the full group: mask and gate None)."""
        return self.sampler(batch_size, device)


class GroupConv(_KernelConv):
    """G → G: ``[B, C_in, N_in, H, W]`` with its elements → ``[B, C_out, N_out, H', W']``.

    Output elements: a learnable partial subset if ``sampling.partial``; a new full-group sample if
    ``sampling.per_layer`` (random method); otherwise the input elements. The kernel couples every
    (output, input) element pair through ``g_out⁻¹·g_in``. Arguments as :class:`LiftingConv`.
    Call as ``layer(x, elements)``; returns ``(features, elements)``. In static shape mode call as
    ``layer(x, elements, mask)`` (mask of the input slots, None: all valid); returns
    ``(features, elements, mask)``. ``elements`` may be any floating dtype (converted to float64, see
    :mod:`pgcnn_triton.groups`); ``x`` must have the layer's dtype outside autocast (:func:`check_dtype`).
    """

    def __init__(self, in_channels, out_channels, kernel_size=7, *, sampling=None, kernel_net="SIREN",
                 kernel_hidden=32, kernel_layers=3, omega0=10.0, learn_omega0=False, padding="same",
                 bias=True, taps="disk", **sampling_options):
        config = make_config(sampling, sampling_options, type(self).__name__, constructor_arguments(type(self)))
        dim = 2 + config.group_obj.coordinate_dim(config.coordinate)
        super().__init__(in_channels, out_channels, kernel_size, config, kernel_net, kernel_hidden,
                         kernel_layers, omega0, learn_omega0, padding, bias, coordinate_dim=dim, taps=taps)
        if config.partial:
            self.sampler = PartialSampler(config)
        elif config.per_layer and config.method == "random":
            self.sampler = FullGroupSampler(config)
        else:
            self.sampler = None

    def forward(self, x, elements, mask=None):
        self._check_input(x, 5)
        elements = self._check_elements(x, elements)
        self._check_mask(x, mask)
        g_out, mask_out, gate = self.output_elements(x.shape[0], elements, x.device, mask)
        y = self._conv(x, g_out, elements, mask_out, mask, gate)
        return self._result(y, g_out, mask_out)

    def output_elements(self, batch_size, elements, device, mask=None):
        """``(output elements, mask, gate)``: sampled (partial / per-layer), or the input ``elements``
        and ``mask``. The mask is a bool ``[1, G]`` slot mask in static shape mode (None: all valid);
        the gate a straight-through multiplier (``mirror_gradient="features"``) or None."""
        if self.sampler is None:
            return elements, mask, None
        return self.sampler(batch_size, device)


class PointwiseGroupConv(_KernelConv):
    """1×1 group conv (the residual shortcut): maps features on ``elements_in`` to ``elements_out``.

    The kernel depends only on ``g_out⁻¹·g_in``; no spatial extent, no bias, never samples.
    Call as ``layer(x, elements_in, elements_out)``; returns ``(features, elements_out)``. In static
    shape mode ``layer(x, elements_in, elements_out, mask_in, mask_out)`` returns
    ``(features, elements_out, mask_out)``.
    """

    spatial_kernel = False

    def __init__(self, in_channels, out_channels, *, sampling=None, kernel_net="SIREN", kernel_hidden=16,
                 kernel_layers=3, omega0=10.0, learn_omega0=False, **sampling_options):
        config = make_config(sampling, sampling_options, type(self).__name__, constructor_arguments(type(self)))
        dim = config.group_obj.coordinate_dim(config.coordinate)
        super().__init__(in_channels, out_channels, 1, config, kernel_net, kernel_hidden, kernel_layers,
                         omega0, learn_omega0, 0, False, coordinate_dim=dim)

    def forward(self, x, elements_in, elements_out, mask_in=None, mask_out=None):
        self._check_input(x, 5)
        elements_in = self._check_elements(x, elements_in, "elements_in")
        elements_out = self.group.as_elements(elements_out, "elements_out")
        self._check_mask(x, mask_in, "mask_in")
        if mask_out is not None and (mask_out.dim() != 2 or mask_out.shape[1] != elements_out.shape[1]):
            raise ValueError(f"mask_out must have shape [S, G_out] with G_out={elements_out.shape[1]} "
                             f"(elements_out), got {tuple(mask_out.shape)}")
        y = self._conv(x, elements_out, elements_in, mask_out, mask_in)
        return self._result(y, elements_out, mask_out)
