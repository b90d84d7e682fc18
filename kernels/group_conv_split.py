"""CPU lowering of the group convolution: the tap disk as a sum of a few dense sub-convolutions.

The dense lowering (:mod:`.group_conv_reference`) scatters the tap-packed bank into a k×k kernel that is
zero outside the disk, so oneDNN multiplies those zeros too: 49 taps at k = 7 for 29 useful ones. This
lowering covers the disk exactly with dense pieces instead, each one ``F.conv2d`` (dilated where its
taps are spread out), and sums them: at k = 7 the centre 5×5 square plus two 2-tap arms
(``(±3, 0)``, dilation 6, and ``(0, ±3)``), 29 taps in three convolutions. oneDNN runs each piece
at its dense speed, so the multiply-adds fall to 29/49.

Each piece's weight is an ``index_select`` of its taps from the bank, which is already
``[O, taps, I]``: in the channels-last (``[O, kh, kw, I]``) order oneDNN reorders into, so no zeros
are written and, in channels-last, no transposing copy is made. Backward: one
``aten.convolution_backward`` per piece; the input gradients add up, the weight gradients land
on disjoint taps of the packed bank gradient.

Channels-last activations: oneDNN's convolutions run faster on ``[B, H, W, C]`` activations at
the larger channel counts (per-shape timings in BENCHMARKS.md, ``benchmarks/cpu_layouts.py``);
:func:`use_channels_last` is the rule read off those timings. The op keeps its contiguous
``[B, C·N, H, W]`` contract: the input is copied to channels-last and the output back.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F

from .taps import tap_layout


@dataclass(frozen=True)
class Piece:
    """A dense ``kh×kw`` sub-kernel with dilation ``(dh, dw)``, top-left tap at grid cell ``(top, left)``
    of the k×k grid; ``taps`` are its bank tap indices in row-major sub-kernel order."""

    taps: tuple[int, ...]
    top: int
    left: int
    kh: int
    kw: int
    dh: int
    dw: int


def _progression(values: list[int]) -> int | None:
    """The common step of sorted ``values`` (1 for a single value), or None if they are not evenly spaced."""
    if len(values) == 1:
        return 1
    steps = {b - a for a, b in zip(values, values[1:])}
    return steps.pop() if len(steps) == 1 else None


@lru_cache(maxsize=None)
def pieces(kernel_size: int, num_taps: int) -> tuple[Piece, ...]:
    """An exact cover of the layout's taps by dense (possibly dilated) rectangles.

    The largest centred square inside the tap set first, then the rest: rows with the same
    evenly spaced columns, merged across evenly spaced rows. Every tap is in exactly one piece.
    """
    layout = tap_layout(kernel_size, num_taps)
    k, c = kernel_size, kernel_size // 2
    index = {(int(dy) + c, int(dx) + c): t for t, (dy, dx) in enumerate(layout.offsets.tolist())}
    side = k
    while any((r, q) not in index for r in range(c - side // 2, c + side // 2 + 1)
              for q in range(c - side // 2, c + side // 2 + 1)):
        side -= 2
    lo = c - side // 2
    square = Piece(tuple(index[(r, q)] for r in range(lo, lo + side) for q in range(lo, lo + side)),
                   lo, lo, side, side, 1, 1)
    rest = sorted(cell for cell in index if not (lo <= cell[0] < lo + side and lo <= cell[1] < lo + side))
    rows: dict[tuple[int, ...], list[int]] = {}
    for r in sorted({cell[0] for cell in rest}):
        rows.setdefault(tuple(q for (rr, q) in rest if rr == r), []).append(r)
    out = [square]
    for cols, rs in rows.items():
        dw = _progression(list(cols))
        groups = [rs] if _progression(rs) is not None else [[r] for r in rs]
        for g in groups:
            if dw is None:  # unevenly spaced columns: one single-tap piece each
                out += [Piece((index[(r, q)],), r, q, 1, 1, 1, 1) for r in g for q in cols]
                continue
            out.append(Piece(tuple(index[(r, q)] for r in g for q in cols), g[0], cols[0], len(g), len(cols),
                             _progression(g), dw))
    assert sorted(t for p in out for t in p.taps) == list(range(layout.num_taps))
    return tuple(out)


@lru_cache(maxsize=None)
def _piece_index(kernel_size: int, num_taps: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    # cached per device, as the dense lowering's tap cells
    return tuple(torch.tensor(p.taps, dtype=torch.long, device=device) for p in pieces(kernel_size, num_taps))


#: The split lowering from this many input channels (C_in·N_in) on.
SPLIT_MIN_CHANNELS = 64


def pays(kernel_size: int, num_taps: int, in_channels: int) -> bool:
    """Whether the split lowering is used: where it skips taps in at most three pieces, from k = 5
    (at k = 3 the plus-shaped cover is three tiny convolutions for 5 of 9 taps; from k = 9 the cover
    fragments into single taps), and from 64 input channels: below, oneDNN runs the small dilated arms
    far from its dense speed (k = 7 forward, 3 channels: split 2.7-3.4× slower than dense at batch 8
    and 64; even at 64 channels, 0.95-1.08×; 128: 0.71-0.81×)."""
    return (kernel_size >= 5 and num_taps < kernel_size * kernel_size and in_channels >= SPLIT_MIN_CHANNELS
            and len(pieces(kernel_size, num_taps)) <= 3)


#: ``"auto"`` (:func:`use_channels_last`'s rule), ``"always"`` or ``"never"``: for benchmarks and tests.
CHANNELS_LAST = "auto"

#: The rule's threshold: channels-last from this many input channels (C_in·N_in) on.
CHANNELS_LAST_MIN_CHANNELS = 64


def use_channels_last(x4: torch.Tensor) -> bool:
    """Channels-last activations for this conv input ``[B, C, H, W]`` (see the module docstring).

    Measured on the CIFAR-10 CKResNet (``benchmarks/cpu_layouts.py`` and an A/B of the whole model,
    BENCHMARKS.md): with its two layout copies, channels-last pays at 16×16 and 8×8 with 256-512
    channels (0.70-0.85× the NCHW split conv, fp32 and bf16) and in batch-64 inference at 32×32 (whole
    model 0.90×); at 32×32 in the batch-8 training step it is within run-to-run noise."""
    if CHANNELS_LAST != "auto":
        return CHANNELS_LAST == "always"
    return x4.shape[1] >= CHANNELS_LAST_MIN_CHANNELS


def _padding(piece: Piece, kernel_size: int, padding: int) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) input padding that makes the piece's output the full conv's output."""
    top = padding - piece.top
    bottom = padding - (kernel_size - 1 - (piece.top + (piece.kh - 1) * piece.dh))
    left = padding - piece.left
    right = padding - (kernel_size - 1 - (piece.left + (piece.kw - 1) * piece.dw))
    return top, bottom, left, right


