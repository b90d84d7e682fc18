"""DistributedDataParallel: 2 gloo processes on CPU through torchrun, on a tiny CIFAR-format tarball."""

import os
import subprocess
import sys
from pathlib import Path

import torch

from pgcnn_triton.training import evaluate_checkpoint, load_checkpoint
from tests.data.formats import write_cifar10

ROOT = Path(__file__).resolve().parents[2]


def test_torchrun_two_processes_gloo(tmp_path):
    write_cifar10(tmp_path / "data", per_batch=8, test=6)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(ROOT / "examples" / "cifar10.py"), "--data-dir", str(tmp_path / "data"), "--out-dir", str(out),
           "--epochs", "1", "--batch-size", "4", "--max-batches", "2", "--hidden", "2", "-N", "2",
           "--kernel-size", "3", "--device", "cpu", "--no-progress"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    assert "[rank 0/2] finished" in log and "[rank 1/2] finished" in log, log
    last = load_checkpoint(out / "last.pt")
    assert last["world_size"] == 2 and len(last["rng"]) == 2 and last["epoch"] == 1
    result = evaluate_checkpoint(out / "best.pt", device="cpu")
    assert result["count"] == 6 and 0.0 <= result["acc"] <= 1.0
    assert torch.isfinite(torch.tensor(result["loss"]))
    assert (out / "metrics.csv").is_file() and (out / "summary.json").is_file()
