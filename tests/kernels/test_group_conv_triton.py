"""The tap-sparse Triton group conv (interpreter on CPU) against the dense conv2d reference."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pgcnn_triton.kernels import disk_taps, group_conv2d, use_backend
from pgcnn_triton.kernels import group_conv_triton as gct

from tests.helpers import rel_err


def make_inputs(b, c_in, g, c_out, n, k, h, w, shared, dtype=torch.float32, bias=True, square=False):
    taps = k * k if square else disk_taps(k).num_taps
    x = torch.randn(b, c_in, g, h, w, dtype=dtype, requires_grad=True)
    bank = torch.randn(1 if shared else b, c_out * n, taps, c_in * g, dtype=dtype, requires_grad=True)
    bias_t = torch.randn(c_out, dtype=dtype, requires_grad=True) if bias else None
    return x, bank, bias_t


def run(backend, x, bank, bias, k, c_out, padding, pool=None, grad_out=None):
    y = group_conv2d(x, bank, k, c_out, bias, padding, pool=pool, backend=backend)
    if grad_out is None:
        grad_out = torch.randn_like(y)
    inputs = [t for t in (x, bank, bias) if t is not None]
    return (y, *torch.autograd.grad(y, inputs, grad_out)), grad_out


def assert_backends_agree(x, bank, bias, k, c_out, padding, pool=None, tol=1e-5):
    ref, grad_out = run("torch", x, bank, bias, k, c_out, padding, pool)
    out, _ = run("triton", x, bank, bias, k, c_out, padding, pool, grad_out)
    for name, a, b in zip(("y", "grad_x", "grad_bank", "grad_bias"), out, ref):
        assert a.shape == b.shape, name
        assert rel_err(a, b) <= tol, (name, rel_err(a, b))


@settings(max_examples=20)
@given(b=st.integers(1, 2), c_in=st.integers(1, 3), g=st.integers(1, 4), c_out=st.integers(1, 3),
       n=st.integers(1, 4), k=st.sampled_from([1, 3, 5]), h=st.integers(5, 9), w=st.integers(5, 9),
       shared=st.booleans(), padding=st.sampled_from(["same", "valid"]), bias=st.booleans())
def test_forward_and_backward_match_reference_fp32(b, c_in, g, c_out, n, k, h, w, shared, padding, bias):
    x, bank, bias_t = make_inputs(b, c_in, g, c_out, n, k, h, w, shared, bias=bias)
    assert_backends_agree(x, bank, bias_t, k, c_out, padding)


@pytest.mark.parametrize("shared", [True, False])
def test_kernel_size_7_fp64_per_sample_and_shared(shared):
    x, bank, bias = make_inputs(2, 2, 3, 2, 3, 7, 9, 8, shared, dtype=torch.float64)
    assert_backends_agree(x, bank, bias, 7, 2, "same", tol=1e-12)
    assert_backends_agree(x, bank, bias, 7, 2, 2, tol=1e-12)


@pytest.mark.parametrize("shared", [True, False])
def test_square_tap_layout_fp64(shared):
    # all k² taps (T = k²): the tap tables follow the bank's tap count, forward and both gradients
    x, bank, bias = make_inputs(2, 2, 1, 2, 1, 5, 7, 6, shared, dtype=torch.float64, square=True)
    assert_backends_agree(x, bank, bias, 5, 2, "valid", tol=1e-12)
    assert_backends_agree(x, bank, bias, 5, 2, "same", tol=1e-12)


@settings(max_examples=10)
@given(pool=st.sampled_from(["max", "mean"]), n=st.integers(1, 6), c_out=st.integers(1, 3),
       shared=st.booleans(), k=st.sampled_from([3, 5]))
def test_fused_pooling_epilogue(pool, n, c_out, shared, k):
    x, bank, bias = make_inputs(2, 2, 3, c_out, n, k, 7, 6, shared)
    assert_backends_agree(x, bank, bias, k, c_out, "same", pool=pool)
    y = group_conv2d(x, bank, k, c_out, bias, pool=pool, backend="triton")
    full = group_conv2d(x, bank, k, c_out, bias, backend="torch")
    expected = full.amax(2) if pool == "max" else full.mean(2)
    assert y.shape == (2, c_out, 7, 6) and rel_err(y, expected) <= 1e-5


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_inputs_accumulate_in_fp32(dtype):
    x, bank, bias = make_inputs(2, 2, 4, 3, 4, 5, 8, 8, False, dtype=torch.float64)
    y = group_conv2d(x.to(dtype), bank.to(dtype), 5, 3, bias.to(dtype), backend="triton")
    assert y.dtype == dtype
    assert rel_err(y.double(), group_conv2d(x, bank, 5, 3, bias, backend="torch")) <= 2e-2


def test_non_contiguous_input_and_bank():
    x, bank, bias = make_inputs(2, 3, 2, 2, 2, 3, 7, 7, True)
    x_nc = x.detach().permute(0, 3, 4, 1, 2).contiguous().permute(0, 3, 4, 1, 2).requires_grad_()
    assert not x_nc.is_contiguous()
    bank_nc = bank.detach().transpose(1, 3).contiguous().transpose(1, 3).requires_grad_()
    assert_backends_agree(x_nc, bank_nc, bias, 3, 2, "same")


def test_every_output_is_written(monkeypatch):
    # poison every buffer the launcher allocates: a missed tile would stay NaN
    real_empty = torch.empty

    def nan_empty(*args, **kwargs):
        out = real_empty(*args, **kwargs)
        return out.fill_(float("nan")) if out.is_floating_point() else out.fill_(-7)

    monkeypatch.setattr(gct.torch, "empty", nan_empty)
    x, bank, bias = make_inputs(2, 2, 3, 3, 3, 5, 9, 7, False)
    grad = torch.randn(2, 9, 9, 7)
    y = gct.conv_forward(x.detach(), bank.detach(), bias.detach(), 5, 2, 3)
    gx = gct.conv_input_grad(grad, bank.detach(), x.shape, 5, 2)
    gb = gct.conv_bank_grad(grad, x.detach(), bank.shape, 5, 2)
    pooled, index = gct.conv_forward(x.detach(), bank.detach(), bias.detach(), 5, 2, 3, pool="max")
    for t in (y, gx, gb, pooled):
        assert torch.isfinite(t).all()
    assert ((index >= 0) & (index < 3)).all()


def test_bank_gradient_is_deterministic():
    x, bank, _ = make_inputs(2, 2, 3, 2, 2, 3, 8, 8, True)
    grad = torch.randn(2, 4, 8, 8)
    first = gct.conv_bank_grad(grad, x.detach(), bank.shape, 3, 1)
    assert torch.equal(first, gct.conv_bank_grad(grad, x.detach(), bank.shape, 3, 1))


def test_gradcheck_through_triton_fp64():
    x, bank, bias = make_inputs(1, 2, 2, 2, 2, 3, 5, 5, True, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a, b, c: group_conv2d(a, b, 3, 2, c, backend="triton"),
                                    (x, bank, bias), fast_mode=True)


@pytest.mark.parametrize("backend", ["triton", "torch"])
def test_opcheck(backend):
    x, bank, bias = make_inputs(2, 2, 2, 2, 3, 3, 6, 6, False)
    ops = torch.ops.pgcnn_triton
    torch.library.opcheck(ops.group_conv2d.default, (x, bank, bias, 3, 1, backend))
    torch.library.opcheck(ops.group_conv2d_pool.default, (x, bank, bias, 3, 1, 2, "max", backend))
    torch.library.opcheck(ops.group_conv2d_pool.default, (x, bank, None, 3, 0, 2, "mean", backend))
    grad = torch.randn(2, 6, 6, 6)
    torch.library.opcheck(ops.group_conv2d_backward.default,
                          (grad, x.detach(), bank.detach(), 3, 1, True, True, backend))


def test_backend_choice(monkeypatch):
    calls = []
    real = gct.conv_forward
    monkeypatch.setattr(gct, "conv_forward", lambda *a, **k: calls.append(1) or real(*a, **k))
    x, bank, _ = make_inputs(1, 1, 2, 1, 2, 3, 5, 5, True)
    with torch.no_grad():
        group_conv2d(x, bank, 3, 1, backend="torch")
        assert calls == []
        with use_backend("triton"):
            group_conv2d(x, bank, 3, 1)
        assert calls == [1]
        monkeypatch.setenv("PGCNN_BACKEND", "auto")  # auto + interpreter on CPU → Triton
        group_conv2d(x, bank, 3, 1)
        assert calls == [1, 1]
        monkeypatch.setenv("PGCNN_BACKEND", "cudnn")
        with pytest.raises(ValueError, match="PGCNN_BACKEND"):
            group_conv2d(x, bank, 3, 1)
        monkeypatch.setenv("PGCNN_BACKEND", "auto")
        monkeypatch.setenv("TRITON_INTERPRET", "0")
        group_conv2d(x, bank, 3, 1)  # auto without the interpreter on CPU: the reference
        assert calls == [1, 1]
        with pytest.raises(RuntimeError, match="TRITON_INTERPRET"):
            group_conv2d(x, bank, 3, 1, backend="triton")
    with pytest.raises(ValueError, match="backend"):
        group_conv2d(x, bank, 3, 1, backend="cuda")


def test_argument_errors():
    x, bank, _ = make_inputs(1, 2, 2, 2, 2, 3, 5, 5, True)
    with pytest.raises(ValueError, match="pool"):
        group_conv2d(x, bank, 3, 2, pool="sum")
    with pytest.raises(ValueError, match="bias"):
        group_conv2d(x, bank, 3, 2, torch.randn(4))
    with pytest.raises(ValueError, match="in-disk taps"):
        group_conv2d(x, bank, 5, 2)
    with pytest.raises(ValueError, match="smaller than kernel_size"):
        group_conv2d(x[..., :2, :2], bank, 3, 2, padding="valid")


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_autocast_runs_the_conv_in_the_autocast_dtype(backend):
    x, bank, bias = make_inputs(2, 2, 2, 2, 2, 3, 6, 6, True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = group_conv2d(x, bank, 3, 2, bias, backend=backend)
    assert y.dtype == torch.bfloat16
    assert rel_err(y.float(), group_conv2d(x, bank, 3, 2, bias, backend="torch")) <= 2e-2
    y.float().sum().backward()
    assert x.grad.dtype == torch.float32 and bank.grad.dtype == torch.float32


@pytest.mark.parametrize("shared", [True, False])
def test_channels_last_operands_match_reference(shared):
    """conv_forward / conv_input_grad with channels_last=True (the kernel table's NHWC variant): the
    same kernels on channel-contiguous activations, outputs written channels-last."""
    from pgcnn_triton.kernels import group_conv_reference as reference

    cl = torch.channels_last
    b, c_in, g, c_out, n, k, h, pad = 2, 3, 4, 2, 3, 5, 7, 2
    x = torch.randn(b, c_in * g, h, h, dtype=torch.float64).contiguous(memory_format=cl).reshape(b, c_in, g, h, h)
    bank = torch.randn(1 if shared else b, c_out * n, disk_taps(k).num_taps, c_in * g, dtype=torch.float64)
    bias = torch.randn(c_out, dtype=torch.float64)
    gy = torch.randn(b, c_out * n, h, h, dtype=torch.float64).contiguous(memory_format=cl)
    y = gct.conv_forward(x, bank, bias, k, pad, c_out, channels_last=True)
    gx = gct.conv_input_grad(gy, bank, x.shape, k, pad, channels_last=True)
    gb = gct.conv_bank_grad(gy, x, bank.shape, k, pad)
    assert y.is_contiguous(memory_format=cl) and gx.reshape(b, -1, h, h).is_contiguous(memory_format=cl)
    ref_gx, ref_gb = reference.backward(gy, x, bank, k, pad, True, True, split=False)
    assert rel_err(y, reference.forward(x, bank, bias, k, pad, split=False)) <= 1e-12
    assert rel_err(gx, ref_gx) <= 1e-12 and rel_err(gb, ref_gb) <= 1e-12
    pooled, index = gct.conv_forward(x, bank, bias, k, pad, c_out, pool="max", channels_last=True)
    ref_pooled, ref_index = reference.forward_pooled(x, bank, bias, k, c_out, pad, "max", split=False)
    assert rel_err(pooled, ref_pooled) <= 1e-12 and torch.equal(index, ref_index)
