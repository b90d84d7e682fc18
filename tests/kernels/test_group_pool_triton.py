"""Triton group pooling (through the interpreter on CPU) against the torch reference, forward and backward."""

import inspect

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from pgcnn_triton.kernels import global_max_pool, group_pool, use_backend
from pgcnn_triton.kernels import group_pool_triton as T

from tests.helpers import rel_err

OPS = {
    "max": lambda x, backend: group_pool(x, "max", backend=backend),
    "mean": lambda x, backend: group_pool(x, "mean", backend=backend),
    "global": lambda x, backend: global_max_pool(x, backend=backend),
}
RAW = {  # the custom ops, which also return the arg-max
    "max": torch.ops.pgcnn_triton.group_pool_max,
    "mean": torch.ops.pgcnn_triton.group_pool_mean,
    "global": torch.ops.pgcnn_triton.global_max_pool,
}


def _run(op, x, backend, grad=None):
    """Output and input gradient of ``OPS[op]`` on a fresh leaf copy of ``x`` (keeps x's strides)."""
    x = x.detach().requires_grad_(True)
    y = OPS[op](x, backend)
    grad = torch.randn_like(y) if grad is None else grad
    (dx,) = torch.autograd.grad(y, x, grad)
    return y, dx


def _compare(op, x, tol=1e-5):
    """Triton vs torch: max values and grads exact; mean within ``tol`` (relative norm)."""
    grad = torch.randn(OPS[op](x, "torch").shape, dtype=x.dtype)
    y_t, dx_t = _run(op, x, "triton", grad)
    y_r, dx_r = _run(op, x, "torch", grad)
    assert y_t.dtype == y_r.dtype == x.dtype and dx_t.shape == x.shape
    if op == "mean":
        assert rel_err(y_t.double(), y_r.double()) <= tol
        assert rel_err(dx_t.double(), dx_r.double()) <= tol
    else:
        assert torch.equal(y_t, y_r)
        assert torch.equal(dx_t, dx_r)


shapes = st.tuples(st.integers(1, 2), st.integers(1, 5), st.integers(1, 9), st.integers(1, 9), st.integers(1, 9))


