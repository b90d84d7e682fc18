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
    assert _backend.fastest(("k",), {"triton": pytest.fail, "torch": pytest.fail}) == "torch"
