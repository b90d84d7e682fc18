"""Backend selection: names, precedence, and auto's once-per-shape timing (with a fake CUDA clock)."""

import pytest
import torch
from pgcnn_triton.kernels import _backend


def test_precedence_argument_context_env(monkeypatch):
    monkeypatch.setenv("PGCNN_BACKEND", "torch")
    assert _backend.requested() == "torch"
    with _backend.use_backend("triton"):
        assert _backend.requested() == "triton"
        assert _backend.requested("auto") == "auto"
    monkeypatch.delenv("PGCNN_BACKEND")
    assert _backend.requested() == "auto"
    with pytest.raises(ValueError, match="backend"):
        _backend.use_backend("cudnn").__enter__()


def test_requested_carries_torchs_constant_result_mark():
    """``requested`` is marked by hand (no ``torch._dynamo`` import when the package loads): the same
    attributes that ``torch.compiler.assume_constant_result`` sets."""
    def probe():
        return "x"

    torch.compiler.assume_constant_result(probe)
    marks = vars(probe)
    assert marks, "torch's decorator no longer marks the function: update _constant_under_compile"
    assert {name: getattr(_backend.requested, name, None) for name in marks} == marks


def test_resolve_on_cpu(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert _backend.resolve("auto", cpu) == "triton"
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    assert _backend.resolve("auto", cpu) == "torch"
    with pytest.raises(RuntimeError, match="CUDA"):
        _backend.resolve("triton", cpu)


class FakeEvent:
    """Stands in for torch.cuda.Event: elapsed time comes from the candidate that ran last."""

    clock = [0.0]

    def __init__(self, enable_timing=True):
        self.t = None

    def record(self):
        self.t = self.clock[0]

    def synchronize(self):
        pass

    def elapsed_time(self, other):
        return other.t - self.t


def test_fastest_times_once_per_key_and_keeps_the_winner(monkeypatch):
    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: False)
    monkeypatch.setattr(_backend, "_FASTEST", {})
    calls = {"triton": 0, "torch": 0}

    def candidate(name, cost):
        def run():
            calls[name] += 1
            FakeEvent.clock[0] += cost
        return run

    key = ("conv_fwd", (64, 64))
    assert _backend.fastest(key, {"triton": candidate("triton", 2.0), "torch": candidate("torch", 1.0)}) == "torch"
    assert calls == {"triton": 4, "torch": 4}  # warm-up + 3 timed runs each, once
    assert _backend.fastest(key, {"triton": candidate("triton", 0.1), "torch": candidate("torch", 9.0)}) == "torch"
    assert calls == {"triton": 4, "torch": 4}  # cached: no new timing for a known shape
    other = ("conv_fwd", (64, 32))
    assert _backend.fastest(other, {"triton": candidate("triton", 0.5), "torch": candidate("torch", 1.0)}) == "triton"
    assert _backend.auto_choices() == {key: "torch", other: "triton"}


def test_fastest_does_not_time_during_graph_capture(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: True)
    monkeypatch.setattr(_backend, "_FASTEST", {})
    monkeypatch.setattr(_backend, "_CAPTURE_FALLBACKS", [])
    with pytest.warns(RuntimeWarning):
        assert _backend.fastest(("k",), {"triton": pytest.fail, "torch": pytest.fail}) == "torch"


def test_capture_fallback_is_cached_warned_and_listed(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: True)
    monkeypatch.setattr(_backend, "_FASTEST", {})
    monkeypatch.setattr(_backend, "_CAPTURE_FALLBACKS", [])
    monkeypatch.delenv("PGCNN_AUTO_CAPTURE", raising=False)
    key = ("conv_fwd", (64, 256))
    with pytest.warns(RuntimeWarning, match="before capturing"):
        assert _backend.fastest(key, {"triton": pytest.fail, "torch": pytest.fail}) == "torch"
    assert _backend.capture_fallbacks() == [key] and _backend.auto_choices() == {key: "torch"}
    # fixed from now on, also after the capture ends: the graph and later eager calls agree, no timing
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: False)
    assert _backend.fastest(key, {"triton": pytest.fail, "torch": pytest.fail}) == "torch"


