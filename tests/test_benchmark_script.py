"""Smoke test of benchmarks/cpu_model.py: a tiny run prints the table with a positive ratio."""

import importlib.util
import re
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "cpu_model.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("pgcnn_benchmark_cpu_model", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cpu_model_benchmark_quick_run(capsys):
    bench = _load_script()
    assert bench.default_image_size("mnist6-180-se2-partial") == 28
    assert bench.default_image_size("cifar10-se2-partial") == 32
    result = bench.main(["--preset", "mnist6-180-se2-partial", "--batch", "2", "--repeats", "1",
                         "--warmup", "0", "--threads", "1"])
    out = capsys.readouterr().out
    match = re.search(r"^\| ratio model / convs \| ([0-9.]+) \|$", out, re.MULTILINE)
    assert match, out
    assert float(match.group(1)) > 0
    assert result["ratio"] > 0 and result["model_ms"] > 0 and result["convs_ms"] > 0
    assert "input [2, 1, 28, 28]" in out  # channels from model.lift.in_channels, 28x28 for mnist presets
    for row in ("| model fwd+bwd (ms) |", "| sum of bare dense convs fwd+bwd (ms) |",
                "| largest single conv fwd+bwd (ms) |", "| peak memory, model fwd+bwd (MiB) |"):
        assert row in out
