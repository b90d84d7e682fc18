import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from pgcnn_triton.kernels import dense_kernel, disk_taps, group_conv2d, square_taps, taps_of

from tests.helpers import rel_err


def naive_group_conv(x, bank, k, c_out, bias, pad, taps="disk"):
    """Direct sum over the taps: y[b,o,n,p] = Σ bank[s(b), o·N+n, t, c·G+g] x[b,c,g,p+offset_t]."""
    b, c_in, n_in, h, w = x.shape
    if bank.dim() == 3:
        bank = bank[None]
    rows = bank.shape[1]
    xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    oh, ow = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    y = torch.zeros(b, rows, oh, ow, dtype=x.dtype)
    flat = xp.reshape(b, c_in * n_in, h + 2 * pad, w + 2 * pad)
    for t, (dy, dx) in enumerate(taps_of(k, taps).offsets.tolist()):
        patch = flat[:, :, k // 2 + dy: k // 2 + dy + oh, k // 2 + dx: k // 2 + dx + ow]
        wt = bank[:, :, t, :].expand(b, -1, -1)
        y += torch.einsum("boi,bihw->bohw", wt, patch)
    y = y.reshape(b, c_out, rows // c_out, oh, ow)
    return y if bias is None else y + bias[None, :, None, None, None]


# every kernel size and both bias settings each run (drawn, k = 3 came up once in 25 examples)
@pytest.mark.parametrize("k", [1, 3, 5, 7])
@pytest.mark.parametrize("with_bias", [False, True])
@given(b=st.integers(1, 2), c_in=st.integers(1, 3), n_in=st.integers(1, 3), c_out=st.integers(1, 3),
       n_out=st.integers(1, 3), hw=st.sampled_from([5, 7, 8]), per_sample=st.booleans(),
       padding=st.sampled_from(["same", "valid", 1]))
def test_group_conv_matches_direct_tap_sum(b, c_in, n_in, c_out, n_out, k, hw, per_sample, padding, with_bias):
    if padding == "valid" and hw < k:
        padding = "same"
    t = disk_taps(k).num_taps
    x = torch.randn(b, c_in, n_in, hw, hw, dtype=torch.float64)
    bank = torch.randn(b if per_sample else 1, c_out * n_out, t, c_in * n_in, dtype=torch.float64)
    bias = torch.randn(c_out, dtype=torch.float64) if with_bias else None
    pad = {"same": k // 2, "valid": 0}.get(padding, padding)
    y = group_conv2d(x, bank, k, c_out, bias, padding)
    assert y.shape[:3] == (b, c_out, n_out)
    assert rel_err(y, naive_group_conv(x, bank, k, c_out, bias, pad)) < 1e-12


def test_dense_kernel_zero_outside_disk():
    bank = torch.randn(2, 3, 29, 4)
    dense = dense_kernel(bank, 7)
    assert dense.shape == (2, 3, 4, 7, 7)
    outside = (disk_taps(7).dense_index == 29).reshape(7, 7)
    assert bool((dense[..., outside] == 0).all())
    assert bool((dense[..., ~outside] != 0).all())


@pytest.mark.parametrize("per_sample", [False, True])
def test_group_conv_gradcheck(per_sample):
    x = torch.randn(2, 2, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    bank = torch.randn(2 if per_sample else 1, 3 * 2, 5, 4, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w, b: group_conv2d(x, w, 3, 3, b, "same"), (x, bank, bias))


def test_group_conv_rejects_bad_shapes():
    x = torch.randn(2, 2, 3, 5, 5)
    with pytest.raises(ValueError, match="input columns"):
        group_conv2d(x, torch.randn(1, 4, 5, 5), 3, 2)
    with pytest.raises(ValueError, match="taps"):
        group_conv2d(x, torch.randn(1, 4, 8, 6), 3, 2)  # neither 5 (disk) nor 9 (square) taps
    with pytest.raises(ValueError, match="per-sample"):
        group_conv2d(x, torch.randn(3, 4, 5, 6), 3, 2)
    with pytest.raises(ValueError, match="padding"):
        group_conv2d(x, torch.randn(1, 4, 5, 6), 3, 2, padding="full")
    with pytest.raises(ValueError, match=r"\[B, C_in, N_in, H, W\]"):
        group_conv2d(x[0], torch.randn(1, 4, 5, 6), 3, 2)


@given(k=st.sampled_from([3, 5, 7]), per_sample=st.booleans(), padding=st.sampled_from(["same", "valid"]))
def test_square_tap_layout_is_a_plain_dense_conv(k, per_sample, padding):
    # T = k² selects the square layout (every tap), e.g. the E(2) last_conv_T2 layer
    x = torch.randn(2, 2, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    bank = torch.randn(2 if per_sample else 1, 3, k * k, 2, dtype=torch.float64, requires_grad=True)
    y = group_conv2d(x, bank, k, 3, None, padding)
    pad = k // 2 if padding == "same" else 0
    assert rel_err(y, naive_group_conv(x, bank, k, 3, None, pad, taps="square")) < 1e-12
    dense = dense_kernel(bank, k)
    assert bool((dense != 0).all()) and dense.shape == (bank.shape[0], 3, 2, k, k)
    assert square_taps(k).num_taps == k * k
    gy = torch.randn_like(y)
    gx, gb = torch.autograd.grad(y, (x, bank), gy)
    ref = naive_group_conv(x, bank, k, 3, None, pad, taps="square")
    rx, rb = torch.autograd.grad(ref, (x, bank), gy)
    assert rel_err(gx, rx) < 1e-12 and rel_err(gb, rb) < 1e-12


def test_bank_with_neither_tap_count_is_rejected():
    x = torch.randn(1, 2, 1, 8, 8)
    with pytest.raises(ValueError, match="29 in-disk taps .49 in the square layout"):
        group_conv2d(x, torch.randn(1, 3, 30, 2), 7, 3)