def test_capture_fallback_can_raise_with_instructions(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: True)
    monkeypatch.setattr(_backend, "_FASTEST", {("known",): "triton"})
    monkeypatch.setenv("PGCNN_AUTO_CAPTURE", "error")
    with pytest.raises(RuntimeError, match="eager call of every shape before capturing"):
        _backend.fastest(("new",), {"triton": pytest.fail, "torch": pytest.fail})
    # a choice made before the capture is used inside it
    assert _backend.fastest(("known",), {"triton": pytest.fail, "torch": pytest.fail}) == "triton"
    monkeypatch.setenv("PGCNN_AUTO_CAPTURE", "maybe")
    with pytest.raises(ValueError, match="PGCNN_AUTO_CAPTURE"):
        _backend.fastest(("other",), {})


def auto_on_gpu(monkeypatch):
    """run() as on a CUDA device with backend='auto' (no GPU needed: the candidates are fakes)."""
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    monkeypatch.setattr(_backend, "triton_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: False)
    monkeypatch.setattr(_backend, "_FASTEST", {})
    monkeypatch.setattr(_backend, "_RULES", {})


def test_precision_rule_routes_without_timing(monkeypatch):
    auto_on_gpu(monkeypatch)
    monkeypatch.setenv("PGCNN_AUTO_RULES", "tf32=torch")
    cuda = torch.device("cuda")

    def timed(cost, name):
        def run():
            FakeEvent.clock[0] += cost
            return name
        return run

    untimed = {"triton": pytest.fail, "torch": lambda: "torch"}  # pytest.fail: a timed triton run fails
    assert _backend.run("auto", cuda, lambda: ("k", "tf32"), untimed, "tf32") == "torch"
    # other precisions are still timed: triton wins here
    fast = {"triton": timed(1.0, "triton"), "torch": timed(2.0, "torch")}
    assert _backend.run("auto", cuda, lambda: ("k", "bf16"), fast, "bf16") == "triton"
    assert _backend.auto_choices() == {("k", "tf32"): "torch", ("k", "bf16"): "triton"}
    # set_auto_rule overrides the environment; None hands back to it
    _backend.set_auto_rule("tf32", "triton")
    assert _backend.auto_rules() == {"tf32": "triton"} and _backend.auto_rule("tf32") == "triton"
    _backend.set_auto_rule("tf32", None)
    assert _backend.auto_rule("tf32") == "torch" and _backend.auto_rule("bf16") == "time"
    assert _backend.precision_of(torch.float32, True) == "tf32" and _backend.precision_of(torch.float32, False) == "fp32"
    for bad in ("tf32", "tf32=cudnn", "int8=torch"):
        monkeypatch.setenv("PGCNN_AUTO_RULES", bad)
        with pytest.raises(ValueError, match="PGCNN_AUTO_RULES"):
            _backend.auto_rules()
    with pytest.raises(ValueError, match="set_auto_rule"):
        _backend.set_auto_rule("bf16", "cudnn")


def test_group_conv_ops_pass_their_precision(monkeypatch):
    """The conv ops name their precision, so a TF32 rule reaches them (checked through run's argument)."""
    from pgcnn_triton.kernels import group_conv, group_conv2d

    seen = []
    real = group_conv.run

    def spy(backend, device, key, candidates, precision=None):
        seen.append(precision)
        return real(backend, device, key, candidates, precision)

    monkeypatch.setattr(group_conv, "run", spy)
    x = torch.randn(1, 2, 2, 5, 5, requires_grad=True)
    bank = torch.randn(1, 4, 5, 4, requires_grad=True)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    group_conv2d(x, bank, 3, 2, backend="torch").sum().backward()
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    group_conv2d(x.double(), bank.double(), 3, 2, backend="torch", pool="max").sum().backward()
    assert seen == ["tf32", "tf32", "fp64", "fp64"]
