"""The paper's partial-invariance analysis (``pgcnn reproduce --tables analysis``; part of the default run).

On MNIST6-180 (class 0: a 6; class 1: the same 6 turned by 180°), small partial SE(2) CKResNets are trained on
data whose 6s are first turned by an angle uniform in ±r degrees, for r ∈ {0, 15, 30, 45, 60, 90}. Each model's
probability of the true class "upright 6" is then measured on upright test 6s turned from −180° to 180°
(:func:`~pgcnn_triton.testing.rotation_curve`). A fully invariant model would give a flat 0.5 (it cannot tell a
6 from its turned copy); a partial model is invariant only over the angles it saw, and the range widens with r.

The model (the paper's): one residual block, hidden width 10, N = 4 sampled rotations, SIREN kernels, LayerNorm,
learned θ. Data: the bundled sixes. Training: as the bundled MNIST6-180 short run (batch 32, Adam lr 3e-3, θ lr
3e-2, constant rate) for 8 epochs on 300 training 6s (at lr 1e-2 the model stayed at chance);
``--quick``: r ∈ {0, 45, 90}, 3 epochs on 120. The curve averages 50 upright test 6s (``--quick``: 40) at every
5° (10°). Summary per r: the angles around 0° over which the probability stays within :data:`TOLERANCE` of
its upright value.

Each r is an ordinary run directory ``OUT_DIR/analysis/r<r>`` (``pgcnn eval`` works on it) plus
``analysis.json``, its curve; ``--resume`` reads finished ones back.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from ..data.bundled import bundled_mnist6
from ..data.mnist6 import MEAN, STD
from ..models import PartialGCNN
from ..testing.rotation_curve import rotation_curve
from ..training.config import TrainConfig
from ..training.records import write_json
from ..training.specs import data_spec, model_spec
from ..training.trainer import Trainer, learned_equivariance

KEY = "analysis"
RANGES = (0, 15, 30, 45, 60, 90)
#: The summary's band: the prediction counts as unchanged while within this of its upright value.
TOLERANCE = 0.05
#: The paper's analysis model: one block, hidden 10, SE(2) with N = 4, SIREN, LayerNorm, partial.
MODEL = dict(in_channels=1, num_classes=2, hidden=10, num_blocks=1, block_width_factors=None, pool_blocks=(1,),
             norm="layer", kernel_size=7, kernel_net="SIREN", kernel_hidden=32, omega0=10.0, group="SE2",
             num_elements=4, method="random", partial=True, per_batch_element=False)
RESULT_FILE = "analysis.json"


@dataclass(frozen=True)
class AnalysisSettings:
    """How the analysis trains and measures (``--epochs``, ``--max-batches`` and ``--amp`` apply; it runs on
    the CPU whatever ``--device`` says: its models are tiny)."""

    epochs: int = 8
    train_size: int = 300  # training 6s (each with its 180° copy)
    batch_size: int = 32
    lr: float = 3e-3
    lr_probs: float = 3e-2
    curve_images: int = 50  # upright test 6s the curve averages over
    step_degrees: float = 5.0
    ranges: tuple = RANGES
    seed: int = 0
    max_batches: int | None = None
    amp: bool | None = None

    def angles(self) -> list[float]:
        """−180° … 180° in steps of ``step_degrees``."""
        count = int(round(360.0 / self.step_degrees))
        return [-180.0 + i * 360.0 / count for i in range(count + 1)]


DEFAULT_SETTINGS = AnalysisSettings()
# --quick: 3 of the ranges, 3 epochs on 120 sixes (the models start to separate the classes after ~25 steps)
QUICK_SETTINGS = AnalysisSettings(epochs=3, train_size=120, curve_images=40, step_degrees=10.0, ranges=(0, 45, 90))


def settings_for(quick: bool, overrides: dict) -> AnalysisSettings:
    """The analysis settings of a reproduction: default or ``--quick``, then the command's overrides."""
    base = QUICK_SETTINGS if quick else DEFAULT_SETTINGS
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def range_dir(out_dir: str | Path, r: float) -> Path:
    """Where the model of range ``r`` runs: ``OUT_DIR/analysis/r<r>``."""
    return Path(out_dir) / KEY / f"r{r:g}"


