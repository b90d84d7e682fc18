"""Example scripts run twice: a finished run is shown again, an unfinished one continues, other settings
get a new run directory. Nothing is ever overwritten unasked.

``pgcnn train`` refuses an out-dir that holds a run (``--resume`` / ``--overwrite`` decide). The demo and
the example scripts are meant to be run again as they are, so :func:`train_or_show` decides for them:

* no run in the directory, or ``--resume`` / ``--overwrite`` given: train as ``pgcnn train`` would;
* a run of the same settings (every flag of :func:`~pgcnn_triton.training.args.resolved_flags`): a
  finished one is shown from its ``summary.json`` without training (the message says how to retrain),
  an unfinished one continues from its ``last.pt``;
* a run of other settings, or one that cannot be read: train into the next free sibling directory
  (``OUT_DIR-2``, ``OUT_DIR-3``, ...), saying so.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

from .args import out_dir_from_args, resolved_flags, train_config
from .checkpoint import load_checkpoint
from .experiment import train_from_args
from .resuming import completed_summary
from .rundir import existing_run_files
from .trainer import LAST


def _plain(value):
    return json.loads(json.dumps(value, default=str))


def stored_state(run_dir: Path) -> dict | None:
    """The ``last.pt`` of ``run_dir`` (``None`` if it has none or it cannot be read)."""
    try:
        state = load_checkpoint(run_dir / LAST)
    except Exception:  # noqa: BLE001 - unreadable for any reason: the run is left alone, not reused
        return None
    return state if isinstance(state, dict) and "epoch" in state else None


def same_settings(run_dir: Path, args: argparse.Namespace, state: dict | None = None) -> bool:
    """Whether ``run_dir`` holds nothing, or a run trained with exactly the settings of ``args``.

    ``state``: the run's :func:`stored_state` when the caller has loaded it already (else it is loaded here)."""
    if not existing_run_files(run_dir):
        return True
    if state is None:
        state = stored_state(run_dir)
    return state is not None and _plain(state.get("flags") or {}) == _plain(resolved_flags(args))


def free_directory(base: Path, fits) -> Path:
    """``base`` if ``fits(base)``, else the first of ``base-2``, ``base-3``, ... that fits."""
    candidate, n = base, 1
    while not fits(candidate):
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def train_or_show(args: argparse.Namespace, verbose: bool = True) -> dict:
    """:func:`~pgcnn_triton.training.train_from_args` for the example scripts (see the module docstring).

    Returns the run's summary (a finished run's stored one has ``already_complete`` set)."""
    if args.resume or getattr(args, "overwrite", False):
        return train_from_args(args, verbose=verbose)
    run = copy.copy(args)
    base = out_dir_from_args(args)
    run.out_dir = str(base)
    if not existing_run_files(base):
        return train_from_args(run, verbose=verbose)
    state = stored_state(base)  # read once: it decides both whether and how the run is reused
    if state is None or not same_settings(base, args, state):
        out_dir = free_directory(base, lambda d: d != base and same_settings(d, args))
        run.out_dir = str(out_dir)
        print(f"{base} holds a run with other settings (kept): training into {out_dir} instead "
              "(--overwrite replaces the old run)", flush=True)
        return train_from_args(run, verbose=verbose)
    run.resume = "last"
    # same flags, so the run's own epochs and patience: complete exactly when its summary matches last.pt
    summary = completed_summary(base, state, train_config(args))
    if summary is None:
        print(f"{base} holds an unfinished run of these settings (epoch {state['epoch']}): continuing it "
              "(--overwrite starts over)", flush=True)
        return train_from_args(run, verbose=verbose)
    print(f"{base} already holds this finished run (test acc {summary.get('test_acc', float('nan')):.4f}): "
          "shown without retraining. To train it again pass --overwrite, or --out-dir DIR for a new run",
          flush=True)
    return summary


__all__ = ["free_directory", "same_settings", "stored_state", "train_or_show"]
