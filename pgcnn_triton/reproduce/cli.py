"""``pgcnn reproduce`` / ``examples/reproduce.py``: the paper's comparative tables on the bundled digits.

    pgcnn reproduce                 # 3 seeds of every table (README: ≤ 30 min on a 2-core CPU with bf16 units)
    pgcnn reproduce --quick         # a ≤ 5-min preview of the pipeline and the models' structure, not the claims
    pgcnn reproduce --resume        # continue an interrupted reproduction (finished runs are read back)

Writes OUT_DIR/results.md (the tables, the learned subsets per layer, the paper's claims checked, the
partial-invariance analysis), OUT_DIR/results.json (every run's numbers and the aggregates),
OUT_DIR/reproduce.png (accuracies with error bars, learned subsets per layer), OUT_DIR/analysis.png
(probability of the true class against the input's rotation, per training range; :mod:`.analysis`), and one
ordinary run directory per run under OUT_DIR/<table>/<model>/seed<k> and OUT_DIR/analysis/r<r>
(``pgcnn eval`` and ``pgcnn plot`` work on them).
"""

from __future__ import annotations

import argparse
import datetime
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

from .. import precision
from ..training.errors import RunInterrupted
from ..training.progress import format_seconds
from ..training.records import write_json
from ..training.reuse import free_directory
from . import analysis
from .figure import plot_reproduction
from .plan import TABLE_KEYS, build_plan, select_tables
from .report import aggregate, check_claims, format_markdown
from .runner import RUN_FILE, check_out_dir, execute, run_dir

DEFAULT_OUT, QUICK_OUT = "runs/reproduce", "runs/reproduce-quick"


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The reproduction's flags (shared by ``pgcnn reproduce`` and ``examples/reproduce.py``)."""
    parser.add_argument("--seeds", type=int, default=None, help="seeds per model, 0..N-1 (default 3; --quick: 1)")
    parser.add_argument("--quick", action="store_true",
                        help="a preview in ≤ 5 min on a 2-core CPU, also without bf16 units (measured: 84 s bf16 "
                             "on an AVX512-BF16 EPYC): 1 seed, 2-3 epochs, 500 rotated digits / 120 sixes "
                             "for training, no E(2) rows on rotated MNIST, the partial-invariance analysis at 3 "
                             "of its 6 ranges (measured: 37 s of CPU time, bf16). It shows that every step runs and what "
                             "each model is (elements per layer, rot90 / flip invariance); MNIST6-180 already "
                             "separates partial from full, but the rotated-MNIST and MNIST6-M models are not "
                             "trained apart, so their accuracies say nothing and the paper's claims are not checked "
                             "(default off)")
    parser.add_argument("--tables", default=",".join((*TABLE_KEYS, analysis.KEY)),
                        help="comma-separated subset of %(default)s (default: all; 'analysis': the "
                             "partial-invariance analysis, one seed, 6 training ranges)")
    parser.add_argument("--out-dir", default=None,
                        help=f"where everything goes (default {DEFAULT_OUT}; with --quick {QUICK_OUT})")
    parser.add_argument("--resume", action="store_true",
                        help="continue the reproduction in OUT_DIR: finished runs are read back, a run cut "
                             "short continues from its last.pt (default off: a new reproduction)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="override every table's epochs (default: each table's own)")
    parser.add_argument("--max-batches", type=int, default=None,
                        help="smoke tests: at most this many batches per epoch and per evaluation "
                             "(default: all)")
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                        help="bf16 autocast (default: the precision policy: on for CPUs with bf16 units)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda if available")
    parser.add_argument("--progress-bars", action="store_true",
                        help="per-epoch progress bars of each run (default off)")
    parser.add_argument("--traceback", action="store_true",
                        help="on an error show the full traceback, not one line (also: PGCNN_DEBUG=1; default off)")
    return parser


