"""Train a Partial G-CNN on rotated MNIST.

    python examples/rotmnist.py                                  # bundled digits, offline (small rotated MNIST)
    python examples/rotmnist.py --dataset rotmnist --data-dir data   # the real mnist_rotation_new.zip, paper recipe
    python examples/rotmnist.py --group e2 --no-partial
    python examples/rotmnist.py --model augerino-ckresnet           # the Augerino baseline (learned augmentation)

Paper recipe (docs/method.md#settings-per-dataset): CKResNet SE(2) partial N = 8, batch 64, 300 epochs, Adam lr 1e-3, 5 warm-up
epochs + cosine, monotonic θ regulariser 1e-3 (SE(2) partial); E(2): θ lr 1e-4. On the bundled digits the
defaults are a short CPU run: 5 epochs, hidden 16, N = 4 (override any of them with flags).
"""

from __future__ import annotations

import argparse
import sys

from pgcnn_triton.cli_errors import report_errors
from pgcnn_triton.training import add_train_arguments
from pgcnn_triton.training.args import fill_unset
from pgcnn_triton.training.recipes import bundled_run
from pgcnn_triton.training.reuse import train_or_show


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    add_train_arguments(parser, dataset="bundled-rotmnist")
    args = parser.parse_args(argv)
    if args.dataset not in ("rotmnist", "bundled-rotmnist"):
        parser.error(f"--dataset must be rotmnist or bundled-rotmnist here, got {args.dataset}")
    if args.dataset == "bundled-rotmnist":
        fill_unset(args, bundled_run(args.dataset))  # a short CPU run (recipes.BUNDLED_RUNS)
    return train_or_show(args)  # run again: a finished run is shown, other settings get a new directory


if __name__ == "__main__":
    sys.exit(report_errors("rotmnist.py", main))  # one-line errors, as pgcnn train (--traceback: full)
