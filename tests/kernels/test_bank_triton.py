"""The Triton kernel-bank op (through the interpreter) against the pure-torch reference."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from pgcnn_triton.kernels import bank_triton, kernel_bank, use_backend
from pgcnn_triton.kernels.bank_reference import (
    bank_backward_reference,
    bank_forward_reference,
)

from tests.helpers import rel_err

OP = torch.ops.pgcnn_triton.kernel_bank.default


def make_inputs(s, n_out, n_in, t, c_out, c_in, h, with_bias, dtype=torch.float32, grad=True):
    hidden = torch.randn(s, n_out, n_in, t, h, dtype=dtype, requires_grad=grad)
    weight = torch.randn(c_out * c_in, h, dtype=dtype, requires_grad=grad)
    bias = torch.randn(c_out * c_in, dtype=dtype, requires_grad=grad) if with_bias else None
    return hidden, weight, bias


def run(backend, hidden, weight, bias, c_out, grad_bank, dtype=None):
    """Forward + backward on one backend; returns (bank, grad_hidden, grad_weight, grad_bias)."""
    leaves = [x.detach().clone().requires_grad_() if x is not None else None for x in (hidden, weight, bias)]
    bank = kernel_bank(*leaves, c_out, dtype=dtype, backend=backend)
    bank.backward(grad_bank)
    return (bank.detach(), *[x.grad if x is not None else None for x in leaves])


def check_against_torch(hidden, weight, bias, c_out, grad_bank, tol, dtype=None):
    ours = run("triton", hidden, weight, bias, c_out, grad_bank, dtype)
    ref = run("torch", hidden, weight, bias, c_out, grad_bank, dtype)
    for name, a, b in zip(("bank", "grad_hidden", "grad_weight", "grad_bias"), ours, ref):
        if b is None:
            assert a is None, name
            continue
        assert a.dtype == b.dtype and a.shape == b.shape, name
        assert torch.isfinite(a).all(), name
        assert rel_err(a.double(), b.double()) <= tol, name


@given(s=st.integers(1, 2), n_out=st.integers(1, 4), n_in=st.integers(1, 4), t=st.sampled_from([1, 5, 13]),
       c_out=st.integers(1, 4), c_in=st.integers(1, 4), h=st.sampled_from([4, 8, 16]), with_bias=st.booleans(),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_triton_matches_torch(s, n_out, n_in, t, c_out, c_in, h, with_bias, dtype):
    hidden, weight, bias = make_inputs(s, n_out, n_in, t, c_out, c_in, h, with_bias, dtype)
    grad_bank = torch.randn(s, c_out * n_out, t, c_in * n_in, dtype=dtype)
    check_against_torch(hidden, weight, bias, c_out, grad_bank, 1e-5 if dtype == torch.float32 else 1e-12)


def test_several_tiles_and_h_loop():
    # P = 1044 > the interpreter's 1024-row block, Q = 72 > 64, H = 80 > BLOCK_H = 64: every loop and
    # grid axis of the three kernels runs more than once
    hidden, weight, bias = make_inputs(3, 4, 3, 29, 9, 8, 80, True)
    check_against_torch(hidden, weight, bias, 9, torch.randn(3, 36, 29, 24), 1e-5)


def test_bf16_bank_and_bf16_inputs():
    hidden, weight, bias = make_inputs(2, 3, 2, 5, 2, 3, 8, True)
    grad_bank = torch.randn(2, 6, 5, 6)
    # fp32 model, bf16 bank: the fp32 sum rounded to nearest even once, on both paths (a rounding by
    # truncation, as the interpreter's own fp32 → bf16 cast does, gives ≈ 4e-3)
    check_against_torch(hidden, weight, bias, 2, grad_bank, 1e-3, dtype=torch.bfloat16)
    # bf16 model (the interpreter cannot do bf16 math: the kernels upcast right after the loads),
    # and bf16 hidden with fp32 weights as autocast produces
    for w_dtype in (torch.bfloat16, torch.float32):
        h16, w16, b16 = hidden.bfloat16(), weight.to(w_dtype), bias.to(w_dtype)
        check_against_torch(h16, w16, b16, 2, grad_bank.bfloat16(), 1e-3)


@pytest.mark.parametrize("int64", [False, True])
def test_non_contiguous_inputs_and_grad(int64, monkeypatch):
    # int64: the 64-bit offset variant the launchers pick for banks past 2^31 elements
    monkeypatch.setattr(bank_triton, "_needs_int64", lambda *tensors: int64)
    base = torch.randn(2, 3, 4, 5, 24)
    hidden = base[..., ::3].transpose(1, 2)  # [2, 4, 3, 5, 8], strided on every axis
    weight = torch.randn(8, 12).t()  # [12, 8], column-major
    bias = torch.randn(24)[::2]
    grad_bank = torch.randn(2, 12, 5, 12).permute(0, 3, 2, 1)  # [2, 12, 5, 12], transposed
    assert not (hidden.is_contiguous() or weight.is_contiguous() or grad_bank.is_contiguous())
    check_against_torch(hidden, weight, bias, 3, grad_bank, 1e-5)


def nan_framed(shape):
    """A view of ``shape`` inside a NaN-filled buffer one element larger on every side."""
    buf = torch.full([n + 2 for n in shape], float("nan"))
    return buf, buf[tuple(slice(1, n + 1) for n in shape)]


def test_masking_with_nan_guards():
    s, n_out, n_in, t, c_out, c_in, h = 2, 3, 2, 5, 2, 3, 8
    # inputs inside NaN frames: any unmasked read outside them would put NaN in the results
    _, hidden = nan_framed((s, n_out, n_in, t, h))
    hidden.copy_(torch.randn(hidden.shape))
    _, weight = nan_framed((c_out * c_in, h))
    weight.copy_(torch.randn(weight.shape))
    _, grad_bank = nan_framed((s, c_out * n_out, t, c_in * n_in))
    grad_bank.copy_(torch.randn(grad_bank.shape))
    bias = torch.randn(c_out * c_in)
    # output inside a NaN frame: the kernel must fill the view and leave the frame alone
    buf, out = nan_framed(grad_bank.shape)
    bank_triton.bank_forward(hidden, weight, bias, c_out, out=out)
    assert rel_err(out, bank_forward_reference(hidden, weight, bias, c_out)) < 1e-6
    out.zero_()
    assert buf.isnan().sum() == buf.numel() - out.numel()
    for ours, ref in zip(bank_triton.bank_backward(grad_bank, hidden, weight, True, c_out, split=2),
                         bank_backward_reference(grad_bank, hidden, weight, True, c_out)):
        assert torch.isfinite(ours).all() and rel_err(ours, ref) < 1e-6


@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize("with_bias", [True, False])
def test_opcheck(backend, with_bias):
    hidden, weight, bias = make_inputs(2, 3, 2, 5, 2, 3, 8, with_bias)
    torch.library.opcheck(OP, (hidden, weight, bias, 2, None, backend))
    if with_bias:
        torch.library.opcheck(OP, (hidden, weight, bias, 2, torch.bfloat16, backend))


def test_gradcheck_triton_fp64():
    inputs = make_inputs(2, 3, 2, 5, 2, 3, 8, True, torch.float64)
    assert torch.autograd.gradcheck(lambda h, w, b: kernel_bank(h, w, b, 2, backend="triton"), inputs,
                                    fast_mode=True)


def test_weight_grad_is_deterministic():
    hidden, weight, _ = make_inputs(2, 4, 3, 13, 2, 3, 16, False, grad=False)
    grad_bank = torch.randn(2, 8, 13, 9)
    first = bank_triton.bank_backward(grad_bank, hidden, weight, True, 2, split=3)
    second = bank_triton.bank_backward(grad_bank, hidden, weight, True, 2, split=3)
    for a, b in zip(first, second):
        assert torch.equal(a, b)
    ref = bank_backward_reference(grad_bank, hidden, weight, True, 2)
    assert all(rel_err(a, b) < 1e-6 for a, b in zip(first, ref))


def test_triton_on_cpu_without_interpreter_raises(monkeypatch):
    hidden, weight, bias = make_inputs(1, 2, 2, 5, 2, 2, 4, True, grad=False)
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(RuntimeError, match="triton"):
        kernel_bank(hidden, weight, bias, 2, backend="triton")
    # auto falls back to the reference on CPU
    assert kernel_bank(hidden, weight, bias, 2, backend="auto").shape == (1, 4, 5, 4)


def test_backward_uses_the_forward_backend(monkeypatch):
    calls = []
    real = bank_triton.bank_backward
    monkeypatch.setattr(bank_triton, "bank_backward", lambda *a, **k: calls.append(1) or real(*a, **k))
    hidden, weight, bias = make_inputs(1, 2, 2, 5, 2, 2, 4, True)
    with use_backend("triton"):
        bank = kernel_bank(hidden, weight, bias, 2)
    bank.sum().backward()  # outside the context, where PGCNN_BACKEND=torch (tests/conftest.py)
    assert calls == [1]


@pytest.mark.parametrize("args, error, match", [
    (("h", None, None, 2), TypeError, "hidden"),
    ((torch.zeros(1, 1, 1, 1, 4, dtype=torch.int64), torch.zeros(2, 4), None, 2), TypeError, "hidden"),
    ((torch.zeros(1, 1, 1, 1, 4), torch.zeros(2, 4), torch.zeros(3), 2), ValueError, "bias"),
    ((torch.zeros(1, 1, 1, 1, 4), torch.zeros(2, 4), None, True), TypeError, "out_channels"),
    ((torch.zeros(1, 1, 1, 1, 4), torch.zeros(2, 4), None, 0), ValueError, "out_channels"),
    ((torch.zeros(1, 1, 1, 1, 4), torch.zeros(2, 4), None, 2, torch.int32), TypeError, "dtype"),
    ((torch.zeros(1, 1, 1, 4), torch.zeros(2, 4), None, 2), ValueError, "hidden"),
    ((torch.zeros(1, 1, 1, 1, 4), torch.zeros(3, 4), None, 2), ValueError, "out_channels"),
])
def test_argument_errors(args, error, match):
    with pytest.raises(error, match=match):
        kernel_bank(*args, backend="triton")


def test_compile_cases_format():
    # the sm_90 compile itself runs in the CI compile test (a process without TRITON_INTERPRET)
    cases = bank_triton.compile_cases()
    assert {c["fn"] for c in cases} == {bank_triton.bank_fwd_kernel, bank_triton.bank_grad_hidden_kernel,
                                        bank_triton.bank_grad_weight_kernel}
    for case in cases:
        assert set(case) == {"name", "fn", "signature", "constexprs", "num_warps"}
        assert list(case["signature"]) == case["fn"].arg_names
        assert {k for k, v in case["signature"].items() if v == "constexpr"} == set(case["constexprs"])
        assert min(case["constexprs"][k] for k in ("BLOCK_P", "BLOCK_Q", "BLOCK_H")) >= 16
