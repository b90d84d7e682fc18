"""How one group conv's cost follows the number of elements N and, in dynamic mode, the learned θ.

    python benchmarks/scaling.py            # CPU (B=8, C=16, k=7, 32x32)
    python benchmarks/scaling.py --quick    # smoke run
    (on GPU: benchmarks/device_check.sh calls run() with B=64, C=32)

Each row times one ``GroupConv`` training call, forward + backward (kernel net, bank, group conv and
their gradients), on input features ``[B, C, N_in, H, W]``:

* **N scaling**: a full (non-partial) layer with N_in = N_out = N ∈ {1, 2, 4, 8, 16}; the conv's
  FLOPs grow as N², so the time should too once the conv dominates;
* **θ scaling** (``shape_mode="dynamic"``, N = 8): a partial layer whose θ is set to
  0.125, 0.25, 0.5, 0.75, 1 carries n = ceil(8θ) = 1, 2, 4, 6, 8 output elements, so its cost falls
  with the equivariance it learned (the static mode would always pay for 8).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from common import Deadline, Precision, emit, machine, table, timed, write_report  # noqa: E402
from pgcnn_triton.kernels import use_backend  # noqa: E402

from pgcnn_triton import GroupConv  # noqa: E402

N_VALUES = (1, 2, 4, 8, 16)
THETAS = (0.125, 0.25, 0.5, 0.75, 1.0)
# the tiny CPU run of the device check (interpreter, ~1 s a row): two points per sweep run every code path
# (N = 1 and the presets' 8; θ < 1 with fewer output elements than N, and θ = 1); the full sweeps on the
# torch backend are tests/test_benchmark_script.py's
TINY_N_VALUES = (1, 8)
TINY_THETAS = (0.5, 1.0)
COLUMNS = ["sweep", "N", "theta", "n_out", "backend", "precision", "ms", "vs_last"]


def _layer_step(layer, x, elements, prec):
    def step():
        layer.zero_grad(set_to_none=True)
        with prec.autocast():
            y = layer(x, elements)[0]
        y.float().square().mean().backward()
    return step


def run(device, batch, channels, size, backend="torch", precision="fp32", reps=5, warmup=1,
        deadline: Deadline | None = None, sink=None, n_values=N_VALUES, thetas=THETAS) -> list[dict]:
    """The N sweep over ``n_values``, then the θ sweep over ``thetas`` (N = 8), each row emitted as measured."""
    deadline = deadline or Deadline(None)
    prec = Precision(precision, device.type)
    rows = []
    with prec, use_backend(backend):
        for n in n_values:
            if not deadline.allows(5):
                break
            torch.manual_seed(0)
            layer = GroupConv(channels, channels, 7, num_elements=n, partial=False, per_layer=False,
                              shape_mode="static").to(device)
            x = torch.randn(batch, channels, n, size, size, device=device, requires_grad=True)
            elements = (2 * torch.pi * torch.arange(n, dtype=torch.float64, device=device) / n)[None]
            ms = timed(_layer_step(layer, x, elements, prec), device, reps, warmup)
            row = dict(sweep="N", N=n, theta=1.0, n_out=n, backend=backend, precision=precision, ms=ms)
            emit(row, sink)
            rows.append(row)
        torch.manual_seed(0)
        layer = GroupConv(channels, channels, 7, num_elements=8, partial=True, shape_mode="dynamic").to(device)
        x = torch.randn(batch, channels, 8, size, size, device=device, requires_grad=True)
        elements = (2 * torch.pi * torch.arange(8, dtype=torch.float64, device=device) / 8)[None]
        for theta in thetas:
            if not deadline.allows(5):
                break
            with torch.no_grad():
                layer.sampler.probs.fill_(theta)
            with torch.no_grad():
                n_out = layer(x, elements)[0].shape[2]
            ms = timed(_layer_step(layer, x, elements, prec), device, reps, warmup)
            row = dict(sweep="theta", N=8, theta=theta, n_out=n_out, backend=backend, precision=precision, ms=ms)
            emit(row, sink)
            rows.append(row)
    for sweep in ("N", "theta"):
        part = [r for r in rows if r["sweep"] == sweep]
        for r in part:
            r["vs_last"] = r["ms"] / part[-1]["ms"]
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="B=1, C=2, 12x12, 1 repeat")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.channels, args.size, args.reps = 1, 2, 12, 1
    rows = run(torch.device("cpu"), args.batch, args.channels, args.size, reps=args.reps)
    report = (f"scaling.py on {machine()}: one GroupConv fwd+bwd, B={args.batch}, C={args.channels}, k=7, "
              f"{args.size}x{args.size}, median of {args.reps}; vs_last = ms / ms of the last row of the sweep\n\n"
              + table(rows, COLUMNS))
    write_report(args.out, "scaling", report, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
