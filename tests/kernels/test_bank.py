import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from pgcnn_triton.kernels import kernel_bank

from tests.helpers import rel_err


def naive_bank(hidden, weight, bias, c_out):
    s, n_out, n_in, t, _ = hidden.shape
    c_in = weight.shape[0] // c_out
    bank = torch.empty(s, c_out * n_out, t, c_in * n_in, dtype=hidden.dtype)
    for si in range(s):
        for o in range(c_out):
            for n in range(n_out):
                for c in range(c_in):
                    for g in range(n_in):
                        v = hidden[si, n, g] @ weight[o * c_in + c]
                        bank[si, o * n_out + n, :, c * n_in + g] = v + (0 if bias is None else bias[o * c_in + c])
    return bank


@pytest.mark.parametrize("with_bias", [False, True])  # both, every run (a drawn boolean saw a bias 3 times in 25)
@given(s=st.integers(1, 2), n_out=st.integers(1, 3), n_in=st.integers(1, 3), t=st.sampled_from([1, 5, 13]),
       c_out=st.integers(1, 3), c_in=st.integers(1, 3))
def test_bank_layout_matches_naive(s, n_out, n_in, t, c_out, c_in, with_bias):
    hidden = torch.randn(s, n_out, n_in, t, 4, dtype=torch.float64)
    weight = torch.randn(c_out * c_in, 4, dtype=torch.float64)
    bias = torch.randn(c_out * c_in, dtype=torch.float64) if with_bias else None
    out = kernel_bank(hidden, weight, bias, c_out)
    assert out.shape == (s, c_out * n_out, t, c_in * n_in)
    assert rel_err(out, naive_bank(hidden, weight, bias, c_out)) < 1e-12


def test_bank_gradcheck_and_cast():
    hidden = torch.randn(2, 2, 3, 5, 4, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda h, w, b: kernel_bank(h, w, b, 2), (hidden, weight, bias))
    assert kernel_bank(hidden, weight, bias, 2, dtype=torch.float32).dtype == torch.float32
