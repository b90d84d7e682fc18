"""The reproduction's figure: test accuracy per model (error bars over seeds, each seed a dot) on top,
the learned subsets of the partial models per layer below, one column per table."""

from __future__ import annotations

from pathlib import Path

from ..training.plots import _layer_colors, _pyplot, _save


def plot_reproduction(tables: list[dict], path: str | Path, title: str | None = None) -> Path:
    """Draw :func:`~pgcnn_triton.reproduce.report.aggregate` output to ``path`` (PNG)."""
    tables = [t for t in tables if t["rows"]]
    if not tables:
        raise ValueError("tables: nothing to plot (no finished runs)")
    plt = _pyplot()
    fig, axes = plt.subplots(2, len(tables), figsize=(4.6 * len(tables), 8.0), squeeze=False)
    for j, entry in enumerate(tables):
        _accuracy_panel(plt, axes[0][j], entry)
        _subset_panel(plt, axes[1][j], entry)
    return _save(plt, fig, path, title)


def _accuracy_panel(plt, ax, entry: dict) -> None:
    rows = entry["rows"]
    colors = _layer_colors(plt, len(rows))
    for i, r in enumerate(rows):
        ax.bar(i, r["test_acc_mean"] * 100, yerr=r["test_acc_std"] * 100, color=colors[i], alpha=0.75,
               capsize=4, edgecolor="black", linewidth=0.4)
        ax.scatter([i] * len(r["test_acc"]), [a * 100 for a in r["test_acc"]], color="black", s=10, zorder=3)
    low = min(min(r["test_acc"]) for r in rows) * 100
    ax.set_ylim(max(0.0, low - 5.0), 100.5)  # from just below the worst seed: the differences stay visible
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r["label"] for r in rows], rotation=25, fontsize=8, ha="right")
    seeds = max(len(r["test_acc"]) for r in rows)
    ax.set_title(f"{entry['title']}\n({seeds} seed{'s' if seeds > 1 else ''}; bar: mean, line: ±1 std)", fontsize=9)
    ax.set_ylabel("test accuracy %")
    ax.grid(axis="y", linewidth=0.3)


def _subset_panel(plt, ax, entry: dict) -> None:
    partial = [r for r in entry["rows"] if r["partial"] and not r.get("augerino")]
    augerino = [r for r in entry["rows"] if r.get("augerino") and r["layers"]]
    if not partial:
        ax.text(0.5, 0.5, "no partial model", transform=ax.transAxes, ha="center", va="center")
        ax.set_axis_off()
        return
    layers = [layer["layer"] for layer in partial[0]["layers"]]
    xs = list(range(len(layers)))
    colors = _layer_colors(plt, 2 * len(partial))
    for k, r in enumerate(partial):
        for key, style, name in (("theta", "-o", "rotations kept min(|θ|,1)"),
                                 ("mirror_probability", "--s", "mirror keep p")):
            means = [layer[key] for layer in r["layers"]]
            if all(m is None for m in means):
                continue
            stds = [layer[key + "_std"] or 0.0 for layer in r["layers"]]
            ax.errorbar(xs, [m if m is not None else float("nan") for m in means], yerr=stds, fmt=style,
                        color=colors[2 * k + (key != "theta")], capsize=3, markersize=4,
                        label=f"{r['label']}: {name}")
    for k, r in enumerate(augerino):  # one augmentation in front of the network: a level across the layers
        theta = r["layers"][0]["theta"]
        if theta is not None:
            ax.axhline(theta, color=("black", "dimgray", "gray")[k % 3], linewidth=1.2, linestyle="-.",
                       label=f"{r['label']}: augmentation rotations kept")
    ax.axhline(1.0, color="gray", linewidth=0.6, linestyle=":")
    ax.axhline(0.5, color="gray", linewidth=0.4, linestyle=":")
    ax.set_ylim(-0.05, 1.1)
    ax.set_xticks(xs)
    ax.set_xticklabels(layers, rotation=30, fontsize=7, ha="right")
    ax.set_ylabel("learned subset (mean over seeds)")
    ax.legend(fontsize=7, loc="best")
