"""PNG figures of a run: learned equivariance per layer and training curves (matplotlib, Agg backend).

Both figures stay readable from one epoch to hundreds: curves get markers when there are few epochs
(a single epoch is one point), every layer has one colour across panels (θ and mirror probability
of a layer share it), and legends sit outside the axes.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from .atomic import write_atomic

#: Curves with at most this many epochs are drawn with markers (one epoch: a lone point).
MARKER_EPOCHS = 30


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _layer_colors(plt, count: int) -> list:
    """One distinct colour per layer (tab10 up to 10 layers, then an evenly spaced colormap)."""
    cmap = plt.get_cmap("tab10" if count <= 10 else "turbo")
    return [cmap(i if count <= 10 else i / max(count - 1, 1)) for i in range(count)]


def _has_mirrors(rows: list[dict]) -> bool:
    return any(row.get("mirror_probability") is not None for row in rows)


def _has_group(rows: list[dict]) -> bool:
    return any(not ("group" in row and row["group"] is None) for row in rows)


def plot_learned_equivariance(models: dict[str, list[dict]], path: str | Path, title: str | None = None) -> Path:
    """The learned subset of every layer, as in the paper's learned-subset figure.

    ``models`` maps a label (e.g. ``"partial"``, ``"full"``) to ``model.learned_equivariance()`` rows.
    Top row: per model, one ring per layer (innermost = first layer) covering the arc [−π|θ|, π|θ|)
    of rotations the layer keeps; for E(2) its opacity is the mirror keep probability. A model
    without a group (T(2)) says so instead. Bottom: θ and, for E(2) models only, the mirror
    probability per layer as grouped bars.
    """
    if not isinstance(models, dict) or not models:
        raise ValueError("models must be a non-empty dict {label: learned_equivariance() rows}")
    plt = _pyplot()
    names = list(models)
    fig = plt.figure(figsize=(4.2 * max(len(names), 2), 8.4))
    grid = fig.add_gridspec(2, len(names), height_ratios=[1.15, 1.0])
    for j, name in enumerate(names):
        _polar_panel(plt, fig.add_subplot(grid[0, j], projection="polar"), name, models[name])
    ax = fig.add_subplot(grid[1, :])
    layers = [row["layer"] for row in models[names[0]]]
    series = [(n, "theta") for n in names if _has_group(models[n])]
    series += [(n, "mirror_probability") for n in names if _has_mirrors(models[n])]
    width = 0.8 / max(len(series), 1)
    bar_colors = plt.get_cmap("tab20")
    for k, (name, key) in enumerate(series):
        values = [(row.get(key) if row.get(key) is not None else float("nan")) for row in models[name]]
        xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(values))]
        label = f"{name}: {'θ' if key == 'theta' else 'mirror probability'}"
        ax.bar(xs, values, width=width, label=label, color=bar_colors(k % 20),
               hatch="//" if key != "theta" else None, edgecolor="black", linewidth=0.3)
    ax.axhline(1.0, color="gray", linewidth=0.6, linestyle="--")
    ax.set_xticks(range(len(layers)))
    ax.set_xticklabels(layers, rotation=20, fontsize=8)
    ax.set_ylabel("|θ|  /  mirror keep probability" if any(k != "theta" for _, k in series) else "|θ|")
    if series:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.005, 1.0), borderaxespad=0.0)
    else:
        ax.text(0.5, 0.5, "no group: translations only", transform=ax.transAxes, ha="center", va="center")
    return _save(plt, fig, path, title)


def _polar_panel(plt, ax, name: str, rows: list[dict]) -> None:
    """One model's rings: layer i is the ring at radius i + 1 (innermost = first layer)."""
    ax.set_theta_zero_location("N")
    ax.set_xticks([0, math.pi / 2, math.pi, 3 * math.pi / 2])
    ax.set_xticklabels(["0", "π/2", "±π", "−π/2"])
    ax.set_ylim(0, len(rows) + 0.6)
    ax.set_yticks([i + 1 for i in range(len(rows))])
    ax.set_yticklabels([])  # ring numbers are drawn on top of the rings below (tick labels sit under them)
    if not _has_group(rows):
        ax.set_title(f"{name}\n(no group: translations only)", fontsize=9)
        return
    colors = _layer_colors(plt, len(rows))
    for i, row in enumerate(rows):
        theta = row.get("theta")
        theta = 1.0 if theta is None else min(abs(theta), 1.0)
        mirror = row.get("mirror_probability")
        alpha = 0.35 + 0.65 * (1.0 if mirror is None else mirror)
        span = max(2 * math.pi * theta, 0.02)
        raw = row.get("theta")
        beyond = raw is not None and abs(raw) > 1.0  # the whole circle, with θ to spare: hatched, value shown
        ax.bar(0.0, 0.8, width=span, bottom=i + 0.6, color=colors[i], alpha=alpha, edgecolor="black",
               linewidth=0.4, zorder=2, hatch="xx" if beyond else None)
        value = "" if raw is None else f" θ={abs(raw):.2f}" + (" > 1" if beyond else "")
        ax.text(math.radians(200), i + 1, f"{row.get('layer', i)}{value}", fontsize=6, ha="center",
                va="center", zorder=5,
                bbox=dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="none", alpha=0.85))
    note = "innermost ring = first layer; hatched: |θ| > 1"
    if _has_mirrors(rows):
        note += ";\nfaint = mirrors rarely kept"
    ax.set_title(f"{name}: arc ±π|θ| per layer\n({note})", fontsize=9)


