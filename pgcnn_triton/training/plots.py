"""PNG figures of a run: learned equivariance per layer and training curves (matplotlib, Agg backend)."""

from __future__ import annotations

import math
from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_learned_equivariance(models: dict[str, list[dict]], path: str | Path, title: str | None = None) -> Path:
    """The learned subset of every layer, as in the paper's learned-subset figure.

    ``models`` maps a label (e.g. ``"partial"``, ``"full"``) to ``model.learned_equivariance()`` rows.
    Top row: per model, one ring per layer (innermost = first layer) covering the arc [−πθ, πθ) of
    rotations the layer keeps; its alpha is the mirror keep probability for E(2). Bottom: θ and mirror
    probability per layer as grouped bars for every model.
    """
    if not isinstance(models, dict) or not models:
        raise ValueError("models must be a non-empty dict {label: learned_equivariance() rows}")
    plt = _pyplot()
    names = list(models)
    e2 = any(row.get("mirror_probability") is not None for rows in models.values() for row in rows)
    fig = plt.figure(figsize=(4.2 * max(len(names), 2), 8.0))
    grid = fig.add_gridspec(2, len(names), height_ratios=[1.1, 1.0])
    colors = plt.get_cmap("viridis")
    for j, name in enumerate(names):
        rows = models[name]
        ax = fig.add_subplot(grid[0, j], projection="polar")
        ax.set_theta_zero_location("N")
        for i, row in enumerate(rows):
            theta = row.get("theta")
            theta = 1.0 if theta is None else min(abs(theta), 1.0)
            mirror = row.get("mirror_probability")
            alpha = 0.35 + 0.65 * (1.0 if mirror is None else mirror)
            span = max(2 * math.pi * theta, 0.02)
            ax.bar(0.0, 0.8, width=span, bottom=i + 0.6, color=colors(i / max(len(rows) - 1, 1)), alpha=alpha,
                   edgecolor="black", linewidth=0.4)
        ax.set_ylim(0, len(rows) + 0.6)
        ax.set_yticks([i + 1 for i in range(len(rows))])
        ax.set_yticklabels([str(i) for i in range(len(rows))], fontsize=7)
        ax.set_xticks([0, math.pi / 2, math.pi, 3 * math.pi / 2])
        ax.set_xticklabels(["0", "π/2", "±π", "−π/2"])
        note = "ring i = layer i; faint = mirrors rarely kept" if e2 else "ring i = layer i"
        ax.set_title(f"{name}: arc ±πθ per layer\n({note})", fontsize=9)
    ax = fig.add_subplot(grid[1, :])
    layers = [row["layer"] for row in models[names[0]]]
    series = [(n, "theta") for n in names] + ([(n, "mirror_probability") for n in names] if e2 else [])
    width = 0.8 / len(series)
    for k, (name, key) in enumerate(series):
        values = [(row.get(key) if row.get(key) is not None else float("nan")) for row in models[name]]
        xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(values))]
        label = f"{name}: {'θ' if key == 'theta' else 'mirror probability'}"
        ax.bar(xs, values, width=width, label=label, hatch="//" if key != "theta" else None)
    ax.axhline(1.0, color="gray", linewidth=0.6, linestyle="--")
    ax.set_xticks(range(len(layers)))
    ax.set_xticklabels(layers, rotation=20, fontsize=8)
    ax.set_ylabel("θ  /  mirror keep probability")
    ax.legend(fontsize=8)
    return _save(plt, fig, path, title)


def plot_training_curves(rows: list[dict], path: str | Path, title: str | None = None) -> Path:
    """Loss, accuracy and θ per layer against the epoch, from the per-epoch metric rows."""
    if not rows:
        raise ValueError("rows must hold at least one epoch of metrics")
    plt = _pyplot()
    epochs = [r["epoch"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for key, style in (("train_loss", "-"), ("val_loss", "--")):
        axes[0].plot(epochs, [r.get(key) for r in rows], style, label=key)
    for key, style in (("train_acc", "-"), ("val_acc", "--")):
        axes[1].plot(epochs, [r.get(key) for r in rows], style, label=key)
    for key in [k for k in rows[-1] if k.startswith(("theta/", "mirror/"))]:
        axes[2].plot(epochs, [r.get(key) for r in rows], "-" if key.startswith("theta/") else ":", label=key)
    for ax, label in zip(axes, ("loss", "accuracy", "θ / mirror probability")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return _save(plt, fig, path, title)


def _save(plt, fig, path, title) -> Path:
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