def _piece_input(x4, pad):
    """The input and the conv padding for one piece: symmetric non-negative padding is the conv's own,
    anything else (a 'valid' conv crops the outer pieces' input) is an explicit ``F.pad``."""
    top, bottom, left, right = pad
    if top == bottom >= 0 and left == right >= 0:
        return x4, (top, left)
    return F.pad(x4, (left, right, top, bottom)), (0, 0)


def _weights(bank, kernel_size, channels_last):
    """Per piece, ``[S·O, I, kh, kw]`` from the tap-packed ``[S, O, T, I]``."""
    s, rows, taps, cols = bank.shape
    out = []
    for piece, idx in zip(pieces(kernel_size, taps), _piece_index(kernel_size, taps, bank.device)):
        w = bank.index_select(2, idx).reshape(s * rows, piece.kh, piece.kw, cols).permute(0, 3, 1, 2)
        out.append(w if channels_last else w.contiguous())
    return out


def conv_input(x, bank):
    """``(x4, groups)``: the conv2d view of ``[B, C_in, G, H, W]`` features for a shared bank
    (``[B, C_in·G, H, W]``, 1 group) or per-sample banks (``[1, B·C_in·G, H, W]``, B groups)."""
    b, cols, h, w = x.shape[0], bank.shape[-1], x.shape[-2], x.shape[-1]
    if bank.shape[0] == 1:
        return x.reshape(b, cols, h, w), 1
    return x.reshape(1, b * cols, h, w), b