def plot_training_curves(rows: list[dict], path: str | Path, title: str | None = None,
                         initial: dict | None = None) -> Path:
    """Loss, accuracy, θ per layer and (E(2)) mirror probability per layer against the epoch.

    ``title``: the figure's title (e.g. the run directory and model). ``initial``: the ``theta/<layer>`` /
    ``mirror/<layer>`` values before training (:func:`~.records.equivariance_columns`), drawn at epoch 0
    so the θ curves start where the run started."""
    if not rows:
        raise ValueError("rows must hold at least one epoch of metrics")
    plt = _pyplot()
    epochs = [r["epoch"] for r in rows]
    start = {k: v for k, v in (initial or {}).items() if k.startswith(("theta/", "mirror/")) and v is not None}
    marker = dict(marker="o", markersize=4) if len(epochs) <= MARKER_EPOCHS else {}
    thetas = [k for k in rows[-1] if k.startswith("theta/")]
    mirrors = [k for k in rows[-1] if k.startswith("mirror/")]
    panels = 2 + bool(thetas) + bool(mirrors)
    fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 4.2), squeeze=False)
    axes = list(axes[0])
    for ax, keys, label in ((axes[0], ("train_loss", "val_loss"), "loss"),
                            (axes[1], ("train_acc", "val_acc"), "accuracy")):
        for key, style in zip(keys, ("-", "--")):
            ax.plot(epochs, [r.get(key) for r in rows], style, label=key, **marker)
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    layers = list(dict.fromkeys(k.split("/", 1)[1] for k in thetas + mirrors))
    colors = dict(zip(layers, _layer_colors(plt, len(layers))))
    per_layer = [(thetas, "θ (arc ±π|θ|)"), (mirrors, "mirror keep probability")]
    index = 2
    for keys, label in per_layer:
        if not keys:
            continue
        ax = axes[index]
        index += 1
        for key in keys:
            layer = key.split("/", 1)[1]
            xs, ys = epochs, [r.get(key) for r in rows]
            if key in start:
                xs, ys = [0, *xs], [start[key], *ys]
            ax.plot(xs, ys, "-", color=colors[layer], label=layer, **marker)
        ax.set_ylabel(label)
    for ax in axes:
        ax.set_xlabel("epoch")
        if len(epochs) == 1:  # one point: a readable axis around it instead of 0.96–1.04
            ax.set_xlim(epochs[0] - 1, epochs[0] + 1)
            ax.set_xticks(sorted({0, epochs[0]}) if start and ax not in axes[:2] else [epochs[0]])
    if layers:  # one legend for the per-layer panels, outside the axes
        handles, labels = axes[2].get_legend_handles_labels()
        axes[-1].legend(handles, labels, fontsize=7, title="layer", title_fontsize=7, loc="upper left",
                        bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    return _save(plt, fig, path, title)


def _save(plt, fig, path, title) -> Path:
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    image = io.BytesIO()
    try:
        fig.savefig(image, format=path.suffix.lstrip(".") or "png", dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return write_atomic(path, image.getvalue())  # like every run artefact: never half-written