def build_parser() -> argparse.ArgumentParser:
    """``examples/reproduce.py``'s parser (the same flags as ``pgcnn reproduce``)."""
    summary, _, details = __doc__.partition("\n\n")
    parser = argparse.ArgumentParser(prog="reproduce.py", description=_plain(summary),
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_plain(details))
    return add_arguments(parser)


def _plain(doc: str) -> str:
    return doc.replace("``", "")


def _check(args: argparse.Namespace) -> None:
    for name in ("seeds", "epochs", "max_batches"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")


def header(args: argparse.Namespace, command: str, seconds: float | None, run_seconds: float | None = None) -> str:
    """Date, machine, precision and command of a reproduction (the first lines of results.md)."""
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    info = precision.describe(device, args.amp)
    where = (torch.cuda.get_device_name() if device == "cuda" else
             f"{precision.cpu_model_name()}, {torch.get_num_threads()} threads")
    lines = [f"Reproduction of {datetime.date.today().isoformat()} on {where} "
             f"(torch {torch.__version__}, Python {platform.python_version()}; "
             f"{'bf16 autocast' if info['amp'] else 'float32'}).", "", f"Command: `{command}`"]
    if seconds is not None:
        total = f"Wall time: {format_seconds(seconds)} this invocation"
        if run_seconds is not None:
            total += f"; the runs' own wall times sum to {format_seconds(run_seconds)} (read-back runs included)"
        lines.append(total + ".")
    return "\n".join(lines + [""])


def _analysis_fits(directory: Path, settings) -> bool:
    try:
        analysis.check_analysis_dir(directory, settings, True)
    except (ValueError, OSError):
        return False
    return True


def again_target(out_dir: Path, plan, also_fits=lambda directory: True) -> Path:
    """Where a repeated ``examples/reproduce.py`` goes, to be run as ``--resume``. The same reproduction is
    continued (finished runs read back, not retrained; resuming an empty directory starts afresh); one with
    other options is kept and the new one goes to ``OUT_DIR-2`` (``-3``, ...). ``also_fits``: a further
    check of a candidate directory (the analysis's)."""
    def fits(directory: Path) -> bool:
        try:
            check_out_dir(directory, plan, resume=True)
        except (ValueError, OSError):
            return False
        return also_fits(directory)

    chosen = free_directory(out_dir, fits)
    started = any((run_dir(chosen, run) / RUN_FILE).is_file() for run in plan)
    if chosen != out_dir:
        print(f"{out_dir} holds a reproduction with other options (kept): writing into {chosen} instead", flush=True)
    elif started:
        print(f"{out_dir} holds this reproduction: its finished runs are read back, not retrained (as --resume); "
              f"to train them again remove {out_dir} or pass --out-dir DIR", flush=True)
    return chosen


def run(args: argparse.Namespace, command: str | None = None, train=None, measure=None, again: bool = False) -> dict:
    """Run (or resume) the reproduction of parsed ``args``; write results.md / .json / reproduce.png.

    Returns ``{"tables", "claims", "paths"}``. ``train`` and ``measure`` replace the training and the
    structure-measuring functions (tests). A run whose model contradicts its row's label raises
    :class:`~.structure.RowMismatchError` before anything is reported. ``again`` (``examples/reproduce.py``):
    an out-dir that already holds a reproduction is not refused (:func:`again_target`).
    """
    _check(args)
    seeds = args.seeds or (1 if args.quick else 3)
    keys = [k.strip() for k in args.tables.split(",") if k.strip()]
    known = (*TABLE_KEYS, analysis.KEY)
    if not keys or any(k not in known for k in keys):
        raise ValueError(f"--tables must be a comma-separated, non-empty subset of {','.join(known)}, "
                         f"got {args.tables!r}")
    with_analysis = analysis.KEY in keys
    keys = [k for k in keys if k != analysis.KEY]
    tables = select_tables(keys) if keys or not with_analysis else ()
    overrides = {"epochs": args.epochs, "max_batches": args.max_batches, "amp": args.amp, "device": args.device}
    plan = build_plan([t.key for t in tables], seeds=seeds, quick=args.quick, overrides=overrides) if tables else []
    out_dir = Path(args.out_dir or (QUICK_OUT if args.quick else DEFAULT_OUT))
    settings = analysis.settings_for(args.quick, {"epochs": args.epochs, "max_batches": args.max_batches,
                                                  "amp": args.amp})
    if again and not args.resume:
        out_dir = again_target(out_dir, plan, lambda d: not with_analysis or _analysis_fits(d, settings))
        args.resume = True
    if with_analysis:  # before any training: a refused analysis must not come after the tables' runs
        analysis.check_analysis_dir(out_dir, settings, args.resume)
    names = [t.key for t in tables] + ([analysis.KEY] if with_analysis else [])
    extra = f" + the analysis ({len(settings.ranges)} runs)" if with_analysis else ""
    seeded = f"; {seeds} seed(s)" if plan else ""
    print(f"pgcnn reproduce: {len(plan)} runs{extra} ({', '.join(names)}{seeded}"
          f"{'; quick' if args.quick else ''}) into {out_dir}", flush=True)
    started = time.perf_counter()
    kwargs = {k: v for k, v in (("train", train), ("measure", measure)) if v is not None}
    try:
        records = execute(plan, out_dir, resume=args.resume, progress_bars=args.progress_bars, **kwargs)
        invariance = analysis.run_analysis(out_dir, settings, resume=args.resume) if with_analysis else None
    except KeyboardInterrupt as error:
        if isinstance(error, RunInterrupted):  # inside a run: its message says where and how to continue
            raise
        raise RunInterrupted(f"interrupted between runs; the finished runs in {out_dir} are kept: run the same "
                             f"command with --resume to continue") from None
    seconds = time.perf_counter() - started
    stats = aggregate(records, tables)
    claims = check_claims(stats) if not args.quick and args.max_batches is None else []
    command = command or "pgcnn_triton.reproduce.run(args)"
    run_seconds = sum(r["wall_s"] for r in records if r["wall_s"] is not None)
    if invariance is not None:
        run_seconds += sum(row["wall_s"] for row in invariance["rows"])
    markdown = format_markdown(stats, claims, header(args, command, seconds, run_seconds))
    if invariance is not None:
        markdown += "\n" + analysis.format_analysis_markdown(invariance)
    if args.quick or args.max_batches is not None:
        markdown += ("\n(--quick / --max-batches: a preview with fewer epochs or batches; the paper's claims "
                     "are checked only by the default command.)\n")
    paths = {"md": out_dir / "results.md", "json": out_dir / "results.json"}
    if tables:
        paths["png"] = out_dir / "reproduce.png"
    if invariance is not None:
        paths["analysis_png"] = out_dir / "analysis.png"
    out_dir.mkdir(parents=True, exist_ok=True)
    paths["md"].write_text(markdown)
    write_json({"command": command, "seeds": seeds, "quick": args.quick, "wall_s": seconds, "tables": stats,
                "claims": claims, "runs": records, "analysis": invariance}, paths["json"])
    if tables:
        plot_reproduction(stats, paths["png"], title="Partial G-CNNs on the bundled digits")
    if invariance is not None:
        analysis.plot_analysis(invariance, paths["analysis_png"])
    print("\n" + markdown, flush=True)
    figures = "\n         ".join(str(paths[k]) for k in ("png", "analysis_png") if k in paths)
    print(f"results: {paths['md']}\n         {paths['json']}\nfigure:  {figures}", flush=True)
    return {"tables": stats, "claims": claims, "paths": {k: str(v) for k, v in paths.items()}}


def main(argv=None) -> int:
    """Entry point of ``examples/reproduce.py``; returns the exit status (errors: one line, as ``pgcnn``)."""
    from ..cli_errors import debug_requested, report_errors

    args = build_parser().parse_args(argv)
    words = sys.argv[1:] if argv is None else list(argv)
    return report_errors("reproduce.py", lambda: run(args, command="python examples/reproduce.py " + " ".join(
        shlex.quote(a) for a in words), again=True), traceback=args.traceback or debug_requested([]))
