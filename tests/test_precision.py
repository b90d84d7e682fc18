"""The precision policy: bf16 autocast where the CPU has bf16 units (detection mocked both ways), the
``--amp`` / ``--no-amp`` override, and what a run records."""

import contextlib
import json

import pytest
import torch

from pgcnn_triton import precision
from pgcnn_triton.training import Trainer, add_train_arguments, build_model, train_config
from tests.training.tiny import tiny_config, tiny_data, tiny_spec

NO_BF16 = {"avx2": True, "avx512_f": True, "avx512_bf16": False, "amx_bf16": False, "cpu_name": "Old CPU"}
AMX = dict(NO_BF16, amx_bf16=True, amx_tile=True, cpu_name="Xeon with AMX")
ZEN4 = dict(NO_BF16, avx512_bf16=True, cpu_name="Zen 4")


@pytest.fixture
def cpu_caps(monkeypatch):
    def set_caps(caps):
        monkeypatch.setattr(precision, "cpu_capabilities", lambda: dict(caps))
    return set_caps


def test_detection_reads_torchs_cpu_capabilities(cpu_caps):
    real = torch.cpu.get_capabilities()
    expected = "amx_bf16" if real.get("amx_bf16") else "avx512_bf16" if real.get("avx512_bf16") else None
    assert precision.cpu_bf16_units() == expected
    cpu_caps(AMX)
    assert precision.cpu_bf16_units() == "amx_bf16"
    cpu_caps(ZEN4)
    assert precision.cpu_bf16_units() == "avx512_bf16"
    cpu_caps(NO_BF16)
    assert precision.cpu_bf16_units() is None


@pytest.mark.parametrize("caps, expected", [(AMX, True), (ZEN4, True), (NO_BF16, False), ({}, False)])
def test_cpu_default_follows_bf16_units_and_flags_override(cpu_caps, caps, expected):
    cpu_caps(caps)
    assert precision.default_amp("cpu") is expected
    assert precision.resolve_amp(torch.device("cpu")) is expected
    assert precision.resolve_amp("cpu", True) is True and precision.resolve_amp("cpu", False) is False
    context = precision.autocast("cpu")
    if expected:
        with context:
            assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
            assert torch.mm(torch.randn(2, 2), torch.randn(2, 2)).dtype == torch.bfloat16
    else:
        assert isinstance(context, contextlib.nullcontext)
    assert isinstance(precision.autocast("cpu", enabled=False), contextlib.nullcontext)
    assert precision.default_amp("cuda") is True  # GPUs: always bf16 autocast


def test_bad_amp_and_device_arguments():
    with pytest.raises(TypeError, match="amp must be True, False or None"):
        precision.resolve_amp("cpu", "yes")
    with pytest.raises(TypeError, match="device must be"):
        precision.default_amp(0)


@pytest.mark.parametrize("argv, expected", [([], None), (["--amp"], True), (["--no-amp"], False)])
def test_amp_flag_defaults_to_the_policy(argv, expected):
    import argparse

    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    assert train_config(args).amp is expected
    assert "AVX512-BF16" in parser.format_help()


@pytest.mark.parametrize("caps, amp, on, source", [
    (AMX, None, True, "default"), (NO_BF16, None, False, "default"), (AMX, False, False, "flag"),
    (NO_BF16, True, True, "flag")])
def test_trainer_uses_and_records_the_choice(tmp_path, capsys, cpu_caps, caps, amp, on, source):
    cpu_caps(caps)
    torch.manual_seed(0)
    spec = tiny_spec()
    trainer = Trainer(build_model(spec), tiny_data(), tiny_config(epochs=1, amp=amp, progress=True), tmp_path,
                      model_spec=spec)
    seen = []
    trainer.net.register_forward_hook(lambda m, i, o: seen.append(torch.is_autocast_enabled("cpu")))
    trainer.fit()
    assert seen and all(s is on for s in seen)
    record = json.loads((tmp_path / "summary.json").read_text())["precision"]
    assert record == dict(amp=on, amp_dtype="bfloat16" if on else None, amp_source=source, device="cpu",
                          cpu=precision.cpu_model_name(), cpu_bf16_units=precision.cpu_bf16_units())
    line = capsys.readouterr()
    assert "precision: " + ("bfloat16 autocast" if on else "fp32 (no autocast)") in line.out + line.err
