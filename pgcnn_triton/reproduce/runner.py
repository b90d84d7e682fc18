"""Run a reproduction plan: one ordinary run directory per run, resumable, with progress and an ETA.

Each run directory holds what ``pgcnn train`` writes (``summary.json``, ``metrics.csv``, checkpoints,
figures) plus ``run.json``: the flags it was started with. ``summary.json`` marks a finished run.
With ``resume=True`` finished runs are read back instead of trained, and a run cut short mid-training
continues from its ``last.pt``; a run directory whose flags differ from the plan's is an error (its
results would not belong to this table), and so is an existing reproduction without ``resume``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..training.args import add_train_arguments
from ..training.experiment import train_from_args
from ..training.progress import format_seconds
from ..training.records import write_json
from .plan import Run
from .structure import check_row, format_elements, format_error, measure_run

RUN_FILE, SUMMARY_FILE, LAST_FILE = "run.json", "summary.json", "last.pt"


def run_dir(out_dir: str | Path, run: Run) -> Path:
    """Where ``run`` writes: ``out_dir/<table>/<row>/seed<k>``."""
    return Path(out_dir) / run.name


def namespace(run: Run, directory: Path, *, progress: bool = False) -> argparse.Namespace:
    """The ``pgcnn train`` flags of ``run`` (every unset flag at its default), writing to ``directory``."""
    args = add_train_arguments(argparse.ArgumentParser()).parse_args([])
    for key, value in run.flags.items():
        if not hasattr(args, key):
            raise ValueError(f"run {run.name}: {key!r} is not a training flag")
        setattr(args, key, value)
    args.out_dir = str(directory)
    args.no_progress = not progress
    return args


def _stored_flags(directory: Path) -> dict | None:
    path = directory / RUN_FILE
    return json.loads(path.read_text())["flags"] if path.is_file() else None


def _flag_diff(stored: dict, planned: dict) -> list[str]:
    keys = sorted(set(stored) | set(planned))
    return [f"{k}: {stored.get(k)!r} there, {planned.get(k)!r} now" for k in keys if stored.get(k) != planned.get(k)]


def check_out_dir(out_dir: str | Path, plan: list[Run], resume: bool) -> None:
    """Refuse to mix results: an existing reproduction needs ``resume``, and resumed runs must match."""
    out_dir = Path(out_dir)
    started = [run for run in plan if (run_dir(out_dir, run) / RUN_FILE).is_file()]
    if started and not resume:
        raise FileExistsError(f"{out_dir} already holds {len(started)} run(s) of a reproduction "
                              f"(e.g. {started[0].name}); pass --resume to continue it, or choose another --out-dir")
    for run in started:
        stored = _stored_flags(run_dir(out_dir, run))
        planned = json.loads(json.dumps(run.flags))  # as stored: through JSON (tuples become lists)
        if stored != planned:
            raise ValueError(f"--resume: {run_dir(out_dir, run)} was started with other flags "
                             f"({'; '.join(_flag_diff(stored, planned))}); use the same options or another --out-dir")


class Progress:
    """Which run, elapsed time and overall ETA.

    The ETA is the remaining runs' prior costs (:attr:`Run.prior_s`) scaled by how the finished runs
    compared with theirs, so it adapts to the machine after the first run; runs read back by
    ``--resume`` do not count.
    """

    def __init__(self, plan: list[Run], stream=None):
        self.plan, self.stream = plan, stream or sys.stdout
        self.started = time.perf_counter()
        self.actual = self.prior = 0.0

    def eta(self, next_index: int) -> float:
        scale = self.actual / self.prior if self.prior > 0 else 1.0
        return scale * sum(run.prior_s for run in self.plan[next_index:])

    def starting(self, index: int, run: Run, note: str = "") -> None:
        elapsed = time.perf_counter() - self.started
        self._print(f"[{index + 1}/{len(self.plan)}] {run.table.title} · {run.row.label} · seed {run.seed}{note} "
                    f"— elapsed {format_seconds(elapsed)}, ETA {format_seconds(self.eta(index))}")

    def finished(self, run: Run, summary: dict, seconds: float | None) -> None:
        if seconds is not None:
            self.actual += seconds
            self.prior += run.prior_s
        took = f" in {format_seconds(seconds)}" if seconds is not None else " (read back)"
        self._print(f"    {run.name}: test acc {summary['test_acc']:.4f}{took}")

    def measured(self, run: Run, structure: dict) -> None:
        flip = structure.get("flip_error")
        augmentation = structure.get("augmentation")
        learned = ""
        if augmentation and augmentation.get("theta") is not None:
            learned = f", augmentation |θ| {augmentation['theta']:.3f}"
            if augmentation.get("mirror_probability") is not None:
                learned += f", mirror p {augmentation['mirror_probability']:.3f}"
        self._print(f"    {run.name}: elements per layer {format_elements(structure)}, rot90 error "
                    f"{format_error(structure['rot90_error'])}"
                    + (f", flip error {format_error(flip)}" if flip is not None else "") + learned)

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)


def execute(plan: list[Run], out_dir: str | Path, *, resume: bool = False, progress_bars: bool = False,
            train=train_from_args, measure=measure_run, stream=None) -> list[dict]:
    """Run (or, with ``resume``, read back) every run of ``plan``; returns one record per run.

    A record holds the run's name, table, row, seed, directory, wall seconds (data, training and test;
    for a run continued from ``last.pt`` only the part after the interruption), its ``summary.json`` and
    its measured ``structure`` (:func:`~.structure.measure_run`: elements per layer, rot90 / flip
    invariance errors; stored in ``run.json``). A run whose structure contradicts its row's label raises
    :class:`~.structure.RowMismatchError` at once. ``train`` and ``measure`` are the training and
    measuring functions (tests swap them).
    """
    check_out_dir(out_dir, plan, resume)
    progress = Progress(plan, stream)
    records = []
    for index, run in enumerate(plan):
        directory = run_dir(out_dir, run)
        summary_path = directory / SUMMARY_FILE
        if resume and summary_path.is_file():
            summary = json.loads(summary_path.read_text())
            stored = json.loads((directory / RUN_FILE).read_text())
            seconds = stored.get("wall_s")
            progress.finished(run, summary, None)
        else:
            args = namespace(run, directory, progress=progress_bars)
            continuing = resume and (directory / LAST_FILE).is_file()
            if continuing:
                args.resume = "last"
            else:  # check_out_dir made sure this directory is this reproduction's: files of a cut-short start go
                args.overwrite = True
            progress.starting(index, run, " (continuing from last.pt)" if continuing else "")
            directory.mkdir(parents=True, exist_ok=True)
            write_json({"name": run.name, "flags": run.flags}, directory / RUN_FILE)
            t0 = time.perf_counter()
            summary = train(args, verbose=False)
            seconds = time.perf_counter() - t0
            stored = {"name": run.name, "flags": run.flags, "wall_s": seconds}
            write_json(stored, directory / RUN_FILE)
            progress.finished(run, summary, seconds)
        structure = stored.get("structure")
        if structure is None:  # measured once, then kept in run.json (runs of older versions get it on resume)
            structure = measure(directory, run.row)
            write_json(dict(stored, structure=structure), directory / RUN_FILE)
        progress.measured(run, structure)
        check_row(run.row.label, run.row.group, run.row.partial, run.name, structure, augerino=run.row.augerino)
        records.append({"name": run.name, "table": run.table.key, "row": run.row.slug, "label": run.row.label,
                        "seed": run.seed, "dir": str(directory), "wall_s": seconds, "summary": summary,
                        "structure": structure})
    return records
