"""The CPU split lowering (disk covered by dense sub-convolutions) equals the dense masked lowering."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from pgcnn_triton.kernels import group_conv2d, group_conv_reference, group_conv_split
from pgcnn_triton.kernels.taps import num_disk_taps, tap_layout

from tests.helpers import rel_err


@pytest.mark.parametrize("k", [1, 3, 5, 7, 9, 11, 13])
@pytest.mark.parametrize("square", [False, True])
def test_pieces_cover_every_tap_once_at_its_offset(k, square):
    taps = k * k if square else num_disk_taps(k)
    offsets = tap_layout(k, taps).offsets.tolist()
    seen = []
    for p in group_conv_split.pieces(k, taps):
        cells = [(p.top + i * p.dh, p.left + j * p.dw) for i in range(p.kh) for j in range(p.kw)]
        assert len(cells) == len(p.taps)
        for (r, c), t in zip(cells, p.taps):  # row-major sub-kernel order = the tap's grid cell
            assert offsets[t] == [r - k // 2, c - k // 2]
        seen += p.taps
    assert sorted(seen) == list(range(taps))


def test_k7_disk_is_a_square_and_two_arms():
    shapes = [(p.kh, p.kw, p.dh, p.dw) for p in group_conv_split.pieces(7, 29)]
    assert shapes == [(5, 5, 1, 1), (2, 1, 6, 1), (1, 2, 1, 6)]
    assert group_conv_split.pays(7, 29, 256) and group_conv_split.pays(5, 13, 64)
    assert not group_conv_split.pays(3, 5, 256) and not group_conv_split.pays(7, 49, 256)  # plus; square layout
    assert not group_conv_split.pays(9, num_disk_taps(9), 256)  # fragments into single taps
    assert not group_conv_split.pays(7, 29, 3)  # the lifting layer: tiny arms are slow in oneDNN


@pytest.mark.parametrize("layout", ["never", "always"])
@given(k=st.sampled_from([5, 7]), b=st.integers(1, 3), c_in=st.integers(1, 3), n_in=st.integers(1, 3),
       rows=st.integers(1, 6), hw=st.sampled_from([7, 9, 10]), per_sample=st.booleans(),
       padding=st.sampled_from([None, 0, 1, 2]), with_bias=st.booleans())
def test_split_equals_dense_forward_and_gradients(layout, k, b, c_in, n_in, rows, hw, per_sample, padding,
                                                  with_bias):
    saved, group_conv_split.CHANNELS_LAST = group_conv_split.CHANNELS_LAST, layout
    try:
        check_split_equals_dense(k, b, c_in, n_in, rows, hw, per_sample, padding, with_bias)
    finally:
        group_conv_split.CHANNELS_LAST = saved


def check_split_equals_dense(k, b, c_in, n_in, rows, hw, per_sample, padding, with_bias):
    pad = k // 2 if padding is None else padding
    if hw + 2 * pad < k:
        pad = k // 2
    x = torch.randn(b, c_in, n_in, hw, hw, dtype=torch.float64)
    bank = torch.randn(b if per_sample else 1, rows, num_disk_taps(k), c_in * n_in, dtype=torch.float64)
    bias = torch.randn(1, dtype=torch.float64) if with_bias else None
    dense = group_conv_reference.forward(x, bank, bias, k, pad, split=False)
    split = group_conv_reference.forward(x, bank, bias, k, pad, split=True)
    assert split.is_contiguous() and split.shape == dense.shape
    assert rel_err(split, dense) <= 1e-13
    gy = torch.randn_like(dense)
    gx_d, gb_d = group_conv_reference.backward(gy, x, bank, k, pad, True, True, split=False)
    gx_s, gb_s = group_conv_reference.backward(gy, x, bank, k, pad, True, True, split=True)
    assert rel_err(gx_s, gx_d) <= 1e-13 and rel_err(gb_s, gb_d) <= 1e-13
    only_bank = group_conv_reference.backward(gy, x, bank, k, pad, False, True, split=True)
    assert only_bank[0] is None and rel_err(only_bank[1], gb_d) <= 1e-13


def test_bf16_split_is_as_accurate_as_bf16_dense():
    # measured: both ~3e-3 relative to float64 (bf16 output rounding); the split adds three bf16 terms
    x = torch.randn(2, 16, 8, 12, 12, dtype=torch.float64)  # 128 input channels: the channels-last path
    bank = torch.randn(1, 32, 29, 128, dtype=torch.float64) / 30
    exact = group_conv_reference.forward(x, bank, None, 7, 3, split=False)
    xb, bb = x.to(torch.bfloat16), bank.to(torch.bfloat16)
    dense = group_conv_reference.forward(xb, bb, None, 7, 3, split=False).double()
    split = group_conv_reference.forward(xb, bb, None, 7, 3, split=True).double()
    assert rel_err(split, exact) <= 2 * rel_err(dense, exact) + 1e-3
    assert rel_err(split, exact) <= 1e-2


def test_cpu_op_runs_the_split_lowering(monkeypatch):
    calls = []
    forward = group_conv_split.forward

    def spy(*args):
        calls.append(args[3])
        return forward(*args)

    monkeypatch.setattr(group_conv_split, "forward", spy)
    x = torch.randn(1, 16, 4, 9, 9)
    group_conv2d(x, torch.randn(1, 4, 29, 64), 7, 2, backend="torch")  # k = 7 disk, 64 channels: split
    group_conv2d(x, torch.randn(1, 4, 5, 64), 3, 2, backend="torch")   # k = 3: dense
    group_conv2d(x[:, :1], torch.randn(1, 4, 29, 4), 7, 2, backend="torch")  # 4 channels: dense
    assert calls == [7]
