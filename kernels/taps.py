"""The in-disk taps of a k×k kernel: the tap-packed layout shared by every op.

The circular mask keeps a tap iff its position on ``linspace(-1, 1, k)²`` has norm ≤ 1. It is computed
once from the *unrotated* grid (with a small epsilon), so it is exactly the same for every group
element: rotations preserve the norm (docs/method.md#circular-mask). k = 3 / 5 / 7 keep 5 / 13 / 29 taps.
Taps are stored in row-major order of the k×k grid.

One layer of the original keeps every tap: the final T(2) conv of ``last_conv_T2`` under E(2), whose
degenerate element (angle 0, mirror flag 0) maps every tap into the disk (docs/method.md#full-cifar-heads). Its bank
uses the *square* layout, all k² taps. The ops tell the two layouts apart by the bank's tap count
(:func:`tap_layout`), so they need no extra argument: T = k² is square, T = the disk count is the disk
(for k = 1 both are the single centre tap).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

_EPS = 1e-6


@dataclass(frozen=True)
class TapLayout:
    """In-disk taps of a k×k kernel.

    Attributes:
        kernel_size: k (odd, ≥ 1).
        points: ``[T, 2]`` float64 (y, x) coordinates of the taps on ``linspace(-1, 1, k)²``.
        offsets: ``[T, 2]`` int64 (dy, dx) pixel offsets from the kernel centre.
        dense_index: ``[k·k]`` int64; entry r·k + c is the tap index of grid cell (r, c), or T for a
            masked cell (so a zero column appended after the T taps fills it).
    """

    kernel_size: int
    points: torch.Tensor
    offsets: torch.Tensor
    dense_index: torch.Tensor

    @property
    def num_taps(self) -> int:
        return self.points.shape[0]


def check_kernel_size(kernel_size) -> int:
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int):
        raise TypeError(f"kernel_size must be a positive odd int, got {type(kernel_size).__name__}")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size}")
    return kernel_size


def num_disk_taps(kernel_size: int) -> int:
    """Number of in-disk taps of a k×k kernel, in plain Python (traceable by ``torch.compile``)."""
    k = check_kernel_size(kernel_size)
    axis = [-1.0 + 2.0 * i / (k - 1) for i in range(k)] if k > 1 else [0.0]
    return sum(1 for y in axis for x in axis if (y * y + x * x) ** 0.5 <= 1.0 + _EPS)


TAP_SETS = ("disk", "square")


def check_taps(taps) -> str:
    if taps not in TAP_SETS:
        raise ValueError(f"taps must be one of {TAP_SETS}, got {taps!r}")
    return taps


@lru_cache(maxsize=None)
def disk_taps(kernel_size: int) -> TapLayout:
    """The in-disk tap layout of a ``kernel_size × kernel_size`` kernel (cached; tensors on the CPU)."""
    return _layout(kernel_size, square=False)


@lru_cache(maxsize=None)
def square_taps(kernel_size: int) -> TapLayout:
    """All k² taps of a ``kernel_size × kernel_size`` kernel, in the same format (cached)."""
    return _layout(kernel_size, square=True)


def taps_of(kernel_size: int, taps: str = "disk") -> TapLayout:
    """The layout of a named tap set: ``"disk"`` (default) or ``"square"``."""
    return square_taps(kernel_size) if check_taps(taps) == "square" else disk_taps(kernel_size)


def tap_set(kernel_size: int, num_taps: int) -> str:
    """``"disk"`` or ``"square"``: the tap set a bank with ``num_taps`` taps uses, else a ValueError.
    Plain Python (no tensors), so ``torch.compile`` traces it without a data-dependent guard."""
    disk = num_disk_taps(kernel_size)
    if num_taps == disk:
        return "disk"
    if num_taps == kernel_size * kernel_size:
        return "square"
    raise ValueError(f"bank has {num_taps} taps but kernel_size={kernel_size} has {disk} "
                     f"in-disk taps ({kernel_size * kernel_size} in the square layout)")


def tap_layout(kernel_size: int, num_taps: int) -> TapLayout:
    """The layout a bank with ``num_taps`` taps uses: the disk's, or the square's (T = k²)."""
    return taps_of(kernel_size, tap_set(kernel_size, num_taps))


def _layout(kernel_size: int, square: bool) -> TapLayout:
    k = check_kernel_size(kernel_size)
    axis = torch.linspace(-1.0, 1.0, k, dtype=torch.float64) if k > 1 else torch.zeros(1, dtype=torch.float64)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    grid = torch.stack([yy, xx], -1).reshape(k * k, 2)
    inside = grid.norm(dim=-1) <= 1.0 + _EPS
    if square:
        inside = torch.ones_like(inside)
    cells = torch.nonzero(inside).flatten()
    dense_index = torch.full((k * k,), cells.numel(), dtype=torch.int64)
    dense_index[cells] = torch.arange(cells.numel())
    r, c = cells // k, cells % k
    offsets = torch.stack([r - k // 2, c - k // 2], -1)
    return TapLayout(k, grid[cells].contiguous(), offsets, dense_index)