def check_analysis_dir(out_dir: str | Path, settings: AnalysisSettings, resume: bool) -> None:
    """Refuse to mix results, as the tables do: existing analysis runs need ``resume`` and the same settings."""
    for r in settings.ranges:
        path = range_dir(out_dir, r) / RESULT_FILE
        if not path.is_file():
            continue
        if not resume:
            raise FileExistsError(f"{path.parent} already holds an analysis run; pass --resume to continue the "
                                  "reproduction, or choose another --out-dir")
        stored = json.loads(path.read_text())["settings"]
        if stored != json.loads(json.dumps(_settings_of(settings, r))):
            raise ValueError(f"--resume: {path.parent} was run with other settings ({stored}); use the same "
                             "options or another --out-dir")


def _settings_of(settings: AnalysisSettings, r: float) -> dict:
    return dict(asdict(settings), ranges=None, range=r)


def stable_range(angles, probabilities, tolerance: float = TOLERANCE) -> tuple[float, float]:
    """``(low, high)``: the angles around 0° between which ``|p(a) − p(0)| ≤ tolerance`` at every grid angle
    (contiguous from 0; the ends are the last grid angles inside). ``angles`` must include 0."""
    angles, probabilities = list(angles), list(probabilities)
    zero = angles.index(0.0)
    inside = [abs(p - probabilities[zero]) <= tolerance for p in probabilities]
    low = high = zero
    while low > 0 and inside[low - 1]:
        low -= 1
    while high < len(angles) - 1 and inside[high + 1]:
        high += 1
    return angles[low], angles[high]


def upright_sixes(data, count: int) -> torch.Tensor:
    """The first ``count`` class-0 test images of an unrotated MNIST6-180 split, in [0, 1] (zero background)."""
    test = data.test
    keep = (test.labels == 0).nonzero().flatten()[:count]
    return test.images[keep].float().div(255.0)


def true_class_curve(model, sixes: torch.Tensor, angles) -> list[float]:
    """Mean probability of class 0 ("upright 6") over ``sixes`` turned by each angle."""
    mean, std = torch.tensor(MEAN).reshape(1, -1, 1, 1), torch.tensor(STD).reshape(1, -1, 1, 1)
    device = next(model.parameters()).device
    logits = rotation_curve(model, sixes.to(device), angles, preprocess=lambda z: (z - mean.to(z)) / std.to(z))
    return logits.float().softmax(-1)[..., 0].mean(1).tolist()


def _train_one(r: float, settings: AnalysisSettings, directory: Path, sixes: torch.Tensor) -> dict:
    torch.manual_seed(settings.seed)
    data = bundled_mnist6("180", train=settings.train_size, rot_interval=float(r))
    model = PartialGCNN(**MODEL)
    config = TrainConfig(epochs=settings.epochs, batch_size=settings.batch_size, lr=settings.lr,
                         lr_probs=settings.lr_probs, scheduler="constant", seed=settings.seed, amp=settings.amp,
                         max_batches=settings.max_batches, progress=False)
    spec = model_spec("ckresnet", None, MODEL, label=f"analysis r={r:g}")
    trainer = Trainer(model, data, config, directory, model_spec=spec,
                      data_spec=data_spec("bundled-mnist6-180", train=settings.train_size, rot_interval=float(r)))
    t0 = time.perf_counter()
    summary = trainer.fit()
    angles = settings.angles()
    curve = true_class_curve(trainer.model, sixes, angles)
    low, high = stable_range(angles, curve)
    thetas = [row.get("theta") for row in learned_equivariance(trainer.model) if row.get("theta") is not None]
    return {"range": r, "settings": _settings_of(settings, r), "angles": angles, "curve": curve,
            "p_upright": curve[angles.index(0.0)], "p_180": curve[-1], "stable": [low, high],
            "test_acc": summary["test_acc"], "theta": thetas, "parameters": summary["parameters"],
            "wall_s": time.perf_counter() - t0, "images": int(sixes.shape[0])}


