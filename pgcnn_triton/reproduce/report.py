"""Aggregate the reproduction's runs: per-row statistics, the Markdown tables, the claims checked.

Statistics over seeds: mean and sample standard deviation (``ddof=1``; 0 for one seed) of the test
accuracy; per layer the mean of the kept fraction of the rotations ``min(|θ|, 1)`` (a layer with
|θ| > 1 keeps all of them: |θ| only sets the arc ±π|θ|) and of the mirror keep probability.
"""

from __future__ import annotations

import math
import statistics

from . import structure
from .plan import Table
from .structure import format_elements, format_error

#: The paper's qualitative claims, as issue 14 states them for the bundled digits.
ROTMNIST_PARTIAL_MARGIN = 0.01  # SE(2) partial ≥ SE(2) full − 1 point
ROTMNIST_T2_MARGIN = 0.02  # SE(2) full and partial ≥ T(2) + 2 points
MNIST6_PARTIAL_MIN, MNIST6_FULL_MAX = 0.95, 0.6  # every seed


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def kept_rotations(theta: float | None) -> float | None:
    """The fraction of the rotations a layer keeps, ``min(|θ|, 1)`` (``None``: no group)."""
    return None if theta is None else min(abs(theta), 1.0)


def layer_stats(summaries: list[dict]) -> list[dict]:
    """Per layer, over seeds: mean ± std of the kept rotation fraction and of the mirror probability."""
    if not summaries:
        return []
    out = []
    for i, first in enumerate(summaries[0]["learned_equivariance"]):
        rows = [s["learned_equivariance"][i] for s in summaries]
        thetas = [kept_rotations(r.get("theta")) for r in rows]
        mirrors = [r.get("mirror_probability") for r in rows]
        entry = {"layer": first["layer"], "group": first.get("group")}
        for key, values in (("theta", thetas), ("mirror_probability", mirrors)):
            present = [v for v in values if v is not None]
            entry[key], entry[key + "_std"] = mean_std(present) if present else (None, None)
            entry[key + "_seeds"] = values
        out.append(entry)
    return out


def aggregate(records: list[dict], tables: tuple[Table, ...]) -> list[dict]:
    """One entry per table with its rows' statistics (rows without any finished run are left out)."""
    result = []
    for table in tables:
        rows = []
        for row in table.rows:
            mine = sorted((r for r in records if r["table"] == table.key and r["row"] == row.slug),
                          key=lambda r: r["seed"])
            if not mine:
                continue
            accs = [r["summary"]["test_acc"] for r in mine]
            walls = [r["wall_s"] for r in mine if r["wall_s"] is not None]
            mean, std = mean_std(accs)
            structures = [r.get("structure") for r in mine]
            measured = [st for st in structures if st]
            rows.append({
                "row": row.slug, "label": row.label, "group": row.group, "partial": row.partial,
                "augerino": row.augerino,
                "seeds": [r["seed"] for r in mine], "test_acc": accs, "test_acc_mean": mean, "test_acc_std": std,
                "parameters": mine[0]["summary"]["parameters"],
                "epochs": mine[0]["summary"]["config"]["epochs"],
                "wall_s_mean": statistics.fmean(walls) if walls else None,
                "layers": layer_stats([r["summary"] for r in mine]),
                "elements": sorted({format_elements(st) for st in measured}),
                "rot90_error": [st["rot90_error"] for st in measured],
                "flip_error": [st["flip_error"] for st in measured if st.get("flip_error") is not None],
                "copies": sorted({st["augmentation"]["used"] for st in measured if st.get("augmentation")}),
            })
        sizes = next((r["summary"].get("dataset_sizes") for r in records if r["table"] == table.key), None)
        # how many test digits the invariance errors were measured on (recorded by measure_run)
        images = sorted({st["images"] for r in records if r["table"] == table.key
                         for st in [r.get("structure")] if st and st.get("images")})
        result.append({"table": table.key, "title": table.title, "dataset": table.dataset, "sizes": sizes,
                       "measure_images": images, "rows": rows})
    return result


