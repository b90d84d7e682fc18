"""The kernel table of issue 13 (benchmarks/conv_table.py): shapes read off the presets, rows on CPU."""

import functools
import json
import math
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import common  # noqa: E402
import conv_table  # noqa: E402
from common import Deadline  # noqa: E402
from pgcnn_triton.kernels import num_disk_taps  # noqa: E402

from pgcnn_triton.models.ckresnet import block_widths  # noqa: E402
from pgcnn_triton.models.presets import CKRESNET_PRESETS, GCNN_PRESETS  # noqa: E402

LAYER_CALLS = conv_table.layer_calls


@functools.cache
def recorded_calls(model: str) -> tuple[dict, ...]:
    """``conv_table.layer_calls(model)`` once per test process (each builds the full preset model: seconds)."""
    return tuple(LAYER_CALLS(model))


def expected_layers(model: str) -> list[tuple]:
    """(C_in·N_in, C_out·N_out, k, H, padding) of every group conv, from the preset's numbers alone."""
    cfg = (CKRESNET_PRESETS if model == "ckresnet" else GCNN_PRESETS)[conv_table.PRESET]
    n, k, size = cfg["num_elements"], cfg["kernel_size"], 32
    widths = block_widths(cfg["hidden"], cfg["num_blocks"], cfg["block_width_factors"])
    layers = [(cfg["in_channels"], cfg["hidden"] * n, k, size, k // 2)]  # the lifting conv (N_in = 1)
    width = cfg["hidden"]
    size //= 2 if 0 in cfg["pool_blocks"] else 1  # a pool after the lifting conv (not in CIFAR presets)
    for i, out in enumerate(widths, start=1):
        if model == "ckresnet":  # two 'same' convs and a 1×1 shortcut (partial: every block has one)
            layers += [(width * n, out * n, k, size, k // 2), (out * n, out * n, k, size, k // 2),
                       (width * n, out * n, 1, size, 0)]
        else:
            layers.append((width * n, out * n, k, size, k // 2))
        size //= 2 if i in cfg["pool_blocks"] else 1
        width = out
    if model == "ckresnet":
        layers.append((width * n, width * n, k, size, 0))  # the final 'valid' conv
    return layers


@pytest.mark.parametrize("model", conv_table.MODELS)
def test_layer_calls_match_the_preset_config(model):
    calls = recorded_calls(model)
    got = [(c["c_in"] * c["n_in"], c["c_out"] * c["n_out"], c["k"], c["h"], c["padding"]) for c in calls]
    assert Counter(got) == Counter(expected_layers(model))
    assert all(c["w"] == c["h"] and c["pool"] is None and c["bank_samples"] == 1 for c in calls)
    assert all(c["taps"] == num_disk_taps(c["k"]) for c in calls)


def test_distinct_shapes_and_targets(monkeypatch):
    monkeypatch.setattr(conv_table, "layer_calls", lambda model, tiny=False, size=None:
                        list(recorded_calls(model)) if not tiny and size is None else LAYER_CALLS(model, tiny, size))
    shapes = conv_table.distinct_shapes()
    calls = {m: recorded_calls(m) for m in conv_table.MODELS}
    # deduped: every recorded layer lands in exactly one shape, and no two shapes are equal
    assert sum(len(s.layers) for s in shapes) == sum(len(c) for c in calls.values())
    assert len(set(shapes)) == len(shapes) == len({(s.cols, s.rows, s.k, s.h, s.padding) for s in shapes})
    assert all(s.batch == 64 and s.flop() > 0 for s in shapes)
    targets = [(s.cols, s.rows, s.h) for s in shapes if conv_table.is_target(s)]
    # the three 7x7 CKResNet shapes with >= 256 channels (C·N), 'same' padding, listed first
    assert targets == [(256, 256, 32), (256, 512, 16), (512, 512, 16)]
    assert [conv_table.is_target(s) for s in shapes[:3]] == [True] * 3
    plan = conv_table.plan(shapes)
    # the targets first: bf16 S=1, bf16 S=B, TF32 S=1; then every other shape in bf16, S=1 and S=B
    assert plan[:9] == [(s, m, "bf16") for m in ("1", "B") for s in shapes[:3]] + [(s, "1", "tf32") for s in shapes[:3]]
    assert {(s, m) for s, m, p in plan if p == "bf16"} == {(s, m) for s in shapes for m in ("1", "B")}
    assert len(plan) == 2 * len(shapes) + 3 == 27
    # --parts targets / table-rest split the same order
    assert conv_table.plan(shapes, which="targets") == plan[:9] and conv_table.plan(shapes, which="rest") == plan[9:]


def test_budget_skips_rows_and_says_so(tmp_path, capsys):
    import torch

    rows = conv_table.run(torch.device("cpu"), Deadline(0), tmp_path / "r.jsonl", tiny=True)
    assert len(rows) == 1 and "skipped" in rows[0]["note"]
    skipped = len(conv_table.plan(conv_table.distinct_shapes(batch=conv_table.TINY_BATCH, tiny=True)))
    assert f"{skipped} row(s) skipped" in rows[0]["note"]


@pytest.mark.long(8)
def test_table_part_runs_on_cpu(tmp_path, monkeypatch):
    """``device_check --tiny --parts targets,table-rest``, in this process (conftest.py set TRITON_INTERPRET=1
    before triton was imported, as device_check.sh does on a CPU): the wrapper script is
    tests/test_device_check.py's, and a second interpreter start-up costs ~5 s of CPU."""
    import device_check

    monkeypatch.setenv("PGCNN_BACKEND", "auto")
    assert device_check.main(["--tiny", "--parts", "targets,table-rest", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "device_check.json").read_text())["table"]
    shapes = conv_table.distinct_shapes(batch=conv_table.TINY_BATCH, tiny=True)
    assert [(r["shape"], r["S"], r["precision"]) for r in rows] == \
        [(s.label(), m, p) for s, m, p in conv_table.plan(shapes)]  # targets (here: a stand-in) first
    assert {(r["shape"], r["S"]) for r in rows if r["precision"] == "bf16"} == \
        {(s.label(), m) for s in shapes for m in ("1", "B")}
    for row in rows:
        assert set(conv_table.COLUMNS) <= set(row), set(conv_table.COLUMNS) - set(row)
        assert row["note"] == "" and row["max_rel_err"] <= conv_table.TOL[row["precision"]]
        for p in conv_table.PASSES:
            triton_ms, cudnn_ms = row[f"{p}_triton_ms"], row[f"{p}_cudnn_ms"]
            assert 0 < triton_ms < math.inf and 0 < cudnn_ms < math.inf
            assert row[f"{p}_speedup"] == pytest.approx(cudnn_ms / triton_ms)
            assert row[f"{p}_tflops"] == pytest.approx(row["flop"] / triton_ms / 1e9)
            assert math.isnan(row[f"{p}_roofline"])  # no H200 roofline off the GPU
        total = [sum(row[f"{p}_{side}_ms"] for p in conv_table.PASSES) for side in ("cudnn", "triton", "triton_cl")]
        assert row["sum_speedup"] == pytest.approx(total[0] / total[1])
        # the channels-last variant: measured, checked against cuDNN, its speedups from its own times
        assert row["cl_max_rel_err"] <= conv_table.TOL[row["precision"]]
        assert row["sum_cl_speedup"] == pytest.approx(total[0] / total[2])
        assert all(row[f"{p}_cl_speedup"] == pytest.approx(row[f"{p}_cudnn_ms"] / row[f"{p}_triton_cl_ms"])
                   for p in conv_table.PASSES)
        assert (row["auto_fwd"], row["auto_bwd"], row["auto_ok"]) == ("triton", "triton", "n/a")  # interpreter
    # streamed as measured, and the summary table is in device_check.md
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == len(rows)
    report = (tmp_path / "device_check.md").read_text()
    assert "Kernel table (issue 13)" in report and all(r["shape"] in report for r in rows)


def test_timed_results_keep_the_gpu_order_and_reuse_the_cpu_results(monkeypatch):
    """On a CPU a row's results are its timed calls' (no second interpreter call); on the GPU both sides are
    timed before one more call of each gives the results (none held while the other side is timed)."""
    import torch

    calls = []

    def side(name):
        def call():
            calls.append(name)
            return torch.tensor([float(len(calls))])
        return call

    times, results = common.timed_results([side("triton"), side("cudnn")], [lambda r: 10 * r, lambda r: -r],
                                              torch.device("cpu"), reps=2, warmup=1)
    assert calls == ["triton"] * 3 + ["cudnn"] * 3
    assert [r.item() for r in results] == [30.0, -6.0]  # each side's last timed call, through its post
    assert len(times) == 2 and all(t >= 0 for t in times)
    calls.clear()  # the GPU branch, with a stand-in for the CUDA-event timer
    monkeypatch.setattr(common, "timed", lambda fn, device, reps, warmup=1: [fn() for _ in range(warmup + reps)] and 1.0)
    times, results = common.timed_results([side("triton"), side("cudnn")], [lambda r: r, lambda r: r],
                                              torch.device("cuda"), reps=2, warmup=1)
    assert calls == ["triton"] * 3 + ["cudnn"] * 3 + ["triton", "cudnn"] and times == [1.0, 1.0]
    assert [r.item() for r in results] == [7.0, 8.0]


def test_auto_verdict_compares_picks_with_the_faster_path():
    row = {"fwd_triton_ms": 1.0, "fwd_cudnn_ms": 2.0, "dgrad_triton_ms": 3.0, "dgrad_cudnn_ms": 1.0,
           "wgrad_triton_ms": 1.0, "wgrad_cudnn_ms": 2.0}  # bwd: triton 4.0 vs cuDNN 3.0
    assert conv_table.auto_verdict({**row, "auto_fwd": "triton", "auto_bwd": "torch"}) == "yes"
    assert conv_table.auto_verdict({**row, "auto_fwd": "torch", "auto_bwd": "torch"}) == "NO"
    assert conv_table.auto_verdict({**row, "auto_fwd": "triton", "auto_bwd": "triton"}) == "NO"
    # within the noise allowance the slower path is accepted
    close = {**row, "dgrad_triton_ms": 2.0 + 0.5 * conv_table.AUTO_NOISE * 3.0}
    assert conv_table.auto_verdict({**close, "auto_fwd": "triton", "auto_bwd": "triton"}) == "yes"
    assert conv_table.auto_verdict({**row, "auto_fwd": "?", "auto_bwd": "torch"}) == "n/a"
