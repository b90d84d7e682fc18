"""The ``pgcnn`` console script: ``pgcnn train …``, ``pgcnn eval CHECKPOINT``, ``pgcnn plot RUN_DIR…``,
``pgcnn reproduce``, ``pgcnn export CHECKPOINT --out FILE``.

``pgcnn train`` takes the same flags as ``examples/cifar10.py`` (see ``pgcnn train --help``) and runs
under ``torchrun`` as well; ``pgcnn eval`` rebuilds a checkpoint's (or a run directory's best) model and data
and evaluates a split;
``pgcnn plot`` redraws a run's figures, or compares the learned equivariance of several runs;
``pgcnn reproduce`` runs the paper's comparative tables on the bundled digits (see ``pgcnn reproduce --help``);
``pgcnn export`` writes a trained model as a portable ONNX file or ``torch.export`` program (:mod:`.deploy`).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

from .cli_errors import debug_requested, report_errors
from .training.args import add_train_arguments, apply_bundled_run, describe_bundled_run
from .training.records import format_evaluation

#: ``pgcnn train --help``'s description: where unset flags come from.
TRAIN_HELP = ("Train a model. Flags left unset come from the dataset's training recipe (the paper's, "
              "docs/method.md#settings-per-dataset) and the model preset. "
              "On a bundled-* dataset they come first from its short CPU run "
              "(training/recipes.py BUNDLED_RUNS, the same as examples/mnist6.py and examples/rotmnist.py; "
              "a log line lists them); --paper skips it.")


def build_parser() -> argparse.ArgumentParser:
    """The ``pgcnn`` argument parser with its ``train`` / ``eval`` / ``plot`` subcommands."""
    from . import __version__, deploy
    from .reproduce import cli as reproduce_cli

    parser = argparse.ArgumentParser(prog="pgcnn", description="Partial G-CNNs: train, evaluate, plot, reproduce.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a model (flags as examples/cifar10.py)", description=TRAIN_HELP)
    add_train_arguments(train)
    train.add_argument("--paper", action="store_true",
                       help="bundled-* datasets: the paper's recipe instead of the short CPU run (default off; "
                            "other datasets always use the paper's recipe)")
    ev = sub.add_parser("eval", help="evaluate a checkpoint (best.pt or last.pt) or a run directory on a split")
    ev.add_argument("checkpoint", help="a checkpoint file, or a run directory (its best.pt)")
    ev.add_argument("--split", choices=("train", "val", "test"), default="test", help="split (default %(default)s)")
    ev.add_argument("--data-dir", default=None,
                    help="dataset directory (default: the --data-dir stored in the checkpoint at training time)")
    ev.add_argument("--no-verify-data", action="store_true",
                    help="skip the md5 check of the standard dataset files (CIFAR), to read your own variants "
                         "(default: checked)")
    ev.add_argument("--eval-mode", choices=("deterministic", "stochastic", "mc"), default=None,
                    help="evaluation sampling (default: the trained model's)")
    ev.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda if available")
    ev.add_argument("--batch-size", type=int, default=128, help="evaluation batch size (default %(default)s)")
    ev.add_argument("--json", action="store_true",
                    help="print the whole result as JSON, learned equivariance per layer included (default: one line)")
    plot = sub.add_parser("plot", help="redraw run figures; several runs: compare learned equivariance")
    plot.add_argument("run_dirs", nargs="+")
    plot.add_argument("--out", default=None,
                      help="output PNG of the learned-equivariance figure (default: RUN_DIR/learned_equivariance.png; "
                           "several runs: learned_equivariance_comparison.png beside the first)")
    reproduce_cli.add_arguments(sub.add_parser(
        "reproduce", help="the paper's comparative tables on the bundled digits (multi-seed, resumable)",
        description=reproduce_cli.__doc__.split("\n\n")[0], epilog=reproduce_cli.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter))
    export = sub.add_parser(
        "export", help="write a trained model as an ONNX file or a torch.export program (runs without pgcnn_triton)")
    deploy.add_arguments(export)
    for p in (ev, plot, export):
        p.add_argument("--traceback", action="store_true",
                       help="on an error show the full traceback, not one line (also: PGCNN_DEBUG=1; default off)")
    return parser


def main(argv=None) -> int:
    """Entry point of the ``pgcnn`` console script. Returns the exit status.

    Every failure prints one line on stderr naming the file or flag and the fix (exit 1; 2 for a
    non-finite loss; 130 for Ctrl-C); ``--traceback`` or ``PGCNN_DEBUG=1`` shows the full traceback instead.
    """
    args = build_parser().parse_args(argv)
    return report_errors("pgcnn", lambda: _run(args, argv),
                         traceback=args.traceback or debug_requested([]))


def _run(args: argparse.Namespace, argv) -> None:
    """Run the parsed subcommand (its exceptions reach :func:`~pgcnn_triton.cli_errors.report_errors`)."""
    from .reproduce.cli import run as reproduce
    from .training import evaluate_checkpoint, plot_runs, train_from_args

    if args.command == "train":
        if not args.paper:
            filled = apply_bundled_run(args)
            if filled and os.environ.get("RANK", "0") == "0":  # under torchrun: rank 0 says it once
                print(describe_bundled_run(args.dataset, filled), flush=True)
        train_from_args(args)
    elif args.command == "reproduce":
        words = sys.argv[1:] if argv is None else list(argv)
        reproduce(args, command="pgcnn " + " ".join(shlex.quote(w) for w in words))
    elif args.command == "eval":
        result = evaluate_checkpoint(args.checkpoint, split=args.split, data_dir=args.data_dir,
                                     eval_mode=args.eval_mode, device=args.device, batch_size=args.batch_size,
                                     verify_data=not args.no_verify_data)
        print(json.dumps(result, indent=2) if args.json else format_evaluation(result))
    elif args.command == "export":
        from .deploy import run as export

        print(export(args))
    else:
        for path in plot_runs(args.run_dirs, args.out):
            print(path)


if __name__ == "__main__":
    sys.exit(main())