def _row(entry: dict, slug: str) -> dict | None:
    return next((r for r in entry["rows"] if r["row"] == slug), None)


def check_claims(tables: list[dict]) -> list[dict]:
    """The paper's claims on these tables: ``{"claim", "measured", "holds"}`` per claim whose rows ran."""
    claims = []
    by_key = {t["table"]: t for t in tables}
    rot = by_key.get("rotmnist")
    if rot:
        t2, full, part = (_row(rot, s) for s in ("t2", "se2-full", "se2-partial"))
        if full and part:
            claims.append({"claim": "rotated MNIST: SE(2) partial ≥ SE(2) full − 1 point (mean over seeds)",
                           "measured": f"{part['test_acc_mean']:.4f} vs {full['test_acc_mean']:.4f}",
                           "holds": part["test_acc_mean"] >= full["test_acc_mean"] - ROTMNIST_PARTIAL_MARGIN})
        if t2:
            for r in (full, part):
                if r:
                    claims.append({"claim": f"rotated MNIST: {r['label']} ≥ T(2) + 2 points (mean over seeds)",
                                   "measured": f"{r['test_acc_mean']:.4f} vs {t2['test_acc_mean']:.4f}",
                                   "holds": r["test_acc_mean"] >= t2["test_acc_mean"] + ROTMNIST_T2_MARGIN})
    for key, group, what in (("mnist6-180", "se2", "θ < 1"), ("mnist6-m", "e2", "mirror probability < 0.5")):
        entry = by_key.get(key)
        if not entry:
            continue
        part, full = _row(entry, f"{group}-partial"), _row(entry, f"{group}-full")
        if part:
            claims.append({"claim": f"{entry['title']}: partial ≥ {MNIST6_PARTIAL_MIN} every seed",
                           "measured": ", ".join(f"{a:.3f}" for a in part["test_acc"]),
                           "holds": min(part["test_acc"]) >= MNIST6_PARTIAL_MIN})
            key_name = "theta" if group == "se2" else "mirror_probability"
            bound = 1.0 if group == "se2" else 0.5
            per_seed = [min((layer[key_name + "_seeds"][i] for layer in part["layers"]
                             if layer[key_name + "_seeds"][i] is not None), default=float("nan"))
                        for i in range(len(part["seeds"]))]
            claims.append({"claim": f"{entry['title']}: partial has {what} in at least one layer, every seed",
                           "measured": "lowest per seed " + ", ".join(f"{v:.3f}" for v in per_seed),
                           "holds": all(v < bound for v in per_seed)})
        if full:
            claims.append({"claim": f"{entry['title']}: full ≤ {MNIST6_FULL_MAX} every seed",
                           "measured": ", ".join(f"{a:.3f}" for a in full["test_acc"]),
                           "holds": max(full["test_acc"]) <= MNIST6_FULL_MAX})
    return claims


def _errors(values) -> str:
    """The worst (largest) error over seeds, or ``–``."""
    return format_error(max(values)) if values else "–"


def _pm(mean, std, digits=1, scale=100.0) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}"


def _augmentation_table(rows: list[dict]) -> list[str]:
    """The learned augmentation of the Augerino rows: what they became invariant to."""
    if not rows:
        return []
    mirrors = any(r["layers"] and r["layers"][0].get("mirror_probability") is not None for r in rows)
    out = ["", "Learned augmentation of the Augerino rows (mean ± std over seeds; the T(2) network sees each image "
           "rotated within ±π·min(|θ|, 1), and its logits are averaged over the copies; rotations kept = min(|θ|, 1))"
           + ("; mirror p = probability of the mirrored copies" if mirrors else "") + ":", "",
           "| model | rotations kept | " + ("mirror p | " if mirrors else "") + "copies averaged (evaluation) |",
           "|---|---:|" + ("---:|" if mirrors else "") + "---:|"]
    for r in rows:
        layer = r["layers"][0] if r["layers"] else {}
        cells = [_pm(layer.get("theta"), layer.get("theta_std"), 2, 1.0)]
        if mirrors:
            cells.append(_pm(layer.get("mirror_probability"), layer.get("mirror_probability_std"), 2, 1.0))
        cells.append(" / ".join(str(c) for c in r.get("copies") or []) or "–")
        out.append(f"| {r['label']} | " + " | ".join(cells) + " |")
    return out


