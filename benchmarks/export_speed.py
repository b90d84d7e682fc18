"""CPU inference speed of the three deployment forms of one model, in one run (issue 26):

* ``frozen``: ``model.freeze()`` (tap-packed banks, the library's CPU lowering: the split disk cover);
* ``portable``: ``pgcnn_triton.portable(model)`` (dense ``conv2d`` on the k×k grid, zeros outside the
  disk; plain torch ops, a ``torch.fx.GraphModule``);
* ``onnxruntime``: the ONNX file of ``pgcnn_triton.deploy.export_model`` in an ONNX Runtime CPU session
  (``intra_op_num_threads`` = torch's thread count, so both use the same cores).

All in fp32, eval, deterministic elements, ``no_grad``, on random input ``[B, C, S, S]`` (S = 28 for
the (rot)MNIST presets, 32 otherwise); time = the median of ``--reps`` calls after ``--warmup``
untimed ones. Each row also gives the logits' difference to the eager eval model (relative,
‖y − y_eval‖ / ‖y_eval‖, and the largest absolute one). The export
times (portable program, ONNX file) are reported once.

    python benchmarks/export_speed.py                                 # CKResNet rotmnist-se2-partial
    python benchmarks/export_speed.py --family gcnn --preset rotmnist-se2-partial
    python benchmarks/export_speed.py --out benchmarks/results --name 2026-12-04-export-speed-epyc
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, table, timed, write_report  # noqa: E402

from pgcnn_triton import GCNN, PartialGCNN, deploy, portable  # noqa: E402

FAMILIES = {"ckresnet": PartialGCNN, "gcnn": GCNN}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--family", choices=sorted(FAMILIES), default="ckresnet")
    p.add_argument("--preset", default="rotmnist-se2-partial")
    p.add_argument("--batches", default="1,64", help="comma-separated batch sizes (default %(default)s)")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="folder for NAME.md / NAME.json (default: print only)")
    p.add_argument("--name", default="export-speed")
    args = p.parse_args(argv)
    try:
        args.batches = [int(b) for b in args.batches.split(",")]
    except ValueError:
        p.error(f"--batches must be comma-separated ints, got {args.batches!r}")
    if min(args.batches) < 1 or args.reps < 1 or args.warmup < 0:
        p.error("--batches and --reps must be >= 1, --warmup >= 0")
    return args


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    import onnxruntime as ort

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = FAMILIES[args.family].from_preset(args.preset).eval()
    size = 28 if args.preset.startswith(("mnist", "rotmnist")) else 32
    example = torch.randn(1, model.input_channels, size, size)

    t0 = time.perf_counter()
    frozen = model.freeze(example_input=example)
    t1 = time.perf_counter()
    program = portable(model, example_input=example)
    t2 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = deploy.export_model(model, Path(tmp) / "model.onnx", example_input=example)
        t3 = time.perf_counter()
        onnx_mib = os.path.getsize(path) / 2 ** 20
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run_onnx(x):
        return torch.from_numpy(session.run(None, {deploy.ONNX_INPUT: x.numpy()})[0])

    paths = {"frozen": frozen, "portable": program, "onnxruntime": run_onnx}
    rows = []
    device = torch.device("cpu")
    for batch in args.batches:
        x = torch.randn(batch, model.input_channels, size, size)
        with torch.no_grad():
            expected = model(x)
            base = None
            for name, fn in paths.items():
                ms = timed(lambda fn=fn, x=x: fn(x), device, args.reps, args.warmup)
                base = base or ms
                y = fn(x)
                rows.append({"model": f"{args.family} {args.preset}", "form": name, "batch": batch, "ms": ms,
                             "img_per_s": batch / ms * 1e3, "vs_frozen": base / ms,
                             "rel_err": float((y - expected).norm() / expected.norm()),
                             "max_abs_diff": float((y - expected).abs().max())})
    header = (f"export_speed.py on {machine()}; reps {args.reps}, warm-up {args.warmup}; "
              f"onnxruntime {ort.__version__}\n\n"
              f"Build times: freeze {t1 - t0:.1f} s, portable program {t2 - t1:.1f} s, ONNX file "
              f"{t3 - t2:.1f} s ({onnx_mib:.1f} MiB). vs_frozen > 1: faster than the frozen model.\n")
    report = header + "\n" + table(rows, ["model", "form", "batch", "ms", "img_per_s", "vs_frozen", "rel_err",
                                        "max_abs_diff"])
    write_report(args.out, args.name, report, rows)
    return rows


if __name__ == "__main__":
    main()
