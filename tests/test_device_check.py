"""benchmarks/device_check.sh runs here (tiny shapes through the interpreter), so it is ready for the GPU."""

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.long(54)
def test_device_check_script_runs_on_cpu(tmp_path):
    env = {**os.environ, "PGCNN_BACKEND": "auto"}
    # every part but the profile, which has its own test below
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "device_check.sh"), "--out", str(tmp_path),
                           "--parts", "correctness,models,scaling,kernels"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((tmp_path / "device_check.json").read_text())
    ops = {row["op"].split(" ")[0] for row in result["correctness"]}
    assert {"group_conv", "group_conv+maxpool", "kernel_bank", "group_pool", "global_max_pool"} <= ops
    assert all(row["ok"] == "yes" and row["rel_err"] <= row["tol"] for row in result["correctness"])
    assert {row["precision"] for row in result["conv"]} == {"bf16", "tf32"}
    assert all(row["triton_fwd"] > 0 and row["cudnn_step"] > 0 for row in result["conv"])
    # every end-to-end path (train/infer, torch/triton, eager/compiled, frozen) ran on the tiny model
    assert result["models"] and all(row["ms"] > 0 for row in result["models"])
    assert any(r["compile"] and r["backend"] == "triton" for r in result["models"])
    assert any(r.get("frozen") for r in result["models"])
    assert {r["sweep"] for r in result["scaling"]} == {"N", "theta"}
    # rows were streamed as they were measured (a run cut short by its lease keeps them)
    streamed = (tmp_path / "results.jsonl").read_text().splitlines()
    assert len(streamed) == len(result["correctness"]) + len(result["models"]) + len(result["scaling"]) \
        + len(result["conv"]) + len(result["memory"])
    # the table is the last thing printed, and the Markdown copy matches it
    assert proc.stdout.rstrip().endswith((tmp_path / "device_check.md").read_text().rstrip().splitlines()[-1])


@pytest.mark.long(20)
def test_device_check_profile_part_runs_on_cpu(tmp_path):
    """The profile part alone (issue 12): the tiny compiled step's CPU ops, streamed and tabulated."""
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import models

    from pgcnn_triton.nn.conv import _KernelConv

    env = {**os.environ, "PGCNN_BACKEND": "auto"}
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "device_check.sh"), "--parts", "profile",
                           "--out", str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = json.loads((tmp_path / "device_check.json").read_text())["profile"]
    assert {r["row"] for r in rows} == {"tiny/train/triton/bf16/compiled"}
    (summary,) = [r for r in rows if r["table"] == "summary"]
    assert summary["source"] == "cpu ops (self time)" and summary["steps"] == 1 and not summary["note"]
    assert 0 < summary["busy_ms"] <= summary["wall_ms"] * 1.001 and summary["step_ms"] > 0
    assert summary["conv_ms"] > 0 and summary["conv_ms"] + summary["other_ms"] == pytest.approx(summary["kernel_ms"])
    kernels = [r for r in rows if r["table"] == "kernels"]
    assert 0 < len(kernels) <= 15 and [r["rank"] for r in kernels] == list(range(1, len(kernels) + 1))
    assert all(a["ms_per_step"] >= b["ms_per_step"] for a, b in zip(kernels, kernels[1:]))
    # one group conv forward per conv layer per step: the per-step counts divide by the profiled steps
    layers = sum(isinstance(m, _KernelConv) for m in models.build("tiny", "cpu").modules())
    forward = [r for r in kernels if r["name"] in ("pgcnn_triton::group_conv2d", "pgcnn_triton::group_conv2d_pool")]
    assert sum(r["calls_per_step"] for r in forward) == layers
    assert {"conv", "kernel-bank"} <= {r["kind"] for r in rows if r["table"] == "kinds"}
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == len(rows)  # streamed as measured
    assert "Step profile" in (tmp_path / "device_check.md").read_text()
