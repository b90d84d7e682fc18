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
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "device_check.sh"), "--out", str(tmp_path)],
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
