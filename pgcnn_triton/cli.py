"""The ``pgcnn`` console script: ``pgcnn train …``, ``pgcnn eval CHECKPOINT``, ``pgcnn plot RUN_DIR…``,
``pgcnn reproduce``, ``pgcnn export CHECKPOINT --out FILE``.

``pgcnn train`` takes the same flags as ``examples/cifar10.py`` (see ``pgcnn train --help``) and runs
under ``torchrun`` as well; ``pgcnn eval`` rebuilds a checkpoint's (or a run directory's best) model and data and evaluates a split;
``pgcnn plot`` redraws a run's figures, or compares the learned equivariance of several runs;
``pgcnn reproduce`` runs the paper's comparative tables on the bundled digits (see ``pgcnn reproduce --help``);
``pgcnn export`` writes a trained model as a portable ONNX file or ``torch.export`` program (:mod:`.deploy`).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from .training.args import add_train_arguments
from .training.errors import NonFiniteLossError


def build_parser() -> argparse.ArgumentParser:
    """The ``pgcnn`` argument parser with its ``train`` / ``eval`` / ``plot`` subcommands."""
    from . import deploy
    from .reproduce import cli as reproduce_cli

    parser = argparse.ArgumentParser(prog="pgcnn", description="Partial G-CNNs: train, evaluate, plot, reproduce.")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a model (flags as examples/cifar10.py)")
    add_train_arguments(train)
    ev = sub.add_parser("eval", help="evaluate a checkpoint (best.pt or last.pt) or a run directory on a split")
    ev.add_argument("checkpoint", help="a checkpoint file, or a run directory (its best.pt)")
    ev.add_argument("--split", choices=("train", "val", "test"), default="test")
    ev.add_argument("--data-dir", default=None, help="dataset directory (default: the one used for training)")
    ev.add_argument("--eval-mode", choices=("deterministic", "stochastic", "mc"), default=None)
    ev.add_argument("--device", choices=("cpu", "cuda"), default=None)
    ev.add_argument("--batch-size", type=int, default=128)
    plot = sub.add_parser("plot", help="redraw run figures; several runs: compare learned equivariance")
    plot.add_argument("run_dirs", nargs="+")
    plot.add_argument("--out", default=None, help="output PNG of the learned-equivariance figure")
    reproduce_cli.add_arguments(sub.add_parser(
        "reproduce", help="the paper's comparative tables on the bundled digits (multi-seed, resumable)",
        description=reproduce_cli.__doc__.split("\n\n")[0], epilog=reproduce_cli.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter))
    deploy.add_arguments(sub.add_parser(
        "export", help="write a trained model as an ONNX file or a torch.export program (runs without pgcnn_triton)"))
    return parser


def main(argv=None) -> int:
    """Entry point of the ``pgcnn`` console script. Returns the exit status."""
    args = build_parser().parse_args(argv)
    from .training import evaluate_checkpoint, plot_runs, train_from_args
    from .reproduce.cli import run as reproduce

    try:
        if args.command == "train":
            train_from_args(args)
        elif args.command == "reproduce":
            words = sys.argv[1:] if argv is None else list(argv)
            reproduce(args, command="pgcnn " + " ".join(shlex.quote(w) for w in words))
        elif args.command == "eval":
            result = evaluate_checkpoint(args.checkpoint, split=args.split, data_dir=args.data_dir,
                                         eval_mode=args.eval_mode, device=args.device, batch_size=args.batch_size)
            print(json.dumps(result, indent=2))
        elif args.command == "export":
            from .deploy import run as export

            print(export(args))
        else:
            for path in plot_runs(args.run_dirs, args.out):
                print(path)
    except NonFiniteLossError as error:
        print(f"pgcnn: {error}", file=sys.stderr)
        return 2
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        print(f"pgcnn: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