@given(shape=shapes, op=st.sampled_from(sorted(OPS)), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_matches_reference(shape, op, dtype):
    x = torch.randn(shape, dtype=dtype)
    _compare(op, x)
    if op != "mean":  # random values are distinct: the arg-max must agree exactly too
        assert torch.equal(RAW[op](x, "triton")[1], RAW[op](x, "torch")[1])


@pytest.mark.parametrize("op", sorted(OPS))
def test_ties_first_max_gets_gradient(op):
    # relu'd, coarsely rounded features: many exact ties (zeros and repeated values), like a real network
    x = torch.relu(torch.randn(2, 3, 6, 5, 4)).mul(2).round().div(2)
    _compare(op, x)
    if op != "mean":
        values, argmax = RAW[op](x, "triton")
        assert torch.equal(argmax, RAW[op](x, "torch")[1])
        flat = x.movedim(2, -1) if op == "max" else x.flatten(2)
        first = (flat == values.unsqueeze(-1)).int().argmax(-1)  # first index equal to the maximum
        assert torch.equal(argmax, first.to(torch.int32))


@pytest.mark.parametrize("op", ["max", "global"])
def test_all_equal_sends_whole_gradient_to_first(op):
    x = torch.full((1, 2, 3, 2, 2), 0.5)
    grad = torch.randn(OPS[op](x, "torch").shape)
    for backend in ("triton", "torch"):
        dx = _run(op, x, backend, grad)[1]
        first = dx[:, :, 0] if op == "max" else dx.flatten(2)[:, :, 0]  # g = 0 / flat index 0
        assert torch.equal(first, grad)
        assert dx.abs().sum() == grad.abs().sum()  # nothing anywhere else


@pytest.mark.parametrize("op", sorted(OPS))
def test_bf16_and_fp16(op):
    x = torch.randn(2, 3, 5, 4, 7)
    for dtype in (torch.bfloat16, torch.float16):
        _compare(op, x.to(dtype), tol=1e-2)
        y = OPS[op](x.to(dtype), "triton")
        assert rel_err(y.double(), OPS[op](x.double(), "torch")) <= 1e-2  # vs an fp64 reference


@pytest.mark.parametrize("op", sorted(OPS))
def test_strided_inputs_and_grads(op):
    # channels_last-like: (B, H, W, C, G) memory viewed as [B, C, G, H, W] (g fastest), and a sliced view
    permuted = torch.randn(2, 5, 6, 3, 4).permute(0, 3, 4, 1, 2)
    sliced = torch.randn(2, 3, 8, 5, 9)[:, :, 1::2, :, ::2]
    for x in (permuted, sliced):
        assert not x.is_contiguous()
        _compare(op, x)
    # non-contiguous incoming gradient (transposed, and stride-0 from .sum())
    x = torch.randn(2, 3, 4, 5, 5)
    y_shape = OPS[op](x, "torch").shape
    transposed = torch.randn(tuple(reversed(y_shape))).permute(*reversed(range(len(y_shape))))
    expanded = torch.ones(()).expand(y_shape)  # what y.sum().backward() passes in
    for grad in (transposed, expanded):
        assert torch.equal(_run(op, x, "triton", grad)[1], _run(op, x, "torch", grad)[1])


@pytest.fixture
def poisoned(monkeypatch):
    """Every Triton output is a NaN-poisoned view inside a guard buffer; yields the list of guard checks."""
    checks = []

    def new_output(shape, dtype, device):
        n = torch.Size(shape).numel()
        fill = float("nan") if dtype.is_floating_point else -7
        buf = torch.full((n + 64,), fill, dtype=dtype, device=device)
        checks.append((buf, n, fill))
        return buf[32:32 + n].view(shape)

    monkeypatch.setattr(T, "_new_output", new_output)
    return checks


def _guards_intact(checks):
    for buf, n, fill in checks:
        guard = torch.cat([buf[:32], buf[32 + n:]])
        inside = buf[32:32 + n]
        if buf.dtype.is_floating_point:
            assert guard.isnan().all() and not inside.isnan().any()
        else:
            assert (guard == fill).all() and (inside >= 0).all()


@pytest.mark.parametrize("blocks", ["interpreter", "gpu", "tiny"])
def test_poisoned_outputs_and_block_configs(poisoned, monkeypatch, blocks):
    # "gpu": the sm_90 block sizes (one row per global program); "tiny": many programs and loop trips
    # over (G, H, W), so the running max must merge chunks (ties across chunks keep the earlier index).
    group, glob = T.group_blocks, T.global_blocks
    if blocks == "gpu":
        monkeypatch.setattr(T, "group_blocks", lambda P, interpret: group(P, False))
        monkeypatch.setattr(T, "global_blocks", lambda BC, R, interpret: glob(BC, R, False))
    elif blocks == "tiny":
        monkeypatch.setattr(T, "group_blocks", lambda P, interpret: {"BLOCK_P": 64})
        monkeypatch.setattr(T, "global_blocks", lambda BC, R, interpret: {"BLOCK_BC": 2, "BLOCK_R": 32})
    x = torch.relu(torch.randn(2, 3, 7, 9, 5)).mul(2).round()
    for op in sorted(OPS):
        _compare(op, x)
        if op != "mean":
            assert torch.equal(RAW[op](x, "triton")[1], RAW[op](x, "torch")[1])
    assert len(poisoned) >= 6
    _guards_intact(poisoned)


@pytest.mark.parametrize("op", ["max", "global"])
def test_nan_propagates(op):
    x = torch.randn(2, 3, 4, 3, 3)
    x[0, 1, 2, 1, 1] = x[0, 1, 3, 1, 1] = float("nan")
    x[1, 2, :, 0, 0] = float("-inf")
    y_t, a_t = RAW[op](x, "triton")
    y_r, a_r = RAW[op](x, "torch")
    assert torch.equal(y_t.isnan(), y_r.isnan()) and y_t.isnan().any()
    assert torch.equal(y_t.nan_to_num(), y_r.nan_to_num())
    assert torch.equal(a_t, a_r)


@pytest.mark.parametrize("name", sorted(RAW))
@pytest.mark.parametrize("backend", ["triton", "torch"])
def test_opcheck(name, backend):
    x = torch.randn(2, 3, 4, 3, 5, dtype=torch.float64, requires_grad=True)
    torch.library.opcheck(RAW[name].default, (x, backend))


@pytest.mark.parametrize("op", sorted(OPS))
def test_gradcheck_triton(op):
    x = torch.randn(2, 2, 3, 3, 4, dtype=torch.float64, requires_grad=True)  # distinct values: max is smooth
    assert torch.autograd.gradcheck(lambda t: OPS[op](t, "triton"), (x,), fast_mode=True)


def test_empty_batch():
    x = torch.randn(0, 3, 4, 5, 5, requires_grad=True)
    for op in sorted(OPS):
        y, dx = _run(op, x, "triton")
        assert y.shape[0] == 0 and dx.shape == x.shape


def test_triton_on_cpu_without_interpreter_raises(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    x = torch.randn(1, 2, 3, 4, 4)
    for op in sorted(OPS):
        with pytest.raises(RuntimeError, match="triton"):
            OPS[op](x, "triton")
        OPS[op](x, None)  # auto on CPU without the interpreter: the torch reference


def test_backend_selection(monkeypatch):
    calls = []
    monkeypatch.setattr(T, "group_mean_forward", lambda x: calls.append(1) or x.mean(2))
    x = torch.randn(1, 2, 3, 4, 4)
    group_pool(x, "mean")  # conftest: PGCNN_BACKEND=torch
    assert not calls
    with use_backend("triton"):
        group_pool(x, "mean")
    assert calls == [1]
    with pytest.raises(ValueError, match="backend"):
        group_pool(x, "mean", backend="cuda")


def test_input_errors():
    with pytest.raises(ValueError, match="empty G"):
        group_pool(torch.randn(1, 2, 0, 3, 3))
    with pytest.raises(ValueError, match="G, H, W"):
        global_max_pool(torch.randn(1, 2, 3, 0, 3))
    with pytest.raises(TypeError, match="floating"):
        group_pool(torch.ones(1, 2, 3, 3, 3, dtype=torch.int64))
    with pytest.raises(TypeError, match="float16"):  # the Triton launcher's dtype check
        T.group_mean_forward(torch.ones(1, 2, 3, 3, 3, dtype=torch.complex64))


def test_compile_cases_describe_every_kernel():
    cases = T.compile_cases()
    assert len({c["name"] for c in cases}) == len(cases) == 12
    for case in cases:
        signature = case["signature"]
        assert list(signature) == list(inspect.signature(getattr(case["fn"], "fn", case["fn"])).parameters)
        assert set(case["constexprs"]) == {k for k, v in signature.items() if v == "constexpr"}
        assert {v for v in signature.values()} <= {"constexpr", "i32", "*fp32", "*bf16", "*i32"}
        assert case["num_warps"] == 4
