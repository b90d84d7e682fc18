"""Backend choices on a CUDA device, with fakes (no GPU): the CUDA-graph warm-up rule for every backend
choice, the launch-failure fallback, the reproducible mode's pinned choice, and ``TRITON_INTERPRET=1``
left set with CUDA tensors."""

import warnings

import pytest
import torch
from pgcnn_triton.kernels import _backend

CUDA = torch.device("cuda")


@pytest.fixture
def gpu(monkeypatch):
    """``run`` as on a CUDA device (candidates are fakes); returns a switch for the capture flag."""
    capturing = [False]
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    monkeypatch.delenv("PGCNN_AUTO_RULES", raising=False)
    monkeypatch.delenv("PGCNN_AUTO_CAPTURE", raising=False)
    monkeypatch.delenv("PGCNN_DETERMINISTIC", raising=False)
    monkeypatch.setattr(_backend, "triton_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: capturing[0])
    for name, empty in (("_FASTEST", {}), ("_RULES", {}), ("_WARM", set()), ("_TORCH_ONLY", set()),
                        ("_CAPTURE_FALLBACKS", []), ("_LAUNCH_FALLBACKS", [])):
        monkeypatch.setattr(_backend, name, empty, raising=False)
    return capturing


def candidates(calls):
    def make(name):
        def run():
            calls.append(name)
            return name
        return run
    return {"triton": make("triton"), "torch": make("torch")}


def test_triton_inside_capture_needs_an_eager_call_of_the_shape_first(gpu):
    calls = []
    gpu[0] = True
    with pytest.raises(RuntimeError, match=r"first Triton call of shape key \('conv', 8\) inside CUDA-graph capture"):
        _backend.run("triton", CUDA, lambda: ("conv", 8), candidates(calls))
    assert calls == []  # refused before anything autotuned, compiled or copied
    gpu[0] = False
    assert _backend.run("triton", CUDA, lambda: ("conv", 8), candidates(calls)) == "triton"  # the warm-up
    gpu[0] = True
    assert _backend.run("triton", CUDA, lambda: ("conv", 8), candidates(calls)) == "triton"
    assert calls == ["triton", "triton"]


def test_a_rule_or_an_op_whose_auto_is_triton_falls_back_inside_capture(gpu, monkeypatch):
    """Per-precision rules (and the bank / pooling ops, whose auto means Triton) get auto's capture rule:
    the torch path, warned and kept for the shape; ``PGCNN_AUTO_CAPTURE=error`` raises."""
    calls = []
    _backend.set_auto_rule("bf16", "triton")
    gpu[0] = True
    with pytest.warns(RuntimeWarning, match="first seen during capture"):
        assert _backend.run("auto", CUDA, lambda: ("conv", "bf16"), candidates(calls), "bf16") == "torch"
    with pytest.warns(RuntimeWarning, match="first seen during capture"):
        assert _backend.run("auto", CUDA, lambda: ("bank",), candidates(calls), auto="triton") == "torch"
    gpu[0] = False  # the captured graph and later eager calls agree
    assert _backend.run("auto", CUDA, lambda: ("conv", "bf16"), candidates(calls), "bf16") == "torch"
    assert calls == ["torch"] * 3
    monkeypatch.setenv("PGCNN_AUTO_CAPTURE", "error")
    gpu[0] = True
    with pytest.raises(RuntimeError, match="before capturing"):
        _backend.run("auto", CUDA, lambda: ("conv", "fp16"), candidates(calls), "bf16")
    # warmed up eagerly first: the rule holds inside the capture
    gpu[0] = False
    assert _backend.run("auto", CUDA, lambda: ("conv", 2), candidates(calls), "bf16") == "triton"
    gpu[0] = True
    assert _backend.run("auto", CUDA, lambda: ("conv", 2), candidates(calls), "bf16") == "triton"


def test_auto_falls_back_to_torch_once_when_the_launch_fails(gpu):
    calls = []

    def failing():
        calls.append("triton")
        raise RuntimeError("CUDA error: too many resources requested for launch")

    fns = {**candidates(calls), "triton": failing}
    with pytest.warns(RuntimeWarning, match=r"failed for shape key \('bank', \(64, 8\)\).*too many resources"):
        assert _backend.run("auto", CUDA, lambda: ("bank", (64, 8)), fns, auto="triton") == "torch"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _backend.run("auto", CUDA, lambda: ("bank", (64, 8)), fns, auto="triton") == "torch"
    assert calls == ["triton", "torch", "torch"] and _backend.launch_fallbacks() == [("bank", (64, 8))]
    with pytest.raises(RuntimeError, match="too many resources"):  # asked for by name: no fallback
        _backend.run("triton", CUDA, lambda: ("bank", (64, 8)), fns)


@pytest.mark.parametrize("switch", ["env", "torch"])
def test_reproducible_mode_pins_auto_without_timing(gpu, monkeypatch, switch):
    monkeypatch.setattr(_backend, "cuda_ms", lambda *a, **k: pytest.fail("timed in the reproducible mode"))
    monkeypatch.setitem(_backend._FASTEST, ("conv", 1), "torch")  # an earlier timing does not count either
    if switch == "env":
        monkeypatch.setenv("PGCNN_DETERMINISTIC", "1")
    else:
        monkeypatch.setattr(torch, "are_deterministic_algorithms_enabled", lambda: True)
    calls = []
    assert _backend.run("auto", CUDA, lambda: ("conv", 1), candidates(calls), "bf16") == "triton"
    _backend.set_auto_rule("tf32", "torch")  # a rule still decides
    assert _backend.run("auto", CUDA, lambda: ("conv", 2), candidates(calls), "tf32") == "torch"


def test_reproducible_mode_switch_is_checked(monkeypatch):
    from pgcnn_triton.kernels._launch import deterministic

    monkeypatch.setenv("PGCNN_DETERMINISTIC", "yes")
    with pytest.raises(ValueError, match="PGCNN_DETERMINISTIC must be 0 or 1, got 'yes'"):
        deterministic()


def test_interpreter_left_set_with_cuda_tensors_warns_once(gpu, monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(_backend, "_INTERPRETER_WARNED", [False], raising=False)
    with pytest.warns(RuntimeWarning, match="TRITON_INTERPRET=1 is set, so backend='auto' runs the torch path on CUDA"):
        assert _backend.resolve("auto", CUDA) == "torch"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _backend.resolve("auto", CUDA) == "torch"
    with pytest.raises(RuntimeError, match="cannot run on cuda tensors"):
        _backend.resolve("triton", CUDA)
