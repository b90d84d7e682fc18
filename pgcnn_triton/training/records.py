"""What a run leaves on disk besides checkpoints: per-epoch CSV metrics and a JSON summary."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from .atomic import write_atomic


def write_metrics_csv(rows: list[dict], path: str | Path) -> Path:
    """Write one row per epoch (union of all keys as columns, in first-seen order), atomically."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return write_atomic(path, text.getvalue())


def read_metrics_csv(path: str | Path) -> list[dict]:
    """Rows of a metrics CSV with numbers parsed back to float (empty cells become ``None``)."""
    rows = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            rows.append({k: (float(v) if v not in ("", None) and _is_number(v) else (v or None))
                         for k, v in row.items()})
    return rows


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def write_json(data: dict, path: str | Path) -> Path:
    """Write ``data`` as indented JSON (atomically)."""
    return write_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def equivariance_columns(rows: list[dict]) -> dict:
    """Flatten ``model.learned_equivariance()`` rows into ``{"theta/<layer>": θ, "mirror/<layer>": p}``."""
    out = {}
    for row in rows:
        if row.get("theta") is not None:
            out[f"theta/{row['layer']}"] = row["theta"]
        if row.get("mirror_probability") is not None:
            out[f"mirror/{row['layer']}"] = row["mirror_probability"]
    return out


def format_equivariance_table(models: dict[str, list[dict]]) -> str:
    """A text table, one line per layer: θ (and mirror probability) of each model side by side;
    "no group" for layers over one element (the T(2) baseline), "-" for C_n / D_n gated layers."""
    names = list(models)
    layers = [row["layer"] for row in next(iter(models.values()))] if models else []
    e2 = any(row.get("mirror_probability") is not None for rows in models.values() for row in rows)
    header = f"{'layer':<18}" + "".join(f"{'θ ' + n:>16}" + (f"{'mirror p ' + n:>20}" if e2 else "") for n in names)
    lines = [header, "-" * len(header)]
    for i, layer in enumerate(layers):
        cells = ""
        for n in names:
            row = models[n][i] if i < len(models[n]) else {}
            theta = row.get("theta")
            if theta is not None:
                cells += f"{theta:>16.3f}"
            else:  # a layer over one element (T(2)) has no group to keep part of
                cells += f"{'no group' if 'group' in row and row['group'] is None else '-':>16}"
            if e2:
                mirror = row.get("mirror_probability")
                cells += f"{mirror:>20.3f}" if mirror is not None else f"{'-':>20}"
        lines.append(f"{layer:<18}{cells}")
    return "\n".join(lines)


def plural(count: int, noun: str) -> str:
    """``"1 epoch"``, ``"5 epochs"``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def equivariance_from_columns(row: dict) -> list[dict]:
    """The inverse of :func:`equivariance_columns` on one metrics row: ``learned_equivariance()``-like rows
    (layer, θ, mirror probability) of the layers that have a θ or mirror column; ``[]`` for none (T(2))."""
    layers = list(dict.fromkeys(k.split("/", 1)[1] for k in row if k.startswith(("theta/", "mirror/"))))
    return [{"layer": layer, "theta": row.get(f"theta/{layer}"), "mirror_probability": row.get(f"mirror/{layer}")}
            for layer in layers]


def format_evaluation(result: dict) -> str:
    """One line for ``pgcnn eval``: checkpoint, epoch, split, accuracy, loss, sample count."""
    epoch = f" (epoch {result['epoch']})" if result.get("epoch") is not None else ""
    return (f"{result['checkpoint']}{epoch}, {result['split']} split: acc {result['acc']:.4f}, "
            f"loss {result['loss']:.4f}, {plural(result['count'], 'sample')}")
