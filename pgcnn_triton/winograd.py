"""Winograd convolutions F(2×2, r×r) in plain torch ops, for the exported programs' 5×5 and 3×3 convs.

A 5×5 convolution costs 25 multiply-adds per output pixel and channel pair. Winograd's minimal filtering
computes each 2×2 output tile from a 6×6 input tile with 36: 2.8× fewer (3×3: 16 instead of 36), the
rest being cheap linear transforms of the tiles (``Bᵀ d B``), of the weights (``G g Gᵀ``, constant: ONNX
Runtime folds it when the session is created) and of the products (``Aᵀ m A``). The products are 36 (16)
``[tiles, C_in] @ [C_in, C_out]`` matrix products, which is where ONNX Runtime's CPU kernels are fastest:
for the CKResNet presets' wide 5×5 pieces it runs them ~1.7× faster than the same convolution as a
``Conv`` node, for the GCNN presets' wide 3×3 convs 1.1–1.7× (docs/deployment.md#winograd-convolutions).

The transforms are built exactly (rational arithmetic, Toom-Cook over the points :data:`POINTS` and
infinity), then rounded once to the working dtype. The points are chosen for fp32 rounding: (0, ±1, 2,
-1/2) keep the relative error of a 5×5 conv near 2e-6 in fp32 (0, ±1, ±2: 3e-6); float64 agrees with a
direct convolution to ~1e-15.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from math import lcm

import torch
import torch.nn.functional as F

#: The finite interpolation points (the point at infinity is always added).
POINTS = (Fraction(0), Fraction(1), Fraction(-1), Fraction(2), Fraction(-1, 2))

#: Output tile side (F(m×m, r×r) with m = 2).
TILE = 2

#: ``conv_algorithm`` of the exported programs: ``direct`` (every piece a ``Conv``), ``winograd`` (every
#: 3×3 and 5×5 piece with non-negative padding as a Winograd convolution), ``auto`` (Winograd where it
#: pays: :func:`pays`).
CONV_ALGORITHMS = ("auto", "direct", "winograd")

#: Per kernel side r, the smallest channel count (both sides) and output side at which ``auto`` takes
#: the Winograd form: below them the tile transforms or the larger transformed weights (36/25, 16/9)
#: cost more than the saved multiply-adds (ONNX Runtime 1.32, one CPU thread, batch 1 and 64;
#: benchmarks/winograd_convs.py, BENCHMARKS.md). The keys are the sides run as Winograd convolutions.
AUTO_RULE = {5: (128, 6), 3: (256, 14)}
SIDES = tuple(sorted(AUTO_RULE))


def _inverse(matrix: list[list[Fraction]]) -> list[list[Fraction]]:
    n = len(matrix)
    rows = [row[:] + [Fraction(int(i == j)) for j in range(n)] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = next(r for r in range(col, n) if rows[r][col] != 0)
        rows[col], rows[pivot] = rows[pivot], rows[col]
        rows[col] = [v / rows[col][col] for v in rows[col]]
        for r in range(n):
            if r != col and rows[r][col] != 0:
                f = rows[r][col]
                rows[r] = [a - f * b for a, b in zip(rows[r], rows[col])]
    return [row[n:] for row in rows]


def _evaluation(points, degree: int) -> list[list[Fraction]]:
    """Rows evaluating a polynomial of ``degree`` coefficients at each point, then at infinity (its
    leading coefficient)."""
    return [[p ** j for j in range(degree)] for p in points] + [[Fraction(0)] * (degree - 1) + [Fraction(1)]]


@lru_cache(maxsize=None)
def _exact(r: int, m: int) -> tuple[tuple, tuple, tuple]:
    n = m + r - 1
    if not 2 <= n <= len(POINTS) + 1:
        raise ValueError(f"Winograd transforms for m={m}, r={r} need {n - 1} finite points, have {len(POINTS)}")
    points = POINTS[:n - 1]
    g, out, v = _evaluation(points, r), _evaluation(points, m), _inverse(_evaluation(points, n))
    bt = [[v[j][i] for j in range(n)] for i in range(n)]
    at = [[out[j][i] for j in range(n)] for i in range(m)]
    for i in range(n):
        scale = lcm(*[x.denominator for x in bt[i]])
        bt[i] = [x * scale for x in bt[i]]
        g[i] = [x / scale for x in g[i]]
    return tuple(tuple(float(x) for x in row) for row in at), tuple(tuple(float(x) for x in row) for row in g), \
        tuple(tuple(float(x) for x in row) for row in bt)


def transforms(r: int, m: int = TILE) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(Aᵀ [m, n], G [n, r], Bᵀ [n, n])`` (float64, n = m + r - 1) with, for any ``d`` of length n and
    ``g`` of length r, ``Aᵀ((G g) ⊙ (Bᵀ d)) = [Σ_k g_k d_{i+k}]_{i<m}`` (the correlation conv2d computes).

    Toom-Cook: a correlation is the transpose of a linear convolution, which is evaluation at n points,
    a pointwise product and interpolation; so ``Bᵀ = V⁻ᵀ`` (V evaluates degree-n polynomials), ``G``
    evaluates the filter and ``Aᵀ`` is the transposed evaluation of the output. ``Bᵀ``'s rows are scaled
    to integers, the factors moved into ``G``. The values are cached, the tensors made at each call: a
    tensor made inside an export's trace is a trace-time tensor, which no later call may reuse.
    """
    return tuple(torch.tensor(rows, dtype=torch.float64) for rows in _exact(r, m))


