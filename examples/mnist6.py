"""MNIST6-180 / MNIST6-M: partial vs full G-CNNs on 6s against their rotated (or mirrored) copies.

    python examples/mnist6.py                     # MNIST6-180, SE(2) partial vs full, bundled digits
    python examples/mnist6.py --variant mirror    # MNIST6-M, E(2) partial vs full
    python examples/mnist6.py --paper --data-dir data   # the paper's configuration on the real MNIST idx files

A fully SE(2)-invariant network cannot tell a 6 from a 6 rotated by 180° (nor an E(2)-invariant one a 6
from its mirror image): it sits at 50 %. A partial network can learn to drop the part of the group that
hurts. The script trains both, prints a results table and the learned θ (and mirror probability) per
layer, and writes OUT_DIR/{partial,full}/ runs plus OUT_DIR/learned_equivariance.png and results.json.

Time on a 2-core CPU (README): MNIST6-180 about 35-45 s with bf16 units (AMD EPYC with AVX512-BF16 or an
Intel Xeon with AMX, bf16 by the precision policy), about 3 min without them (an AMD EPYC without AVX512,
fp32); MNIST6-M 1.5 min with bf16 units, several times that without.

Default (bundled) configuration, a short CPU run; the deviations from the paper (docs/reproducing.md#the-mnist6-runs) are:
SIREN kernels instead of MAGNet (MAGNet's initial kernels are nearly isotropic, so rotated copies are
almost identical and orientation is learned only after many epochs), one element set per batch instead
of per sample (7× cheaper on CPU), the full model uses the same architecture with θ fixed at 1, and
5 epochs (MNIST6-M: 15) of batch 32 with Adam lr 3e-3 and θ lr 3e-2 (MNIST6-M: 1e-1) instead of 300
epochs of batch 64 at 1e-3. MNIST6-M uses ``mirror_gradient="features"``: the mirror gate's
straight-through value (1) also multiplies the mirrored features, so its gradient reaches the mirror
logit through them; with the paper's estimator (gradient only through the mirror flag) the mirror
logits do not fall within a short run. ``--shape-mode static`` computes the same models sync-free.
Data: 300 / 50 / 150 bundled sixes for train / validation / test (600 / 100 / 300 images).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

from pgcnn_triton.cli_errors import report_errors
from pgcnn_triton.training import (
    add_train_arguments,
    format_equivariance_table,
    save_comparison,
    train_from_args,
)
from pgcnn_triton.training.args import fill_unset
from pgcnn_triton.training.recipes import bundled_run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--variant", choices=("180", "mirror"), default="180",
                        help="MNIST6-180 (SE(2)) or MNIST6-M (E(2)); default %(default)s")
    parser.add_argument("--paper", action="store_true",
                        help="the paper's configuration on the real MNIST idx files in --data-dir")
    parser.add_argument("--runs", choices=("both", "partial", "full"), default="both", help="which models to train")
    add_train_arguments(parser, out_dir_help="directory of both runs (default runs/<dataset>, e.g. "
                        "runs/bundled-mnist6-180; the runs go to OUT_DIR/partial and OUT_DIR/full)")
    return parser


def configure(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the variant's dataset, preset and (unless --paper) the short bundled-digits configuration."""
    name = "mnist6-180" if args.variant == "180" else "mnist6-m"
    args.dataset = name if args.paper else f"bundled-{name}"
    args.group = "se2" if args.variant == "180" else "e2"
    if not args.paper:
        fill_unset(args, bundled_run(args.dataset))  # the short run (recipes.BUNDLED_RUNS)
    if args.out_dir is None:
        args.out_dir = str(Path("runs") / args.dataset)
    return args


def main(argv=None) -> dict:
    args = configure(build_parser().parse_args(argv))
    runs = ("partial", "full") if args.runs == "both" else (args.runs,)
    results, started = {}, time.perf_counter()
    for kind in runs:
        run = copy.copy(args)
        run.partial = kind == "partial"
        run.out_dir = str(Path(args.out_dir) / kind)
        print(f"\n=== {args.dataset}: {args.group.upper()} {kind} ===", flush=True)
        summary = train_from_args(run, verbose=False)
        summary["label"] = f"{args.group.upper()} {kind}"
        results[kind] = summary
    paths = save_comparison(results, args.out_dir, title=f"{args.dataset}: learned equivariance")
    print(report(results, args, time.perf_counter() - started))
    print(f"\nfigure: {paths['png']}\nresults: {paths['json']}")
    return results


def report(results: dict, args, seconds: float) -> str:
    """The results table and the learned θ / mirror probability per layer."""
    sizes = next(iter(results.values()))["dataset_sizes"]
    lines = [f"\n{args.dataset} ({', '.join(f'{k} {v}' for k, v in sizes.items())} images)",
             f"{'model':<14}{'params':>9}{'epochs':>8}{'best epoch':>12}{'val acc':>9}{'test acc':>10}{'time':>9}",
             "-" * 71]
    for s in results.values():
        lines.append(f"{s['label']:<14}{s['parameters']:>9,}{s['epochs_run']:>8}{s.get('best_epoch', 0):>12}"
                     f"{s.get('val_acc', float('nan')):>9.3f}{s['test_acc']:>10.3f}{s['train_time_s']:>8.0f}s")
    lines.append(f"\nlearned equivariance per layer (θ: the layer keeps rotations in [−πθ, πθ); θ = 1 full"
                 f"{'; mirror p: keep probability of the mirrors' if args.group == 'e2' else ''}):")
    lines.append(format_equivariance_table({kind: s["learned_equivariance"] for kind, s in results.items()}))
    lines.append(f"\ntotal {seconds:.0f} s")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(report_errors("mnist6.py", main))  # one-line errors, as pgcnn train (--traceback: full)
