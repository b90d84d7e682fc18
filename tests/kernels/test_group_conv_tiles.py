"""Each GPU tile configuration of the group conv, run through the interpreter at small shapes.

On the GPU the autotuner picks among ``autotune_configs``; here :func:`forced_tile` makes the forward,
input-gradient and bank-gradient launchers use one tile, so every distinct (BLOCK_M, BLOCK_N, BLOCK_K)
any mode offers is checked against the dense-conv reference (warps and stages do not exist in the
interpreter). The shape spans several tiles of the 64-wide ones and leaves the last partial: 68 bank
rows and columns, 98 pixels.
"""

import pytest
import torch
from pgcnn_triton.kernels import disk_taps
from pgcnn_triton.kernels import group_conv_reference as reference
from pgcnn_triton.kernels import group_conv_triton as gct

from tests.helpers import rel_err

TILES = sorted({t[:3] for tiles in gct.offered_configs().values() for t in tiles})


def passes(x, bank, bias, k, pad, c_out, gy):
    return (gct.conv_forward(x, bank, bias, k, pad, c_out),
            gct.conv_input_grad(gy, bank, x.shape, k, pad),
            gct.conv_bank_grad(gy, x, bank.shape, k, pad))


@pytest.mark.parametrize("tile", TILES, ids=lambda t: "x".join(map(str, t)))
def test_tile_matches_reference(tile):
    b, c_in, g, c_out, n, k, h, pad = 2, 17, 4, 17, 4, 3, 7, 1
    for dtype, samples, tol in ((torch.float64, 1, 1e-12), (torch.float32, b, 1e-5)):
        x = torch.randn(b, c_in, g, h, h, dtype=dtype)
        bank = torch.randn(samples, c_out * n, disk_taps(k).num_taps, c_in * g, dtype=dtype)
        bias = torch.randn(c_out, dtype=dtype)
        gy = torch.randn(b, c_out * n, h, h, dtype=dtype)
        with gct.forced_tile((*tile, 4, 3)):
            got = passes(x, bank, bias, k, pad, c_out, gy)
        ref_y = reference.forward(x, bank, bias, k, pad, split=False)
        ref_gx, ref_gb = reference.backward(gy, x, bank, k, pad, True, True, split=False)
        for name, a, r in zip(("y", "grad_x", "grad_bank"), got, (ref_y, ref_gx, ref_gb)):
            assert a.shape == r.shape and rel_err(a, r) <= tol, (name, dtype, rel_err(a, r))
    assert gct._FORCED_TILE[0] is None  # the override ends with its block
