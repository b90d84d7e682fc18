"""Group convs of the portable programs, computing only the in-disk taps (as the library's CPU lowering).

A conv is run as the library runs it on the CPU (:mod:`pgcnn_triton.kernels.group_conv_split`): where
the split lowering pays, as a sum of a few dense (possibly dilated) ``conv2d`` pieces that cover the
tap disk exactly; elsewhere as one dense k×k ``conv2d`` (zeros outside the disk). So the exported
graph does the frozen model's multiply-adds, no more. Two ways to hold the weights:

* :class:`PackedGroupConv`: the pieces' weights as constants, cut from a frozen bank (the ``.pt2``
  program, and the ONNX file of an already frozen model);
* :class:`KernelNetGroupConv`: the layer's kernel net and its fixed input points (the spatial and the
  relative-element parts, kept apart: a few kB), and the graph that evaluates the net and cuts the
  pieces out of its bank. Nothing in that subgraph depends on the input, so ONNX Runtime folds it
  into constants once, when the session is created: the file holds the model's parameters, the
  session runs plain convolutions.

Either can run its wide 5×5 and 3×3 pieces as Winograd convolutions (``conv_algorithm``,
:mod:`pgcnn_triton.winograd`): fewer multiply-adds, for runtimes whose matrix products outrun their
convolutions (ONNX Runtime's CPU session).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import winograd
from .kernels import resolve_padding
from .kernels.group_conv_split import Piece, _padding, _piece_input, conv_bias, pays, pieces
from .kernels.taps import tap_layout


def conv_plan(kernel_size: int, num_taps: int, in_columns: int) -> list[tuple[Piece, torch.Tensor, bool]]:
    """The convolutions of one group conv, as the library's CPU lowering runs it: per conv, its
    :class:`~pgcnn_triton.kernels.group_conv_split.Piece` (shape, dilation, place on the k×k grid),
    the bank tap of each sub-kernel cell in row-major order (``num_taps`` for a cell outside the disk)
    and whether such cells exist (they are filled from an appended zero column)."""
    if pays(kernel_size, num_taps, in_columns):
        return [(p, torch.tensor(p.taps), False) for p in pieces(kernel_size, num_taps)]
    k = kernel_size
    whole = Piece((), 0, 0, k, k, 1, 1)
    if num_taps == k * k:
        return [(whole, torch.arange(num_taps), False)]
    return [(whole, tap_layout(k, num_taps).dense_index.clone(), True)]


def piece_weights(packed: torch.Tensor, index: torch.Tensor, piece: Piece, zeros: bool) -> torch.Tensor:
    """``[rows, cols, kh, kw]`` conv weight of one piece from the ``[rows, cols, T]`` taps (a gather;
    ``zeros``: some cells take the zero column appended after the T taps)."""
    if zeros:
        packed = F.pad(packed, (0, 1))
    return packed.index_select(2, index).reshape(*packed.shape[:2], piece.kh, piece.kw)


class _TapConvs(nn.Module):
    """Shared part: the conv plan, the layer attributes models read, the sum of the piece convs."""

    def _setup(self, layer, rows: int, columns: int, num_taps: int, lifting: bool, conv_algorithm: str):
        if conv_algorithm not in winograd.CONV_ALGORITHMS:
            raise ValueError(f"conv_algorithm must be one of {winograd.CONV_ALGORITHMS}, got {conv_algorithm!r}")
        self.conv_algorithm, self.rows, self.columns = conv_algorithm, rows, columns
        self.kind, self.lifting = getattr(layer, "kind", type(layer).__name__), lifting
        self.in_channels, self.out_channels = layer.in_channels, layer.out_channels
        self.kernel_size, self.padding = layer.kernel_size, layer.padding
        self.out_elements = rows // layer.out_channels
        self.plan = conv_plan(layer.kernel_size, num_taps, columns)
        pad = resolve_padding(layer.padding, layer.kernel_size)
        self.pads = [_padding(piece, layer.kernel_size, pad) for piece, _, _ in self.plan]

    def winograd_pieces(self, height: int, width: int) -> list[int]:
        """The plan's pieces run as Winograd convolutions on ``height`` × ``width`` inputs: r×r pieces
        (r in :data:`pgcnn_triton.winograd.SIDES`) of dilation 1 and non-negative padding, under
        ``"winograd"`` all of them, under ``"auto"`` those where :func:`pgcnn_triton.winograd.pays`."""
        chosen = []
        for i, (piece, _, _) in enumerate(self.plan):
            top, bottom, left, right = self.pads[i]
            if (self.conv_algorithm == "direct" or piece.kh != piece.kw or piece.kh not in winograd.SIDES
                    or (piece.dh, piece.dw) != (1, 1) or min(self.pads[i]) < 0):
                continue
            out = (height + top + bottom - piece.kh + 1, width + left + right - piece.kw + 1)
            if self.conv_algorithm == "winograd" or winograd.pays(piece.kh, self.columns, self.rows, out):
                chosen.append(i)
        return chosen

    def _convolve(self, x, weights, bias):
        x4 = x if self.lifting else x.flatten(1, 2)
        fast = self.winograd_pieces(*x4.shape[-2:])
        y = None
        # the big square last, as the library sums them
        for i in reversed(range(len(self.plan))):
            first_bias = bias if y is None else None
            if i in fast:
                term = winograd.conv2d(x4, weights[i], self.pads[i])
                if first_bias is not None:
                    term = term + first_bias[:, None, None]
            else:
                inp, pad = _piece_input(x4, self.pads[i])
                term = F.conv2d(inp, weights[i], first_bias, padding=pad,
                                dilation=(self.plan[i][0].dh, self.plan[i][0].dw))
            y = term if y is None else y + term
        return y.unflatten(1, (self.out_channels, self.out_elements))

    def extra_repr(self):
        return (f"{self.kind}: {self.in_channels}, {self.out_channels}, N_out={self.out_elements}, "
                f"{len(self.plan)} conv{'s' if len(self.plan) > 1 else ''}, {self.conv_algorithm}")


class PackedGroupConv(_TapConvs):
    """A :class:`~pgcnn_triton.FrozenConv` as the library's CPU convs, with their weights as constants.

    Same call signature: ``layer(x, *ignored)`` returns ``([B, C_out, N_out, H', W'], elements)``.
    """

    def __init__(self, frozen, conv_algorithm: str = "direct"):
        super().__init__()
        bank = frozen.shared_bank()
        rows, taps, cols = bank.shape
        self._setup(frozen, rows, cols, taps, frozen.lifting, conv_algorithm)
        packed = bank.permute(0, 2, 1)
        for i, (piece, index, zeros) in enumerate(self.plan):
            self.register_buffer(f"weight{i}", piece_weights(packed, index, piece, zeros).contiguous())
        bias = conv_bias(None if frozen.bias is None else frozen.bias.to(bank.dtype), rows, 1)
        self.register_buffer("bias", bias)
        self.register_buffer("elements", frozen.elements.detach().clone())

    def forward(self, x, *elements_and_masks):
        weights = [getattr(self, f"weight{i}") for i in range(len(self.plan))]
        return self._convolve(x, weights, self.bias), self.elements


class KernelNetGroupConv(_TapConvs):
    """A conv layer with fixed elements as its kernel net + fixed input points, and the graph that
    turns them into the piece weights (constant: ONNX Runtime folds it at session creation).

    Same call signature as :class:`PackedGroupConv`. The bank is the one :func:`~pgcnn_triton.freeze`
    computes (``layer.make_bank(g_out, g_in)``), evaluated in the exported graph.
    """

    def __init__(self, layer, g_out: torch.Tensor, g_in: torch.Tensor | None, lifting: bool,
                 conv_algorithm: str = "direct"):
        super().__init__()
        points = layer.tap_points if layer.spatial_kernel else None
        reduce = layer.sampling.estimator != "reference"
        dtype = layer.kernel_net.output.weight.dtype
        group = layer.group
        with torch.no_grad():
            # the input points [1, N_out, N_in, T, D] are a broadcast of a spatial part [N_out, T, 2]
            # and a relative-element part [N_out, N_in, d] (Group.kernel_inputs): kept apart, they are tiny
            spatial = rel = None
            if points is not None:
                spatial = group.act(group.inverse(g_out, reduce), points.to(torch.float64))[0]
            if g_in is not None:
                rel = group.relative_coordinates(group.relative(g_out, g_in, reduce), layer.sampling.coordinate)[0]
            full = group.kernel_inputs(g_out, g_in, points, layer.sampling.coordinate, reduce)[0]
        n_out, n_in, taps = full.shape[:3]
        self.shape = (n_out, n_in, taps)
        self.register_buffer("spatial", None if spatial is None else spatial.to(dtype))
        self.register_buffer("relative", None if rel is None else rel.to(dtype))
        rows, cols = layer.out_channels * n_out, layer.in_channels * n_in
        self._setup(layer, rows, cols, taps, lifting, conv_algorithm)
        for i, (_, index, _) in enumerate(self.plan):
            self.register_buffer(f"index{i}", index)
        self.kernel_net = layer.kernel_net
        self.bias = layer.bias
        self.register_buffer("elements", g_out.detach().clone())
        if not torch.equal(self.points(), full.to(dtype)):  # a guard: the parts must broadcast to the points
            raise RuntimeError(f"{self.kind}: the kernel net's input points do not split into spatial and "
                               f"relative parts")

    def points(self) -> torch.Tensor:
        """The kernel net's input points ``[N_out, N_in, T, D]`` (as ``Group.kernel_inputs``)."""
        n_out, n_in, taps = self.shape
        parts = []
        if self.spatial is not None:
            parts.append(self.spatial[:, None].expand(n_out, n_in, taps, self.spatial.shape[-1]))
        if self.relative is not None:
            parts.append(self.relative[:, :, None].expand(n_out, n_in, taps, self.relative.shape[-1]))
        return torch.cat(parts, -1) if len(parts) > 1 else parts[0]

    def packed(self) -> torch.Tensor:
        """The bank as ``[C_out·N_out, C_in·N_in, T]`` (rows ``o·N_out + n``, columns ``c·N_in + g``)."""
        n_out, n_in, taps = self.shape
        out = self.kernel_net.output
        values = F.linear(self.kernel_net.features(self.points()), out.weight, out.bias)   # [N_out, N_in, T, O·C]
        values = values.reshape(n_out, n_in, taps, self.out_channels, self.in_channels)
        return values.permute(3, 0, 4, 1, 2).reshape(self.out_channels * n_out, self.in_channels * n_in, taps)

    def forward(self, x, *elements_and_masks):
        packed = self.packed()
        weights = [piece_weights(packed, getattr(self, f"index{i}"), piece, zeros)
                   for i, (piece, _, zeros) in enumerate(self.plan)]
        bias = None
        if self.bias is not None:
            bias = self.bias[:, None].expand(self.out_channels, self.out_elements).reshape(-1)
        return self._convolve(x, weights, bias), self.elements


__all__ = ["KernelNetGroupConv", "PackedGroupConv", "conv_plan", "piece_weights"]
