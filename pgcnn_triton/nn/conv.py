"""Lifting, group and pointwise group convolutions with continuous (kernel-net) kernels.

Each layer's forward, in order: the sampler gives the output elements; the group turns them (and the
input elements) into kernel-net coordinates at the in-disk taps; the kernel net maps coordinates to
hidden features; the bank op applies its last layer in the tap-packed layout; the group-conv op
convolves. Layers return ``(features, elements)`` with features ``[B, C, G, H, W]`` and elements
``[S, G]`` (SE2) or ``[S, G, 2]`` (E2), S ∈ {1, B}. Nothing derived from a forward is kept on the module.
"""

from __future__ import annotations

import torch
from torch import nn

from ..kernelnets import make_kernel_net
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


def apply_gate(y: torch.Tensor, gate: torch.Tensor | None) -> torch.Tensor:
    """Static shape mode: multiply the outputs of gated-off elements by 0 (gate ``[1, G]`` or None)."""
    if gate is None:
        return y
    return y * gate.to(y.dtype)[:, None, :, None, None]


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
        check_features(x, rank, self.in_channels)
        check_dtype(x, self.dtype, type(self).__name__)

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

    def _conv(self, x5, g_out, g_in):
        # the bank is written straight in the conv's dtype (bf16 under autocast): no separate cast
        bank = self.make_bank(g_out, g_in, conv_dtype(x5))
        record_kernel(bank, self.bias)
        return group_conv2d(x5, bank, self.kernel_size, self.out_channels, self.bias, self.padding)

    def extra_repr(self):
        taps = "" if self.taps == "disk" else f", taps={self.taps!r}"
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"group={self.group.name}, N={self.sampling.num_elements}, padding={self.padding!r}{taps}")


class LiftingConv(_KernelConv):
    """R² → G: lifts ``[B, C_in, H, W]`` images to ``[B, C_out, N, H', W']`` group features.

    The lifting layer always samples the full group (stratified, or the C_n / D_n grid); partial
    settings of ``sampling`` do not apply to it. Returns ``(features, elements)``.

    Args:
        in_channels, out_channels: channel counts.
        kernel_size: odd kernel size k; only the in-disk taps are used.
        sampling: a :class:`~pgcnn_triton.sampling.SamplingConfig`; or pass its fields as keyword
            arguments (``group="E2", num_elements=8, ...``).
        kernel_net: ``"SIREN"``, ``"MAGNet"`` or ``"FourierNet"``; kernel_hidden, kernel_layers,
            omega0, learn_omega0 configure it.
        padding: ``"same"``, ``"valid"`` or an int. bias: learnable ``[C_out]`` bias (init 0).
        taps: ``"disk"`` (default: the circular mask, method.md §4.5) or ``"square"`` (all k² taps,
            what the original's mask keeps for the degenerate element of ``last_conv_T2``, §5.4).
    """

    def __init__(self, in_channels, out_channels, kernel_size=7, *, sampling=None, kernel_net="SIREN",
                 kernel_hidden=32, kernel_layers=3, omega0=10.0, learn_omega0=False, padding="same",
                 bias=True, taps="disk", **sampling_options):
        config = make_config(sampling, sampling_options)
        super().__init__(in_channels, out_channels, kernel_size, config, kernel_net, kernel_hidden,
                         kernel_layers, omega0, learn_omega0, padding, bias, coordinate_dim=2, taps=taps)
        self.sampler = FullGroupSampler(config.replace(partial=False))

    def forward(self, x):
        self._check_input(x, 4)
        g_out, _ = self.output_elements(x.shape[0], None, x.device)
        return self._conv(x[:, :, None], g_out, None), g_out

    def output_elements(self, batch_size, elements, device):
        """``(elements, gate)`` of the output (the lifting layer ignores input elements; gate None)."""
        return self.sampler(batch_size, device)


class GroupConv(_KernelConv):
    """G → G: ``[B, C_in, N_in, H, W]`` with its elements → ``[B, C_out, N_out, H', W']``.

    Output elements: a learnable partial subset if ``sampling.partial``; a new full-group sample if
    ``sampling.per_layer`` (random method); otherwise the input elements. The kernel couples every
    (output, input) element pair through ``g_out⁻¹·g_in``. Arguments as :class:`LiftingConv`.
    Call as ``layer(x, elements)``; returns ``(features, elements)``. ``elements`` may be any floating
    dtype (converted to float64, see :mod:`pgcnn_triton.groups`); ``x`` must have the layer's dtype
    outside autocast (:func:`check_dtype`).
    """

    def __init__(self, in_channels, out_channels, kernel_size=7, *, sampling=None, kernel_net="SIREN",
                 kernel_hidden=32, kernel_layers=3, omega0=10.0, learn_omega0=False, padding="same",
                 bias=True, taps="disk", **sampling_options):
        config = make_config(sampling, sampling_options)
        dim = 2 + config.group_obj.coordinate_dim(config.coordinate)
        super().__init__(in_channels, out_channels, kernel_size, config, kernel_net, kernel_hidden,
                         kernel_layers, omega0, learn_omega0, padding, bias, coordinate_dim=dim, taps=taps)
        if config.partial:
            self.sampler = PartialSampler(config)
        elif config.per_layer and config.method == "random":
            self.sampler = FullGroupSampler(config)
        else:
            self.sampler = None

    def forward(self, x, elements):
        self._check_input(x, 5)
        elements = self._check_elements(x, elements)
        g_out, gate = self.output_elements(x.shape[0], elements, x.device)
        y = self._conv(x, g_out, elements)
        return apply_gate(y, gate), g_out

    def output_elements(self, batch_size, elements, device):
        """``(output elements, gate)``: sampled (partial / per-layer) or the input ``elements``.
        The gate is a ``[1, G]`` 0/1 multiplier in static shape mode, else None."""
        if self.sampler is None:
            return elements, None
        return self.sampler(batch_size, device)


class PointwiseGroupConv(_KernelConv):
    """1×1 group conv (the residual shortcut): maps features on ``elements_in`` to ``elements_out``.

    The kernel depends only on ``g_out⁻¹·g_in``; no spatial extent, no bias, never samples.
    Call as ``layer(x, elements_in, elements_out)``; returns ``(features, elements_out)``.
    """

    spatial_kernel = False

    def __init__(self, in_channels, out_channels, *, sampling=None, kernel_net="SIREN", kernel_hidden=16,
                 kernel_layers=3, omega0=10.0, learn_omega0=False, **sampling_options):
        config = make_config(sampling, sampling_options)
        dim = config.group_obj.coordinate_dim(config.coordinate)
        super().__init__(in_channels, out_channels, 1, config, kernel_net, kernel_hidden, kernel_layers,
                         omega0, learn_omega0, 0, False, coordinate_dim=dim)

    def forward(self, x, elements_in, elements_out):
        self._check_input(x, 5)
        elements_in = self._check_elements(x, elements_in, "elements_in")
        elements_out = self.group.as_elements(elements_out, "elements_out")
        return self._conv(x, elements_out, elements_in), elements_out