def pays(r: int, in_channels: int, out_channels: int, out_size: tuple[int, int]) -> bool:
    """Whether ``conv_algorithm="auto"`` runs an r×r piece with these channels and output size as a
    Winograd convolution (the thresholds of :data:`AUTO_RULE`)."""
    if r not in AUTO_RULE:
        return False
    min_channels, min_side = AUTO_RULE[r]
    return min(in_channels, out_channels) >= min_channels and min(out_size) >= min_side


def transform_weight(weight: torch.Tensor) -> torch.Tensor:
    """``[O, C, r, r]`` conv weight → ``[n², C, O]`` (``G g Gᵀ`` per channel pair, n = r + 1)."""
    out_channels, in_channels, r, _ = weight.shape
    _, g, _ = transforms(r)
    g = g.to(weight)
    u = g @ weight @ g.T                       # matrix products only (no Einsum node in the ONNX file)
    return u.permute(2, 3, 1, 0).reshape(-1, in_channels, out_channels)


def conv2d(x: torch.Tensor, weight: torch.Tensor, padding: tuple[int, int, int, int]) -> torch.Tensor:
    """``F.conv2d(F.pad(x, (left, right, top, bottom)), weight)`` as a Winograd F(2×2, r×r) convolution.

    Args:
        x: ``[B, C, H, W]``.
        weight: ``[O, C, r, r]`` (r in :data:`SIDES`), or its :func:`transform_weight`.
        padding: ``(top, bottom, left, right)``, each ≥ 0.

    Returns:
        ``[B, O, H', W']``. Shapes are fixed by ``x``'s H and W; the batch may be symbolic (export).
    """
    top, bottom, left, right = padding
    if min(padding) < 0:
        raise ValueError(f"winograd conv2d needs non-negative padding, got {padding}")
    batch, channels, height, width = x.shape
    if weight.dim() == 4:
        r = weight.shape[-1]
        weight = transform_weight(weight)
    else:
        r = round(weight.shape[0] ** 0.5) - 1
    at, _, bt = (t.to(x) for t in transforms(r))
    n, m = r + TILE - 1, TILE
    out_h, out_w = height + top + bottom - r + 1, width + left + right - r + 1
    tiles_h, tiles_w = -(-out_h // m), -(-out_w // m)
    # channels last, padded so that the tiles (stride m, side n) cover the output exactly
    xp = F.pad(x.permute(0, 2, 3, 1), (0, 0, left, m * tiles_w + r - 1 - width - left,
                                       top, m * tiles_h + r - 1 - height - top))
    # Bᵀ d B, one axis at a time: n row offsets, transformed; then n column offsets, transformed
    rows = torch.stack([xp[:, u:u + m * tiles_h:m] for u in range(n)])         # [n, B, th, Wp, C]
    rows = (bt @ rows.reshape(n, -1)).reshape(rows.shape)
    tiles = torch.stack([rows[:, :, :, v:v + m * tiles_w:m] for v in range(n)], 1)   # [n, n, B, th, tw, C]
    tiles = (bt @ tiles.reshape(n, n, -1)).reshape(n * n, -1, channels)        # [n², B·th·tw, C]
    products = torch.bmm(tiles, weight)                                         # [n², B·th·tw, O]
    out_channels = products.shape[-1]
    # Aᵀ m A, one axis at a time
    y = (at @ products.reshape(n, -1)).reshape(m, n, -1)
    y = at @ y                                                                  # [m, m, B·th·tw·O]
    y = y.reshape(m, m, batch, tiles_h, tiles_w, out_channels).permute(2, 3, 0, 4, 1, 5)
    y = y.reshape(batch, m * tiles_h, m * tiles_w, out_channels)[:, :out_h, :out_w]
    return y.permute(0, 3, 1, 2)


__all__ = ["AUTO_RULE", "CONV_ALGORITHMS", "POINTS", "SIDES", "TILE", "conv2d", "pays",
           "transform_weight", "transforms"]
