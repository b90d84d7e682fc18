"""Launch helpers shared by the Triton ops: the one launch point (device guard, grid limits), block
sizes, precision, dtype flags, the reproducible mode."""

from __future__ import annotations

from contextlib import nullcontext

import torch

# defined in _backend, which needs them for its own choices and cannot import this module (it imports _backend)
from ._backend import DETERMINISTIC_ENV, GridLimitError, deterministic, interpreting  # noqa: F401  (re-exported)

#: Programs CUDA allows per launch on the grid's x, y and z axes. Launchers read it at call time (tests
#: lower it to make the Triton interpreter, which has no limit, take the folding paths).
MAX_GRID = (2**31 - 1, 65535, 65535)

def check_grid(grid: tuple, what: str) -> tuple:
    """``grid`` padded to three axes, or :class:`GridLimitError` naming the axis over :data:`MAX_GRID`."""
    grid = tuple(int(n) for n in grid) + (1,) * (3 - len(grid))
    for axis, (n, limit) in enumerate(zip(grid, MAX_GRID)):
        if n > limit:
            raise GridLimitError(f"{what}: grid {grid} has {n} programs on axis {'xyz'[axis]}, more than the "
                                 f"{limit} CUDA allows")
    return grid


def launch(kernel, grid, device: torch.device, *args, **meta) -> None:
    """Launch ``kernel[grid](*args, **meta)``: the only place the kernels are launched.

    * Device guard: Triton launches on the current CUDA device and its current stream, so the launch runs
      with ``device`` (the tensors' device) made current.
    * Grid limits: the grid (a tuple, or a callable of the kernel's meta-parameters as autotuned kernels
      take) is checked against :data:`MAX_GRID`; launchers fold excess programs into more launches before
      calling this, so a :class:`GridLimitError` here means a shape no launcher can split.
    An empty grid launches nothing.
    """
    name = getattr(kernel, "__name__", None) or getattr(getattr(kernel, "fn", None), "__name__", "kernel")
    if callable(grid):
        user_grid = grid

        def grid(meta):
            return check_grid(user_grid(meta), name)
    else:
        grid = check_grid(grid, name)
        if 0 in grid:
            return
    with torch.cuda.device(device) if device.type == "cuda" else nullcontext():
        kernel[grid](*args, **meta)


def fold(count: int, per_item: int, what: str, axis: int = 2) -> list[tuple[int, int]]:
    """``[start, stop)`` chunks of ``count`` items (e.g. samples) such that ``per_item`` programs per item
    fit grid axis ``axis``: how a launcher loops where one launch would pass :data:`MAX_GRID`."""
    limit = MAX_GRID[axis]
    if per_item > limit:
        raise GridLimitError(f"{what}: one item needs {per_item} programs on grid axis {'xyz'[axis]}, more than "
                             f"the {limit} CUDA allows")
    step = max(1, limit // max(1, per_item))
    return [(start, min(start + step, count)) for start in range(0, count, step)]


def next_pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def dot_precision(dtype: torch.dtype, allow_tf32: bool) -> str:
    """``tl.dot`` input precision: exact fp32 in the interpreter and when TF32 is off."""
    if interpreting() or dtype != torch.float32 or not allow_tf32:
        return "ieee"
    return "tf32"


def upcast_loads(dtype: torch.dtype) -> bool:
    """The interpreter mishandles bf16 arithmetic (raw uint16 bits): cast to fp32 right after loads."""
    return interpreting() and dtype == torch.bfloat16


TRITON_DTYPES = {torch.float16, torch.bfloat16, torch.float32, torch.float64}


def check_dtype(tensor: torch.Tensor, argument: str) -> None:
    if tensor.dtype not in TRITON_DTYPES:
        raise TypeError(f"{argument} must be float16, bfloat16, float32 or float64, got {tensor.dtype}")
