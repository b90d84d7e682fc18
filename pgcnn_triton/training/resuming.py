"""Honest ``--resume``: read the checkpoint with a one-line error, and compare the run's flags with the stored ones.

A resumed run continues the stored one only if it trains the same thing. Every flag of
:func:`~pgcnn_triton.training.args.resolved_flags` must match, except the few of
:data:`~pgcnn_triton.training.args.RESUME_MAY_CHANGE` (``--epochs`` to extend a run, the learning rates,
``--gradient-clip``, ``--patience``), which take effect in the continued run and are recorded.
"""

from __future__ import annotations

import json
from pathlib import Path

from .args import RESUME_MAY_CHANGE, flag_name
from .checkpoint import load_checkpoint
from .records import plural


def read_checkpoint(path: str | Path, alternative: str) -> dict:
    """:func:`load_checkpoint`, with any unreadable file turned into a ``ValueError`` naming it and ``alternative``.

    Errors that already say what is wrong (``ValueError``, ``OSError``: a missing file, a checksum) pass
    through unchanged; what torch raises for a zero-length, truncated or non-checkpoint file does not.
    """
    try:
        return load_checkpoint(path)
    except (ValueError, OSError):
        raise
    except Exception as error:  # noqa: BLE001 - EOFError, the zip reader's RuntimeError, UnpicklingError, ...
        raise ValueError(f"{path} cannot be read as a checkpoint ({type(error).__name__}): it is empty, truncated "
                         f"or not a checkpoint written by pgcnn_triton; {alternative}") from None


def _text(value) -> str:
    return "unset" if value is None else str(value)


def compare_flags(stored: dict | None, given: dict, path: str | Path, stored_config: dict | None = None) -> dict:
    """The allowed changes ``{flag: (stored, given)}`` between a checkpoint's flags and the run's.

    Raises a ``ValueError`` naming every other flag that differs, its stored value and the given one.
    A checkpoint of an older version without stored flags is compared on its training configuration.
    """
    if not stored:  # written before flags were stored: the training settings are all there is
        config = stored_config or {}
        stored = {k: config[k] for k in given if k in config}
        given = {k: v for k, v in given.items() if k in stored}
    changes, refused = {}, []
    for name in dict.fromkeys([*given, *stored]):
        old, new = stored.get(name), given.get(name)
        if old == new:
            continue
        if name in RESUME_MAY_CHANGE:
            changes[name] = (old, new)
        else:
            refused.append(f"{flag_name(name)}: stored {_text(old)}, given {_text(new)}")
    if refused:
        allowed = ", ".join(flag_name(name) for name in RESUME_MAY_CHANGE)
        raise ValueError(f"--resume: {path} was trained with other settings ({'; '.join(refused)}); pass the "
                         f"values it was started with (only {allowed} may change on --resume), or start a new "
                         f"run with another --out-dir")
    return changes


def describe_changes(changes: dict) -> str:
    """``"--epochs 3 → 5, --lr 0.001 → 0.0005"``."""
    return ", ".join(f"{flag_name(name)} {_text(old)} → {_text(new)}" for name, (old, new) in changes.items())


def run_is_complete(state: dict, config) -> bool:
    """Whether a run whose ``last.pt`` holds ``state`` has nothing left to train under ``config``: it
    reached ``config.epochs`` or stopped early (and a larger ``patience`` does not reopen it)."""
    stopped = state.get("stopped")
    if stopped == "early_stopping" and state.get("epochs_since_best", config.patience) < config.patience:
        stopped = None
    return stopped is not None or int(state.get("epoch") or 0) >= config.epochs


def completed_summary(out_dir: str | Path, state: dict, config) -> dict | None:
    """The stored ``summary.json`` of a complete run (:func:`run_is_complete`) whose summary matches its
    ``last.pt``; ``None`` when there is something left to do (training, or the final test)."""
    if not run_is_complete(state, config):
        return None
    try:
        summary = json.loads((Path(out_dir) / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict) or summary.get("epochs_run") != state.get("epoch"):
        return None
    return dict(summary, out_dir=str(out_dir), already_complete=True)


def complete_message(out_dir: str | Path, summary: dict, config, flags: bool = True) -> str:
    """What resuming a complete run says: nothing to train, its result, and how to train more or again.
    ``flags``: word the options as command-line flags (else as ``Trainer`` arguments)."""
    epochs = summary.get("epochs_run")
    early = summary.get("stopped") == "early_stopping"
    more = (f"{'--patience' if flags else 'TrainConfig(patience=...)'} above {config.patience}" if early
            else f"{'--epochs' if flags else 'TrainConfig(epochs=...)'} above {epochs}")
    again = "--overwrite" if flags else "overwrite=True"
    how = "stopped early" if early else "finished"
    return (f"{out_dir} holds a complete run ({plural(epochs, 'epoch')}, {how}; test acc "
            f"{summary.get('test_acc', float('nan')):.4f} in its summary.json): nothing to train. To train it "
            f"further pass {more}; to train it again from the start, {again}")