def run_analysis(out_dir: str | Path, settings: AnalysisSettings, *, resume: bool = False, stream=None) -> dict:
    """Train (or with ``resume`` read back) the model of every range; returns ``{"settings", "rows"}``."""
    check_analysis_dir(out_dir, settings, resume)
    upright = bundled_mnist6("180", train=settings.train_size)  # the unrotated test 6s: the same for every r
    count = settings.curve_images
    if settings.max_batches is not None:
        count = min(count, settings.max_batches * settings.batch_size)
    sixes = upright_sixes(upright, count)
    rows = []
    for index, r in enumerate(settings.ranges):
        directory = range_dir(out_dir, r)
        path = directory / RESULT_FILE
        if resume and path.is_file():
            row = json.loads(path.read_text())
            _print(stream, f"[analysis {index + 1}/{len(settings.ranges)}] r = ±{r:g}°: read back")
        else:
            _print(stream, f"[analysis {index + 1}/{len(settings.ranges)}] r = ±{r:g}°: training")
            row = _train_one(r, settings, directory, sixes)
            write_json(row, path)
        _print(stream, f"    p(upright 6) {row['p_upright']:.3f} at 0°, {row['p_180']:.3f} at 180°; within "
                       f"{TOLERANCE} of it over {row['stable'][0]:g}°…{row['stable'][1]:g}°")
        rows.append(row)
    return {"settings": asdict(settings), "tolerance": TOLERANCE, "rows": rows}


def _print(stream, line: str) -> None:
    print(line, file=stream, flush=True)


def format_analysis_markdown(result: dict) -> str:
    """The analysis as a Markdown section: one row per training range."""
    rows = result["rows"]
    if not rows:
        return ""
    s = result["settings"]
    images = rows[0]["images"]
    out = ["### Partial invariance vs training rotation range (MNIST6-180, bundled)", "",
           f"One-block partial SE(2) CKResNets (hidden 10, N = 4, SIREN, LayerNorm; {rows[0]['parameters']:,} "
           f"parameters) trained on 6s turned within ±r; P(upright 6) averaged over {images} upright test 6s "
           f"turned by −180°…180° in {s['step_degrees']:g}° steps. Stable range: the angles around 0° where "
           f"P stays within {result['tolerance']} of its value at 0°.", "",
           "| r (training range) | test acc % | P at 0° | P at 180° | stable range | width | θ per layer |",
           "|---:|---:|---:|---:|---|---:|---|"]
    for row in rows:
        low, high = row["stable"]
        thetas = " · ".join(f"{min(abs(t), 1.0):.2f}" for t in row["theta"]) or "–"
        out.append(f"| ±{row['range']:g}° | {row['test_acc'] * 100:.1f} | {row['p_upright']:.3f} "
                   f"| {row['p_180']:.3f} | {low:g}° … {high:g}° | {high - low:g}° | {thetas} |")
    out += ["", "θ per layer: the fraction of the rotations each lifting / group conv keeps, min(|θ|, 1) (the "
            "lifting layer always keeps all). Figure: `analysis.png`.", ""]
    return "\n".join(out)


def plot_analysis(result: dict, path: str | Path) -> Path:
    """P(true class) against the input's rotation, one curve per training range (PNG)."""
    from ..training.plots import _layer_colors, _pyplot, _save

    rows = result["rows"]
    if not rows:
        raise ValueError("result: nothing to plot (no analysis runs)")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8.0, 4.8))
    colors = _layer_colors(plt, len(rows))
    for color, row in zip(colors, rows):
        low, high = row["stable"]
        ax.plot(row["angles"], row["curve"], "-", color=color, linewidth=1.6,
                label=f"r = ±{row['range']:g}° (stable {low:g}°…{high:g}°)")
    ax.axhline(0.5, color="gray", linewidth=0.6, linestyle=":")
    ax.set_xlim(-180, 180)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xticks(range(-180, 181, 45))
    ax.set_xlabel("rotation of the input (degrees)")
    ax.set_ylabel("P(upright 6)  (true class)")
    ax.grid(linewidth=0.3)
    ax.legend(fontsize=8, loc="lower center")
    title = ("Partial invariance learned from the training rotation range r (MNIST6-180, bundled; "
             f"{rows[0]['images']} test 6s)")
    return _save(plt, fig, path, title)
