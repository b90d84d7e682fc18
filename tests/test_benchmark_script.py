"""Smoke test of benchmarks/cpu_model.py: a tiny run prints the table with a positive ratio."""

import argparse
import contextlib
import importlib.util
import json
import re
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "cpu_model.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("pgcnn_benchmark_cpu_model", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def _library_state_kept(monkeypatch):
    """Restore what an in-process benchmark worker changes in this process: the CPU lowering globals (a
    ``dense`` row sets them) and torch's thread count (``--threads``)."""
    import torch
    from pgcnn_triton.kernels import group_conv_reference, group_conv_split

    monkeypatch.setattr(group_conv_reference, "CPU_LOWERING", group_conv_reference.CPU_LOWERING)
    monkeypatch.setattr(group_conv_split, "CHANNELS_LAST", group_conv_split.CHANNELS_LAST)
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.mark.long(4)
def test_cpu_model_benchmark_quick_run(capsys, monkeypatch):
    bench = _load_script()
    assert bench.default_image_size("mnist6-180-se2-partial") == 28
    assert bench.default_image_size("cifar10-se2-partial") == 32
    # The four model workers run in this process: a fresh interpreter each (for its own peak RSS, which
    # this smoke test does not check) costs ~4 s of CPU to import torch and the library. The convs worker
    # still runs as a subprocess, so the spawn / result-marker path is exercised.
    spawn, workers = bench._spawn, []

    def spawn_models_here(args, worker, payload=None, precision="fp32", lowering="auto"):
        workers.append((worker, precision, lowering))
        if worker != "model":
            return spawn(args, worker, payload, precision, lowering)
        worker_args = argparse.Namespace(**{**vars(args), "worker": worker, "precision": precision,
                                            "lowering": lowering})
        return json.loads(json.dumps(bench.worker_model(worker_args)))  # as the worker's JSON line

    monkeypatch.setattr(bench, "_spawn", spawn_models_here)
    with _library_state_kept(monkeypatch):
        result = bench.main(["--preset", "mnist6-180-se2-partial", "--batch", "2", "--repeats", "1",
                             "--warmup", "0", "--threads", "1"])
    assert workers == [("model", p, lowering) for p in ("fp32", "bf16") for lowering in ("auto", "dense")] \
        + [("convs", "fp32", "auto")]
    out = capsys.readouterr().out
    assert "input [2, 1, 28, 28]" in out  # channels from model.lift.in_channels, 28x28 for mnist presets
    assert "bf16 units:" in out and "CPU:" in out
    for prec in ("fp32", "bf16"):
        row = re.search(rf"^\| {prec} \| ([0-9.]+) \| ([0-9.]+) \| ([0-9.]+) \| ([0-9.]+) \| ([0-9.]+) \|",
                        out, re.MULTILINE)
        assert row, out
        auto, dense, nchw, cl, ratio = map(float, row.groups())
        assert min(auto, dense, nchw, cl) > 0 and abs(ratio - auto / nchw) <= 0.01 + 0.01 * ratio
        numbers = result[prec]
        assert numbers["model_ms"] > 0 and numbers["convs_ms"] > 0 and numbers["ratio"] > 0
    assert "Speed-up over the fp32 dense NCHW model" in out
    with pytest.raises(SystemExit, match="--precisions"):
        bench.parse_args(["--precisions", "fp16"])


def _load(name):
    path = SCRIPT.parent / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"pgcnn_benchmark_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.long(7)
def test_models_benchmark_quick_run(tmp_path, monkeypatch):
    import torch

    bench = _load("models")
    # The first row runs in its worker subprocess, as every row of the script does (the `--row` path and
    # its ROW line); the other two in this process: a fresh interpreter costs ~4 s of CPU to import torch
    # and the library, and their peak RSS, the reason for one process per row, is not checked here.
    run_row, rows_run = bench._run_row_subprocess, []

    def later_rows_here(spec, reps, warmup, threads):
        rows_run.append(bench.spec_name(spec))
        if len(rows_run) == 1:
            return run_row(spec, reps, warmup, threads)
        return json.loads(json.dumps(bench.measure(spec, torch.device("cpu"), reps, warmup), default=str))

    monkeypatch.setattr(bench, "_run_row_subprocess", later_rows_here)
    with _library_state_kept(monkeypatch):
        assert bench.main(["--quick", "--threads", "1", "--out", str(tmp_path)]) == 0
    assert rows_run == list(bench.QUICK)
    rows = json.loads((tmp_path / "models.json").read_text())
    names = [bench.spec_name(r) for r in rows]
    assert names == list(bench.QUICK)
    assert all(r["ms"] > 0 and r["peak_MiB"] > 0 for r in rows)
    assert rows[0]["vs_baseline"] == 1.0 and rows[1]["vs_baseline"] > 0  # baseline: fp32 eager dense
    report = (tmp_path / "models.md").read_text()
    assert "| ckresnet | infer | torch | bf16 | False | True | auto | 1 |" in report and "bf16 units:" in report
    names = [bench.spec_name(s) for s in bench.cpu_specs(8)]
    assert len(names) == len(set(names)) and "gcnn/train/torch/bf16/compiled" in names


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


def test_cpu_layouts_times_every_conv_of_the_preset(capsys):
    bench = _load("cpu_layouts")
    rows = bench.main(["--preset", "mnist6-180-se2-partial", "--batch", "1", "--size", "28", "--repeats", "1"])
    out = capsys.readouterr().out
    names = [r["name"] for r in rows if r["dtype"] == "fp32"]
    assert names[0] == "lift" and "last_conv" in names and len(names) == len(set(names))
    assert {r["dtype"] for r in rows} == {"fp32", "bf16"}
    assert all(r[v] > 0 for r in rows for v in bench.VARIANTS)
    assert out.count("| lift |") == 2 and "bf16 units:" in out


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
