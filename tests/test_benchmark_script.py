"""Smoke test of benchmarks/cpu_model.py: a tiny run prints the table with a positive ratio."""

import importlib.util
import re
from pathlib import Path

import pytest

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


def _load(name):
    path = SCRIPT.parent / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"pgcnn_benchmark_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.long(15)
def test_models_benchmark_quick_run(tmp_path):
    bench = _load("models")
    assert bench.main(["--quick", "--threads", "1", "--out", str(tmp_path)]) == 0
    rows = __import__("json").loads((tmp_path / "models.json").read_text())
    names = [bench.spec_name(r) for r in rows]
    assert names == ["ckresnet/train/torch/fp32/eager", "ckresnet/infer/torch/fp32/eager",
                     "ckresnet/infer/torch/fp32/eager/frozen"]
    assert all(r["ms"] > 0 and r["peak_MiB"] > 0 and r["vs_baseline"] > 0 for r in rows)
    assert "| ckresnet | infer | torch | fp32 | False | True | 1 |" in (tmp_path / "models.md").read_text()


def test_models_select_names_rows_and_rejects_unknown():
    bench = _load("models")
    specs = bench.gpu_specs()
    picked = bench.select(specs, ["gcnn/train/triton/bf16/compiled", "ckresnet/infer/triton/bf16/eager/frozen"])
    assert [bench.spec_name(s) for s in picked] == ["gcnn/train/triton/bf16/compiled",
                                                    "ckresnet/infer/triton/bf16/eager/frozen"]
    import pytest

    with pytest.raises(ValueError, match="unknown rows"):
        bench.select(specs, ["ckresnet/train/triton/fp64/eager"])


def test_scaling_sweeps_follow_n_and_theta():
    import torch

    scaling = _load("scaling")
    rows = scaling.run(torch.device("cpu"), batch=1, channels=2, size=8, reps=1)
    assert [r["N"] for r in rows if r["sweep"] == "N"] == list(scaling.N_VALUES)
    # dynamic mode: n = ceil(8θ) output elements
    assert [r["n_out"] for r in rows if r["sweep"] == "theta"] == [1, 2, 4, 6, 8]
    assert all(r["ms"] > 0 for r in rows)


def test_tap_sparse_comparison_computes_the_same_conv():
    bench = _load("cpu_tap_sparse")
    dense, sparse = bench.main(batch=1, channels=4, size=9, k=7)  # raises if the two convs differ
    assert dense > 0 and sparse > 0


def test_models_shape_mode_rows_run_and_compare_with_static():
    bench = _load("models")
    import torch

    specs = bench.mode_specs(2, "tiny", compile_static=False)
    assert [bench.spec_name(s) for s in specs] == [
        "tiny/train/torch/fp32/eager/static@0.5", "tiny/train/torch/fp32/eager/dynamic@0.5",
        "tiny/train/torch/fp32/eager/static@1.0", "tiny/train/torch/fp32/eager/dynamic@1.0"]
    model = bench.build("tiny", torch.device("cpu"), "dynamic", 0.5)
    assert [s.theta.item() for s in model.samplers() if getattr(s, "theta", None) is not None] == [0.5] * 5
    rows = [bench.measure(s, torch.device("cpu"), 1, 0) for s in specs]
    bench.add_static_ratios(rows)
    assert all(r["ms"] > 0 for r in rows)
    assert rows[0]["vs_static"] == 1.0 and rows[1]["vs_static"] == rows[0]["ms"] / rows[1]["ms"]
