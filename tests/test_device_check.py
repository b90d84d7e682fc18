"""benchmarks/device_check.sh runs here (tiny shapes through the interpreter; its profile part in this process), so it is
ready for the GPU."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import device_check  # noqa: E402
import device_correctness  # noqa: E402
import models  # noqa: E402
import scaling  # noqa: E402
from common import Deadline  # noqa: E402

# The tiny model rows but the compiled one: test_device_check_profile_part_runs_on_cpu profiles that very
# step (tiny/train/triton/bf16/compiled, the same models.make_step), so the suite pays its aot_eager
# compile (~10 s of CPU) once, not twice.
EAGER_TINY_ROWS = [models.spec_name(s) for s in models.tiny_specs() if not s["compile"]]


@pytest.mark.long(16)
def test_device_check_script_runs_on_cpu(tmp_path):
    env = {**os.environ, "PGCNN_BACKEND": "auto"}
    # every part but the profile and the table, which have their own tests; in the order given
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "device_check.sh"), "--out", str(tmp_path),
                           "--parts", "models,correctness,scaling,kernels", "--select", ",".join(EAGER_TINY_ROWS)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((tmp_path / "device_check.json").read_text())
    ops = {row["op"].split(" ")[0] for row in result["correctness"]}
    assert {"group_conv", "group_conv+maxpool", "group_conv+meanpool", "kernel_bank", "group_pool",
            "global_max_pool"} <= ops
    rows = {(row["op"], row["precision"]) for row in result["correctness"]}
    # the split-K bank gradient, the channels-last input gradient, fused max pooling in bf16 too
    assert {("group_conv S=1 split=3 dbank", "fp32"), ("group_conv S=B split=3 dbank", "fp32"),
            ("group_conv channels-last S=B dx", "fp32"), ("group_conv+maxpool S=B dx", "bf16")} <= rows
    assert all(row["ok"] == "yes" and row["rel_err"] <= row["tol"] for row in result["correctness"])
    assert {row["precision"] for row in result["conv"]} == {"bf16", "tf32"}
    assert all(row["triton_fwd"] > 0 and row["cudnn_step"] > 0 for row in result["conv"])
    # every eager end-to-end path (train/infer, torch/triton, frozen) ran on the tiny model, in the order
    # selected; the compiled Triton step is the profile test's row
    assert [models.spec_name(r) for r in result["models"]] == EAGER_TINY_ROWS
    assert all(row["ms"] > 0 for row in result["models"])
    assert {r["task"] for r in result["models"]} == {"train", "infer"}
    assert {r["backend"] for r in result["models"]} == {"torch", "triton"}
    assert any(r.get("frozen") for r in result["models"])
    # the tiny sweeps' points, through the Triton interpreter
    assert [(r["sweep"], r["N"], r["theta"]) for r in result["scaling"]] == \
        [("N", n, 1.0) for n in scaling.TINY_N_VALUES] + [("theta", 8, t) for t in scaling.TINY_THETAS]
    assert all(r["ms"] > 0 and r["backend"] == "triton" for r in result["scaling"])
    # rows were streamed as they were measured (a run cut short by its time limit keeps them)
    streamed = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(streamed) == len(result["correctness"]) + len(result["models"]) + len(result["scaling"]) \
        + len(result["conv"]) + len(result["memory"])
    # ... in the order of --parts: the model rows before the correctness rows, the scaling rows after them
    n_models, n_checks = len(result["models"]), len(result["correctness"])
    assert all("task" in r for r in streamed[:n_models])
    assert all("op" in r for r in streamed[n_models:n_models + n_checks])
    assert "sweep" in streamed[n_models + n_checks]
    # the table is the last thing printed, and the Markdown copy matches it
    assert proc.stdout.rstrip().endswith((tmp_path / "device_check.md").read_text().rstrip().splitlines()[-1])


@pytest.mark.long(15)
def test_device_check_profile_part_runs_on_cpu(tmp_path, monkeypatch):
    """The profile part alone (issue 12): the tiny compiled step's CPU ops, streamed and tabulated.

    In this process (conftest.py set TRITON_INTERPRET=1 before triton was imported, as device_check.sh does
    on a CPU): the wrapper script is test_device_check_script_runs_on_cpu's, and a second interpreter
    start-up costs ~5 s of CPU."""
    from pgcnn_triton.nn.conv import _KernelConv

    monkeypatch.setenv("PGCNN_BACKEND", "auto")
    assert device_check.main(["--parts", "profile", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "device_check.json").read_text())["profile"]
    # the compiled Triton training step (the other test leaves it out of the models part): no note, so it
    # did not fall back to the eager step
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


def test_parts_default_order_puts_the_decisive_rows_first():
    """Issue 27: the table's targets, then the profile, then the model rows; the rest after them."""
    assert device_check.part_order(",".join(device_check.PARTS))[:3] == ["targets", "profile", "models"]
    assert device_check.part_order("models,table,targets") == ["models", "targets", "table-rest"]
    with pytest.raises(ValueError, match=r"unknown \['tabel'\]"):
        device_check.part_order("targets,tabel")
    with pytest.raises(SystemExit) as exc:  # the CLI says so before any part runs
        device_check.main(["--parts", "tabel", "--out", "/nonexistent/never-created"])
    assert exc.value.code == 2


