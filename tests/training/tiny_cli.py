"""The smallest real ``pgcnn train`` run (a few bundled digits, two elements, 3×3 kernels) and the checks
the CLI fault tests share: one line on stderr, files unchanged."""

import os
import subprocess
import sys
from pathlib import Path

from pgcnn_triton.cli import main

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--dataset", "bundled-mnist6-180", "--train-size", "8", "--hidden", "2", "-N", "2", "--kernel-size", "3",
        "--kernel-net", "SIREN", "--no-per-batch-element", "--batch-size", "4", "--no-progress"]


def train(out, *flags, max_batches: int = 1):
    """``pgcnn train`` into ``out`` on :data:`TINY` plus ``flags``, ``max_batches`` batches per pass; its status."""
    return main(["train", "--out-dir", str(out), *TINY, "--max-batches", str(max_batches), *flags])


def one_line_error(capsys):
    """The captured stderr: one ``pgcnn:`` line, no traceback, no internal error."""
    err = capsys.readouterr().err.strip()
    assert err.startswith("pgcnn: ") and "\n" not in err and "Traceback" not in err, err
    assert "internal error" not in err, err
    return err


def snapshot(directory: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())} if directory.exists() else {}


def run_cli(*args):
    """``pgcnn`` as a subprocess (one thread, no debug tracebacks), from the repository root."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PGCNN_DEBUG="")
    return subprocess.run([sys.executable, "-m", "pgcnn_triton.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=120)