def format_markdown(tables: list[dict], claims: list[dict], header: str = "") -> str:
    """The reproduction as Markdown: per table the accuracies, then the learned subsets per layer."""
    out = [header] if header else []
    for entry in tables:
        if not entry["rows"]:
            continue
        sizes = ", ".join(f"{k} {v}" for k, v in (entry["sizes"] or {}).items())
        flips = any(r.get("flip_error") for r in entry["rows"])
        images = " / ".join(str(n) for n in entry.get("measure_images") or [structure.MEASURE_IMAGES])
        out += [f"### {entry['title']}", "", f"Images: {sizes}." if sizes else "", "",
                "| model | params | test acc % (mean ± std) | per seed | epochs | wall time / run "
                "| group elements per layer | rot90 error |" + (" flip error |" if flips else ""),
                "|---|---:|---:|---|---:|---:|---|---:|" + ("---:|" if flips else "")]
        for r in entry["rows"]:
            seeds = ", ".join(f"{a * 100:.1f}" for a in r["test_acc"])
            wall = f"{r['wall_s_mean']:.0f} s" if r["wall_s_mean"] is not None else "–"
            line = (f"| {r['label']} | {r['parameters']:,} | {_pm(r['test_acc_mean'], r['test_acc_std'])} "
                    f"| {seeds} | {r['epochs']} | {wall} | {' / '.join(r.get('elements') or ['–'])} "
                    f"| {_errors(r.get('rot90_error'))} |")
            if flips:
                line += f" {_errors(r.get('flip_error'))} |"
            out.append(line)
        out += ["", "Invariance errors: relative change of the logits, ‖f(T x) − f(x)‖ / ‖f(x)‖, under rot90 "
                f"(flip: a horizontal flip) on {images} test digits, float32, deterministic evaluation of each seed's "
                "best checkpoint; the worst seed is shown. A full row is exactly invariant (rounding, ~1e-6), "
                "a T(2) CNN is not; a partial row's error is what it learned. Group elements: what each "
                "lifting / group conv used, in order (T(2): 1 each)."]
        partial = [r for r in entry["rows"] if r["partial"] and not r.get("augerino")]
        if partial:
            columns = [(r, "theta", f"{r['label']}: rotations kept") for r in partial]
            columns += [(r, "mirror_probability", f"{r['label']}: mirror p") for r in partial
                        if any(layer["mirror_probability"] is not None for layer in r["layers"])]
            mirrors = len(columns) > len(partial)
            out += ["", "Learned subsets (mean ± std over seeds; rotations kept = min(|θ|, 1), the fraction of "
                    "the circle the layer keeps" + ("; mirror p = keep probability of the mirrors" if mirrors else "")
                    + "):", "", "| layer | " + " | ".join(c[2] for c in columns) + " |", "|---|" + "---:|" * len(columns)]
            for i, layer in enumerate(partial[0]["layers"]):
                cells = [_pm(r["layers"][i][key], r["layers"][i][key + "_std"], 2, 1.0) for r, key, _ in columns]
                out.append(f"| {layer['layer']} | " + " | ".join(cells) + " |")
        out += _augmentation_table([r for r in entry["rows"] if r.get("augerino")])
        out.append("")
    if claims:
        out += ["### The paper's claims on these runs", "", "| claim | measured | holds |", "|---|---|:---:|"]
        out += [f"| {c['claim']} | {c['measured']} | {'yes' if c['holds'] else '**no**'} |" for c in claims]
        out.append("")
    return "\n".join(out)
