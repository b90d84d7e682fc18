"""DistributedDataParallel: 2 gloo processes on CPU through torchrun (one launch of tests/training/ddp_worker.py).

DDP's contract: after every step all ranks hold the same parameters, and a step on per-rank batches
B_0, B_1 (size b each) equals one optimizer step of a single process on the concatenated batch [B_0; B_1]
of size 2b: DDP averages the ranks' gradients, and with a mean loss
∇ mean_{2b}(ℓ) = ½ (∇ mean_{B_0}(ℓ) + ∇ mean_{B_1}(ℓ)) when no layer couples the samples of a batch.
Adam then sees the same gradient, so it makes the same update.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from pgcnn_triton.training import evaluate_checkpoint, load_checkpoint
from tests.data.formats import write_cifar10
from tests.training.ddp_worker import EXACT_TRAIN, exact_model, synthetic_data

ROOT = Path(__file__).resolve().parents[2]


def run_workers(tmp_path, **env_extra):
    """One torchrun launch of ddp_worker.py; returns its output folder and log."""
    write_cifar10(tmp_path / "data", per_batch=8, test=6)
    out = tmp_path / "run"
    out.mkdir()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(ROOT / "tests" / "training" / "ddp_worker.py"), str(tmp_path / "data"), str(out)]
    # keep an inherited PYTHONPATH (scripts/mutation_check.py reaches the workers through it)
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    # PGCNN_DUMP_AFTER: a worker still alive after 120 s prints its threads' stacks into the log and exits
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=path, PGCNN_DUMP_AFTER="120", **env_extra)
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    return out, log


def replay_concatenated(init: dict, rank_batches: list[list[list[int]]]) -> dict:
    """One process, plain Adam on mean cross-entropy, step k on [rank 0's batch k; rank 1's batch k]."""
    model = exact_model()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(init[name])
    model.train()
    train = synthetic_data().train
    opt = torch.optim.Adam(model.parameters(), lr=EXACT_TRAIN["lr"])  # constant lr, no regulariser
    steps = list(zip(*rank_batches))
    assert len(steps) == 4 and all(len(idx) == EXACT_TRAIN["batch_size"] for step in steps for idx in step)
    for step in steps:
        x, y = train[[i for idx in step for i in idx]]
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return {k: v.detach() for k, v in model.named_parameters()}


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


@pytest.mark.long(15)
def test_torchrun_two_processes_gloo(tmp_path):
    """One torchrun launch (~15 s on 2 cores, mostly process start-up and imports) checks three things."""
    out, log = run_workers(tmp_path)
    check_cli_run(out, log)
    check_ranks_identical(out)
    check_equals_one_process(out)


def check_cli_run(out, log):
    """The command-line run (examples/cifar10.py under torchrun): rank 0 writes checkpoints and metrics."""
    assert "[rank 0/2] finished" in log and "[rank 1/2] finished" in log, log
    last = load_checkpoint(out / "cli" / "last.pt")
    assert last["world_size"] == 2 and len(last["rng"]) == 2 and last["epoch"] == 1
    # the tiny fake CIFAR files of run_workers do not have the official md5s
    result = evaluate_checkpoint(out / "cli" / "best.pt", device="cpu", verify_data=False)
    assert result["count"] == 6 and 0.0 <= result["acc"] <= 1.0
    assert torch.isfinite(torch.tensor(result["loss"]))
    assert (out / "cli" / "metrics.csv").is_file() and (out / "cli" / "summary.json").is_file()


def check_ranks_identical(out):
    """Both ranks of the command-line run (se2-partial, random sampling, BatchNorm) end with the same parameters.

    Exact: DDP broadcasts rank 0's initial parameters, every step both ranks apply the same allreduced
    gradient (gloo hands every rank the same bytes) with the same Adam, on the same CPU.
    """
    cli = [torch.load(out / f"cli_rank{r}.pt") for r in (0, 1)]
    assert cli[0].keys() == cli[1].keys() and len(cli[0]) > 0
    for name in cli[0]:
        assert torch.equal(cli[0][name], cli[1][name]), (name, rel_err(cli[1][name], cli[0][name]))


def check_equals_one_process(out):
    """Deterministic model (C_4 grid, partial=False, layer norm, no dropout: no randomness, no coupling between
    samples): both ranks after 4 DDP steps equal one process that takes each step on [rank 0's batch; rank 1's]."""
    runs = [torch.load(out / f"exact_rank{r}.pt") for r in (0, 1)]
    for epoch in (0, 1):  # per epoch the ranks read disjoint halves of the 8 training samples
        shards = [[i for idx in run["batches"][2 * epoch:2 * epoch + 2] for i in idx] for run in runs]
        assert len(shards[0]) == len(shards[1]) == 4 and set(shards[0]) | set(shards[1]) == set(range(8)), shards
    for name in runs[0]["final"]:
        assert torch.equal(runs[0]["final"][name], runs[1]["final"][name]), name
        assert not torch.equal(runs[0]["final"][name], runs[0]["init"][name]), name  # it trained
    reference = replay_concatenated(runs[0]["init"], [runs[0]["batches"], runs[1]["batches"]])
    # per parameter ‖θ_DDP − θ_ref‖ / ‖θ_ref‖: the allreduce and the 2b-sample mean add in different orders
    # (float32 rounding, ~1e-7 relative on the gradient) and Adam passes that on: measured ≤ 6.3e-7 (160× margin).
    # Without gradient averaging (DDP replaced by the identity) every parameter is off by ≥ 2e-3 (max 1.7).
    # No parameter has an identically-zero gradient (num_blocks=0: no bias cancelled by an instance norm),
    # whose Adam update would be sign(rounding noise)·lr.
    errors = {name: rel_err(runs[0]["final"][name], reference[name]) for name in reference}
    assert max(errors.values()) <= 1e-4, errors


REFUSAL_WORKER = """
import runpy, sys
from pathlib import Path
example = runpy.run_path(str(Path(sys.argv[1]) / "examples" / "cifar10.py"), run_name="example")
example["main"](["--data-dir", sys.argv[2], "--out-dir", sys.argv[3], "--resume", sys.argv[4], "--epochs", "1",
                 "--batch-size", "4", "--max-batches", "2", "--hidden", "2", "-N", "2", "--kernel-size", "3",
                 "--device", "cpu", "--no-progress", "--no-verify-data"])
"""


@pytest.mark.long(10)
def test_refused_out_dir_under_torchrun_stops_every_rank(tmp_path):
    """--resume from another directory into an --out-dir that holds a run: rank 0 refuses, and every rank
    stops with it (a refusal raised on rank 0 alone left rank 1 waiting for it until the process-group timeout)."""
    write_cifar10(tmp_path / "data", per_batch=8, test=6)
    held = tmp_path / "held"
    held.mkdir()
    (held / "last.pt").write_bytes(b"a run's checkpoint")
    (tmp_path / "other").mkdir()
    worker = tmp_path / "refusal_worker.py"
    worker.write_text(REFUSAL_WORKER)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(worker),
           str(ROOT), str(tmp_path / "data"), str(held), str(tmp_path / "other" / "last.pt")]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    launch = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)
    try:
        log, _ = launch.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(launch.pid, signal.SIGKILL)                 # torchrun and its workers
        pytest.fail(f"the ranks did not stop together (still running after 90 s): {launch.communicate()[0]}")
    assert launch.returncode != 0 and "already holds a run" in log, log
    assert (held / "last.pt").read_bytes() == b"a run's checkpoint"
