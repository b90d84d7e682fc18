"""One 5×5 (or 3×3) convolution in ONNX Runtime as a ``Conv`` node and as the Winograd graph of
:mod:`pgcnn_triton.winograd`, with torch's own ``conv2d`` beside them: the measurements behind the
``conv_algorithm="auto"`` thresholds (``winograd.AUTO_RULE``).

Each shape ``C_in:C_out:side`` is a 'same' convolution on ``side``×``side`` maps, random fp32 input;
median of ``--reps`` calls after one warm-up (each form in turn), ``--threads`` threads for torch and ONNX Runtime.

    OMP_NUM_THREADS=1 python benchmarks/winograd_convs.py --threads 1
    python benchmarks/winograd_convs.py --kernel 3 --shapes 256:256:16,128:128:32 --batches 64
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.export import Dim

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, ort_cpu_session, table, timed, write_report  # noqa: E402

from pgcnn_triton import winograd  # noqa: E402

CPU = torch.device("cpu")
DEFAULT_SHAPES = "256:256:14,256:512:7,512:512:7,64:64:32,128:128:32,512:512:4"


class Direct(nn.Module):
    def __init__(self, weight):
        super().__init__()
        self.register_buffer("weight", weight)

    def forward(self, x):
        return F.conv2d(x, self.weight, padding=self.weight.shape[-1] // 2)


class Winograd(Direct):
    def forward(self, x):
        pad = self.weight.shape[-1] // 2
        return winograd.conv2d(x, self.weight, (pad, pad, pad, pad))


def onnx_session(module, x, folder, name, threads):
    example = x[:1].expand(2, *x.shape[1:]).contiguous()
    program = torch.export.export(module, (example,), dynamic_shapes=({0: Dim("batch", min=1, max=1 << 16)},))
    path = Path(folder) / f"{name}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(program, (example,), dynamo=True, verbose=False).save(str(path))
    session = ort_cpu_session(path, threads)
    key = session.get_inputs()[0].name
    return lambda inp: session.run(None, {key: inp.numpy()})[0]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shapes", default=DEFAULT_SHAPES, help="comma-separated C_in:C_out:side (default %(default)s)")
    p.add_argument("--kernel", type=int, default=5, choices=(3, 5))
    p.add_argument("--batches", default="1,64")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="folder for NAME.md / NAME.json (default: print only)")
    p.add_argument("--name", default="winograd-convs")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as folder, torch.no_grad():
        for spec in args.shapes.split(","):
            c_in, c_out, side = (int(v) for v in spec.split(":"))
            torch.manual_seed(0)
            weight = torch.randn(c_out, c_in, args.kernel, args.kernel) / (c_in * args.kernel ** 2) ** 0.5
            direct, fast = Direct(weight), Winograd(weight)
            probe = torch.randn(2, c_in, side, side)
            ort_direct = onnx_session(direct, probe, folder, "direct", args.threads)
            ort_fast = onnx_session(fast, probe, folder, "winograd", args.threads)
            for batch in (int(b) for b in args.batches.split(",")):
                x = torch.randn(batch, c_in, side, side)
                expected = F.conv2d(x.double(), weight.double(), padding=args.kernel // 2)
                err = float((torch.from_numpy(ort_fast(x)).double() - expected).norm() / expected.norm())
                times = {name: timed(lambda fn=fn: fn(x), CPU, args.reps) for name, fn in
                         (("ort_conv_ms", ort_direct), ("ort_winograd_ms", ort_fast), ("torch_conv2d_ms", direct))}
                rows.append({"kernel": args.kernel, "c_in": c_in, "c_out": c_out, "side": side, "batch": batch, **times,
                             "winograd_speedup": times["ort_conv_ms"] / times["ort_winograd_ms"],
                             "auto_takes_it": winograd.pays(args.kernel, c_in, c_out, (side, side)),
                             "winograd_rel_err": err})
                print(rows[-1], flush=True)
    header = (f"winograd_convs.py on {machine()}; median of {args.reps} calls after one warm-up; "
              f"winograd_speedup = ORT Conv time / ORT Winograd time.\n")
    write_report(args.out, args.name, header + "\n" + table(rows, list(rows[0])), {"rows": rows})
    return rows


if __name__ == "__main__":
    main()