def conv_bias(bias, rows: int, groups: int):
    """The per-row bias of the conv2d: ``bias[o]`` for rows ``o·N + n``, repeated per group (None stays None)."""
    return None if bias is None else bias.repeat_interleave(rows // bias.shape[0]).repeat(groups)


def _input(x, bank):
    x4, groups = conv_input(x, bank)
    channels_last = use_channels_last(x4)
    if channels_last:
        x4 = x4.contiguous(memory_format=torch.channels_last)
    return x4, channels_last, groups


def forward(x, bank, bias, kernel_size: int, padding: int) -> torch.Tensor:
    """As :func:`.group_conv_reference.forward`: ``[B, C_in, G, H, W]`` → ``[B, C_out·N, H', W']``."""
    b, rows = x.shape[0], bank.shape[1]
    x4, channels_last, groups = _input(x, bank)
    full_bias = conv_bias(bias, rows, groups)
    parts = pieces(kernel_size, bank.shape[2])
    y = None
    # the big square last, so the small arms are summed first (one fewer rounding of the large terms)
    for piece, weight in reversed(list(zip(parts, _weights(bank, kernel_size, channels_last)))):
        inp, pad = _piece_input(x4, _padding(piece, kernel_size, padding))
        term = F.conv2d(inp, weight, full_bias if y is None else None, padding=pad,
                        dilation=(piece.dh, piece.dw), groups=groups)
        y = term if y is None else y.add_(term)
    return y.reshape(b, rows, y.shape[-2], y.shape[-1]).contiguous()


def backward(grad_y, x, bank, kernel_size: int, padding: int, need_x: bool, need_bank: bool):
    """``(grad_x, grad_bank)`` of :func:`forward` (``None`` where not needed); bias grad excluded."""
    s, rows, taps, cols = bank.shape
    x4, channels_last, groups = _input(x, bank)
    gy = grad_y.reshape(x4.shape[0], groups * rows, grad_y.shape[-2], grad_y.shape[-1])
    if channels_last:
        gy = gy.contiguous(memory_format=torch.channels_last)
    grad_x4 = None
    grad_bank = bank.new_empty(bank.shape) if need_bank else None
    parts = pieces(kernel_size, taps)
    for piece, idx, weight in zip(parts, _piece_index(kernel_size, taps, bank.device),
                                  _weights(bank, kernel_size, channels_last)):
        pad4 = _padding(piece, kernel_size, padding)
        inp, pad = _piece_input(x4, pad4)
        gx, gw, _ = torch.ops.aten.convolution_backward(
            gy, inp, weight, None, [1, 1], list(pad), [piece.dh, piece.dw], False, [0, 0], groups,
            [need_x, need_bank, False])
        if need_x:
            if inp is not x4:  # undo the explicit pad / crop
                top, bottom, left, right = pad4
                gx = F.pad(gx, (-left, -right, -top, -bottom))
            grad_x4 = gx if grad_x4 is None else grad_x4.add_(gx)
        if need_bank:
            grad_bank[:, :, idx, :] = gw.reshape(s, rows, cols, piece.kh * piece.kw).transpose(-1, -2)
    grad_x = grad_x4.reshape(x.shape).contiguous() if need_x else None
    return grad_x, grad_bank
