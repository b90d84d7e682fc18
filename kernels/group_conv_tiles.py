"""Tile configurations of the Triton group convolution: the per-dtype autotune sets, the sm_90
shared-memory check, and :func:`forced_tile` (one configuration instead of autotuning, for tests)."""

from __future__ import annotations

import os
from contextlib import contextmanager

import torch

# GPU tile configurations (BLOCK_M/R, BLOCK_N/C, BLOCK_K/P, warps, stages). The same tuples serve the
# forward / input-gradient kernel (M = pixels, N = bank rows or input channels, K = reduction) and the
# bank-gradient kernel (R = bank rows, C = bank columns, P = pixels, the reduction).
#
# The original family (the Hopper matmul tutorial's, docs/kernels.md#tiles), offered in "full" mode:
_GPU_CONFIGS = [
    (128, 128, 64, 8, 3), (128, 64, 64, 4, 4), (64, 128, 64, 4, 4), (128, 256, 64, 8, 3),
    (256, 128, 64, 8, 3), (64, 64, 64, 4, 4), (128, 128, 32, 8, 4), (64, 64, 32, 4, 4),
]
# The short per-dtype sets ("quick" mode, for a short benchmark run; issue 13): wgmma-sized
# tiles (BLOCK_M 128, BLOCK_N 128–256, 8 warps, 3–4 stages; BLOCK_K 64 for 2-byte types, 32 for 4-byte
# ones, whose 64-deep stages do not fit shared memory at 3 stages of 128×256) plus one small tile for
# the small problems (the lifting conv's 3 input channels, the final conv's 2×2 output).
# Compiled for sm_90 (python -m pgcnn_triton.kernels._compile), the bf16 kernels are not software-
# pipelined today (no cp.async, shared memory = one stage: the gathered operand addresses are not
# provably contiguous, and 2-byte accesses are below cp.async's 4-byte minimum), so bf16 configurations
# that differ only in stages compile to the same code: quick keeps one of each pair.
_QUICK_BY_DTYPE = {
    2: [(128, 256, 64, 8, 3), (128, 128, 64, 8, 4), (64, 64, 32, 4, 4)],
    4: [(128, 128, 32, 8, 3), (128, 256, 32, 8, 3), (128, 128, 32, 8, 4), (64, 64, 32, 4, 4)],
    8: [(128, 128, 32, 8, 3), (64, 64, 32, 4, 4), (64, 64, 16, 4, 3)],
}
# added to "full" mode: Hopper tiles that pay once the bf16 loads are pipelined
_FULL_EXTRA = {2: [(128, 256, 64, 8, 4)], 4: [], 8: []}
#: shared memory one thread block may use on sm_90 (H100 / H200): 227 KB of the SM's 228 KB
SM90_SMEM_PER_BLOCK = 227 * 1024
def smem_estimate(tile: tuple, element_bytes: int) -> int:
    """Bytes of shared memory the pipelined operand buffers of ``tile`` need: ``stages`` copies of the
    ``[BLOCK_M, BLOCK_K]`` and ``[BLOCK_K, BLOCK_N]`` operand tiles (the compiled kernel's figure is
    checked against the sm_90 limit by the compile test)."""
    bm, bn, bk, _, stages = tile
    return stages * (bm * bk + bk * bn) * element_bytes


def fits_sm90(tile: tuple, element_bytes: int) -> bool:
    return smem_estimate(tile, element_bytes) <= SM90_SMEM_PER_BLOCK


def autotune_configs(dtype: torch.dtype = torch.bfloat16) -> list[tuple]:
    """The tile configurations the autotuner tries for operands of ``dtype``, as ``PGCNN_AUTOTUNE`` says:

    * ``quick``: the short per-dtype set (3–4 configurations, so tuning takes seconds, not minutes);
    * ``full`` (default): that set, the extra Hopper tiles and the original eight, less any whose
      operand buffers do not fit sm_90 shared memory at this element size (e.g. 128×256×64 at
      3 stages in fp32: 288 KB).
    """
    mode = os.environ.get("PGCNN_AUTOTUNE", "full")
    if mode not in ("full", "quick"):
        raise ValueError(f"PGCNN_AUTOTUNE must be 'full' or 'quick', got {mode!r}")
    size = torch.empty(0, dtype=dtype).element_size()
    if size not in _QUICK_BY_DTYPE:
        raise ValueError(f"dtype must be a 2-, 4- or 8-byte float type, got {dtype}")
    tiles = list(_QUICK_BY_DTYPE[size])
    if mode == "full":
        tiles += [t for t in _FULL_EXTRA[size] + _GPU_CONFIGS if t not in tiles]
    return [t for t in tiles if fits_sm90(t, size)]


def offered_configs() -> dict[int, list[tuple]]:
    """Every configuration any mode offers, per element size in bytes (what the sm_90 compile test covers)."""
    saved = os.environ.get("PGCNN_AUTOTUNE")
    try:
        os.environ["PGCNN_AUTOTUNE"] = "full"
        return {size: autotune_configs(dtype) for size, dtype in
                ((2, torch.bfloat16), (4, torch.float32), (8, torch.float64))}
    finally:
        if saved is None:
            os.environ.pop("PGCNN_AUTOTUNE")
        else:
            os.environ["PGCNN_AUTOTUNE"] = saved


# The reproducible mode's tile per element size (``_launch.deterministic()``): one of each size's
# autotune set, so the sm_90 compile test covers it, sized for the CKResNet's layers.
_PINNED_BY_SIZE = {2: (128, 128, 64, 8, 4), 4: (128, 128, 32, 8, 3), 8: (64, 64, 32, 4, 4)}


def pinned_tile(dtype: torch.dtype) -> tuple:
    """The ``(BLOCK_M, BLOCK_N, BLOCK_K, warps, stages)`` tile the reproducible mode launches for operands
    of ``dtype`` instead of autotuning (the same for every shape and process)."""
    return _PINNED_BY_SIZE[torch.empty(0, dtype=dtype).element_size()]


_FORCED_TILE: list = [None]
_FORCED_SPLIT: list = [None]


@contextmanager
def forced_tile(tile: tuple):
    """Launch every conv / bank-gradient kernel with this ``(BLOCK_M, BLOCK_N, BLOCK_K, warps, stages)``
    tile instead of autotuning (or, in the interpreter, instead of its small default blocks): how the
    interpreter tests check each GPU configuration's tiling at small shapes."""
    _FORCED_TILE[0] = tuple(tile)
    try:
        yield
    finally:
        _FORCED_TILE[0] = None


@contextmanager
def forced_split(split: int):
    """Split every bank-gradient reduction over pixels into ``split`` fixed-order partial sums (the GPU picks
    its split from the shape; the interpreter and :func:`forced_tile` use 1): how tests and the device
    check reach the split-K path on any device."""
    if isinstance(split, bool) or not isinstance(split, int) or split < 1:
        raise ValueError(f"forced_split: split must be a positive int, got {split!r}")
    _FORCED_SPLIT[0] = split
    try:
        yield
    finally:
        _FORCED_SPLIT[0] = None
