"""Offline demo: build Partial G-CNNs, run them on bundled MNIST digits, print measured equivariance.

    python examples/demo.py [--digits 16] [--preset mnist6-180-se2-partial]

For an SE(2) model and an E(2) model (untrained; BatchNorm statistics warmed on the digits), it prints
the relative invariance error of the logits ‖f(T x) − f(x)‖ / ‖f(x)‖ under exact transforms (rot90,
rot180, flips) and arbitrary-angle rotations, first with every layer fully equivariant (θ = 1, the
initialisation) and then with the subsets shrunk (θ = 0.5, mirrors dropped), as a trained partial
layer may learn. Exact transforms give errors at float rounding when the layers keep the whole group.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings

import torch

from pgcnn_triton import GroupConv, PartialGCNN
from pgcnn_triton.cli_errors import report_errors
from pgcnn_triton.data import load_bundled_digits
from pgcnn_triton.equivariance import equivariance_error, flip_h, flip_w, rot90, rotation


def digits(count: int) -> torch.Tensor:
    images, labels = load_bundled_digits()
    per_class = math.ceil(count / 10)
    pick = torch.cat([torch.nonzero(labels == d).flatten()[:per_class] for d in range(10)])[:count]
    x = images[pick].float().div(255.0).sub(0.1307).div(0.3081)
    return x[:, None]  # [B, 1, 28, 28]


def shrink(model: PartialGCNN, theta: float, mirror_logit: float) -> None:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, GroupConv) and m.sampler is not None:
                m.sampler.probs[0] = theta
                if m.sampler.probs.numel() > 1:
                    m.sampler.probs[1] = mirror_logit


def measure(model, x, transforms):
    # the shrunk models are measured to show what they break: the kit's warning that they are partial is known
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is not meant to be exactly equivariant", category=UserWarning)
        return {t.name: equivariance_error(model, x, t) for t in transforms}


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--digits", type=int, default=16, help="number of bundled digits to run (default 16)")
    parser.add_argument("--preset", default="mnist6-180-se2-partial",
                        help="PartialGCNN preset for the SE(2) model (its E(2) twin is mnist6-m-e2-partial)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--traceback", action="store_true", help="on an error show the full traceback")
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    x = digits(args.digits)
    rows = []
    started = time.perf_counter()
    for preset, transforms in (
        (args.preset, [rot90(1), rot90(2), rotation(math.pi / 4), rotation(0.3)]),
        ("mnist6-m-e2-partial", [rot90(1), flip_w(), flip_h(), rotation(math.pi / 4)]),
    ):
        model = PartialGCNN.from_preset(preset, in_channels=1, per_batch_element=False)
        model.train()
        with torch.no_grad():
            model(x)  # BatchNorm statistics from the digits
        model.eval()
        params = sum(p.numel() for p in model.parameters())
        for setting, theta, mirror in (("full (theta=1)", 1.0, 5.0), ("partial (theta=0.5, no mirrors)", 0.5, -5.0)):
            shrink(model, theta, mirror)
            errors = measure(model, x, transforms)
            rows.append({"preset": preset, "params": params, "setting": setting, "errors": errors})

    print(f"pgcnn_triton demo: {x.shape[0]} bundled MNIST digits {tuple(x.shape[1:])}, deterministic evaluation")
    print("relative invariance error of the logits  ||f(Tx) - f(x)|| / ||f(x)||\n")
    for row in rows:
        print(f"{row['preset']} ({row['params']:,} parameters), {row['setting']}")
        print("  " + "  ".join(f"{name}: {err:.2e}" for name, err in row["errors"].items()))
    print(f"\n({time.perf_counter() - started:.1f} s on {torch.get_num_threads()} CPU threads)")
    return rows


if __name__ == "__main__":
    sys.exit(report_errors("demo.py", main))  # one-line errors, as pgcnn (--traceback: full)