def test_each_part_leaves_the_later_parts_their_reserve():
    order = ["targets", "profile", "models"]
    budget = Deadline(300)
    deadlines = device_check.part_deadlines(order, budget, reserve=True)
    reserve = device_check.RESERVE_S
    expected = {"targets": reserve["profile"] + reserve["models"], "profile": reserve["models"], "models": 0.0}
    for part, kept in expected.items():
        assert deadlines[part].end == pytest.approx(budget.end - kept)
    # the tiny CPU run reserves nothing; an unbounded budget stays unbounded
    assert all(d.end == budget.end for d in device_check.part_deadlines(order, budget, reserve=False).values())
    assert device_check.part_deadlines(order, Deadline(None), reserve=True)["targets"].left() == float("inf")


def test_device_model_rows_cover_the_issue_in_order():
    specs = models.device_specs()
    names = [models.spec_name(s) for s in specs]
    assert len(names) == len(set(names))
    assert names[:2] == ["ckresnet/train/triton/bf16/compiled", "ckresnet/train/torch/fp32/eager"]
    assert names.index("ckresnet/train/torch/tf32/eager") < names.index("gcnn/train/triton/bf16/compiled")
    assert names[-1] == "gcnn/train/torch/fp32/eager"  # 72 GB on 2026-11-28: last
    # CKResNet and GCNN, train and frozen inference, bf16 and TF32, eager and compiled
    for model in ("ckresnet", "gcnn"):
        mine = [s for s in specs if s["model"] == model]
        assert {(s["task"], bool(s["frozen"])) for s in mine} >= {("train", False), ("infer", True)}
        assert {s["precision"] for s in mine} == {"fp32", "bf16", "tf32"}
        assert {bool(s["compile"]) for s in mine if s["task"] == "train"} == {True, False}
        assert {bool(s["compile"]) for s in mine if s["frozen"]} == {True, False}
        # each task's vs_baseline has its fp32 eager torch-backend row
        for task in ("train", "infer"):
            assert f"{model}/{task}/torch/fp32/eager" in names


def test_pooled_rows_compare_gradients_through_the_kernels_own_argmax(monkeypatch):
    """Near-tied pooled elements (bank rows n = 0 and 1 differ by 1e-12) are exact ties once rounded to
    fp32: the kernel takes the first, the float64 reference the second. A correct kernel then routes the
    gradient elsewhere than the reference; the pooled rows must still pass (they compare through the
    kernel's arg-max), and y must match the reference's max."""
    real = device_correctness.conv_inputs

    def near_ties(b, c, n, k, h, shared, device, dtype=torch.float64):
        x, bank, bias = real(b, c, n, k, h, shared, device, dtype)
        bank = bank.reshape(bank.shape[0], c, n, *bank.shape[2:]).clone()
        bank[:, :, 1] = bank[:, :, 0] * (1 + 1e-12)
        return x.abs(), bank.reshape(bank.shape[0], c * n, *bank.shape[3:]), bias

    monkeypatch.setattr(device_correctness, "conv_inputs", near_ties)
    rows = device_correctness.check_conv_pooled(torch.device("cpu"), (1, 2, 2, 3, 4), False, "fp32", "max")
    assert [op for op, *_ in rows] == ["group_conv+maxpool S=B y", "group_conv+maxpool S=B dx",
                                       "group_conv+maxpool S=B dbank"]
    assert all(err <= device_check.TOL["fp32"] for *_, err in rows), rows
