"""Train a Partial G-CNN on CIFAR-10 (or CIFAR-100 / PatchCamelyon) with the paper's recipe.

    python examples/cifar10.py --download                       # CKResNet SE(2) partial, N = 8, k = 7, 300 epochs
    python examples/cifar10.py --group e2 --no-partial          # full E(2) baseline
    python examples/cifar10.py --model gcnn --epochs 205        # the deeper G-CNN
    python examples/cifar10.py --model augerino-ckresnet        # the Augerino baseline (learned augmentation)
    python examples/cifar10.py --resume                         # continue runs/<...>/last.pt at the next epoch
    torchrun --nproc_per_node=4 examples/cifar10.py             # DistributedDataParallel, one GPU per process

Defaults follow docs/method.md#settings-per-dataset: batch 64, Adam lr 1e-3, θ lr 1e-4, kernel-norm regulariser 1e-4,
5 warm-up epochs then per-iteration cosine to 1e-6, best-validation checkpoint on the 45k/5k split,
early stopping after 100 epochs without improvement, bf16 autocast and channels-last on GPU.
Writes to --out-dir: last.pt, best.pt, metrics.csv, summary.json, curves.png, learned_equivariance.png.
"""

from __future__ import annotations

import argparse
import sys

from pgcnn_triton.cli_errors import report_errors
from pgcnn_triton.training import add_train_arguments
from pgcnn_triton.training.reuse import train_or_show


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    add_train_arguments(parser, dataset="cifar10")
    args = parser.parse_args(argv)
    if args.dataset not in ("cifar10", "cifar100", "pcam"):
        parser.error(f"--dataset must be cifar10, cifar100 or pcam here, got {args.dataset}")
    return train_or_show(args)  # run again: a finished run is shown, other settings get a new directory


if __name__ == "__main__":
    sys.exit(report_errors("cifar10.py", main))  # one-line errors, as pgcnn train (--traceback: full)
