"""CPU benchmark of a PartialGCNN preset against the bare dense convolutions it lowers to.

Measures, on CPU, in one run, in fp32 and in bf16 (``torch.autocast("cpu", torch.bfloat16)``, the
precision policy's choice on CPUs with bf16 units):

1. forward+backward time (median over ``--repeats`` after ``--warmup`` untimed iterations) and peak
   memory of ``PartialGCNN.from_preset(--preset)`` in train mode on a random input
   ``[batch, C, S, S]`` (C = ``model.lift.in_channels``; S = 28 for mnist*/rotmnist* presets, 32
   otherwise, or ``--image-size``), loss = cross-entropy with random labels; once with the library's
   CPU lowering (split disk cover, channels-last where it pays: ``auto``) and once with the dense
   masked NCHW lowering it had before (``dense``);
2. the time of the bare dense convolutions the model runs: forward hooks on every ``LiftingConv``,
   ``GroupConv`` and ``PointwiseGroupConv`` record the shapes of each layer's dense lowering
   (input ``[B, C_in*N_in, H, W]``, weight ``[C_out*N_out, C_in*N_in, k, k]``, the layer's padding,
   bias if the layer has one), and each is replayed as one ``F.conv2d`` forward+backward. A layer
   whose element sets are per sample (``per_batch_element=True`` presets) runs, like the model, one
   grouped conv (input ``[1, B*C_in*N_in, H, W]``, weight ``[B*C_out*N_out, C_in*N_in, k, k]``,
   ``groups=B``). The shapes are those of the same timed iterations as the model (partial layers
   may change N_out between forwards), so the sum compares like with like; the single largest
   conv (by multiply-adds) is also timed alone. The bare convs run in NCHW and in channels-last;
3. a markdown table per precision (model ms with either lowering, sums of the bare convs NCHW and
   channels-last, ratio, largest conv ms, model peak memory) plus the
   torch version, thread count, CPU model and date, ready to paste into BENCHMARKS.md.

Peak memory: each model measurement runs in a fresh subprocess; it reads ``ru_maxrss`` (the process's
peak resident set size) once after imports, model construction and input creation (the baseline)
and again after all the timed iterations. The difference is the extra peak the forward+backward
needed (activations, saved tensors, gradients, allocator/library workspaces); parameters and the
input are in the baseline.

Full measurement (defaults: batch 8, 5 repeats, 1 warmup, cifar10-se2-partial)::

    python benchmarks/cpu_model.py

Quick check::

    python benchmarks/cpu_model.py --batch 1 --repeats 1 --warmup 0
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

_RESULT_MARK = "@@RESULT "
PRECISIONS = ("fp32", "bf16")


# --------------------------------------------------------------------------------------------------
# options
# --------------------------------------------------------------------------------------------------
def default_image_size(preset: str) -> int:
    """28 for the (rot)MNIST presets, 32 otherwise (CIFAR)."""
    return 28 if preset.startswith(("mnist", "rotmnist")) else 32


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="cifar10-se2-partial", help="PartialGCNN preset (default %(default)s)")
    p.add_argument("--batch", type=int, default=8, help="batch size (default %(default)s)")
    p.add_argument("--repeats", type=int, default=5, help="timed iterations; the median is reported (default %(default)s)")
    p.add_argument("--warmup", type=int, default=1, help="untimed iterations first (default %(default)s)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    p.add_argument("--image-size", type=int, default=None,
                   help="input height = width (default: 28 for mnist*/rotmnist* presets, 32 otherwise)")
    p.add_argument("--seed", type=int, default=0, help="torch.manual_seed for model, input and sampling")
    p.add_argument("--precisions", default="fp32,bf16",
                   help="comma-separated, of fp32 and bf16 (default %(default)s)")
    p.add_argument("--worker", choices=("model", "convs"), default=None, help=argparse.SUPPRESS)
    p.add_argument("--precision", choices=PRECISIONS, default="fp32", help=argparse.SUPPRESS)
    p.add_argument("--lowering", choices=("auto", "dense"), default="auto", help=argparse.SUPPRESS)
    return p


def parse_args(argv=None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    for name in ("batch", "repeats"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.warmup < 0:
        raise SystemExit(f"--warmup must be >= 0, got {args.warmup}")
    if args.threads is not None and args.threads < 1:
        raise SystemExit(f"--threads must be >= 1, got {args.threads}")
    if args.image_size is None:
        args.image_size = default_image_size(args.preset)
    args.precision_list = [p for p in args.precisions.split(",") if p]
    if not args.precision_list or any(p not in PRECISIONS for p in args.precision_list):
        raise SystemExit(f"--precisions must list some of {PRECISIONS}, got {args.precisions!r}")
    return args


# --------------------------------------------------------------------------------------------------
# workers (each runs in its own fresh process)
# --------------------------------------------------------------------------------------------------
def _maxrss_bytes() -> int:
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # Linux reports KiB, macOS bytes


def _setup_torch(args):
    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    return torch


def _dtype(torch, args):
    return torch.bfloat16 if args.precision == "bf16" else torch.float32


def _memory_format(torch, args):  # args.layout: set per measurement by worker_convs
    return torch.channels_last if args.layout == "cl" else torch.contiguous_format


def _record_hook(module_name, kind, records):
    """Forward hook: append the dense-lowering shape of this conv call to ``records``."""
    from pgcnn_triton.kernels import resolve_padding

    def hook(module, inputs, output):
        x = inputs[0]
        y, g_out = output
        if kind == "LiftingConv":
            b, c_in, h, w = x.shape
            n_in, sets = 1, g_out.shape[0]
        else:
            b, c_in, n_in, h, w = x.shape
            sets = max(inputs[1].shape[0], g_out.shape[0])  # elements_in, elements_out
        _, c_out, n_out, ho, wo = y.shape
        k = module.kernel_size
        records.append(dict(
            layer=module_name, kind=kind, batch=b, cin=c_in * n_in, cout=c_out * n_out, h=h, w=w, ho=ho, wo=wo,
            k=k, padding=resolve_padding(module.padding, k), bias=module.bias is not None,
            groups=b if sets > 1 else 1, x_grad=bool(x.requires_grad),
        ))
    return hook


def worker_model(args) -> dict:
    torch = _setup_torch(args)
    import torch.nn.functional as F
    from pgcnn_triton.kernels import group_conv_reference

    from pgcnn_triton import PartialGCNN
    from pgcnn_triton.nn import GroupConv, LiftingConv, PointwiseGroupConv

    group_conv_reference.CPU_LOWERING = args.lowering
    model = PartialGCNN.from_preset(args.preset).train()
    in_channels = model.lift.in_channels
    num_classes = model.head.out_features
    x = torch.randn(args.batch, in_channels, args.image_size, args.image_size)
    labels = torch.randint(0, num_classes, (args.batch,))

    current: list = []
    kinds = (LiftingConv, GroupConv, PointwiseGroupConv)
    for name, module in model.named_modules():
        if isinstance(module, kinds):
            module.register_forward_hook(_record_hook(name, type(module).__name__, current))

    baseline = _maxrss_bytes()
    times, shape_sets = [], []
    for i in range(args.warmup + args.repeats):
        model.zero_grad(set_to_none=True)
        current.clear()
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), labels)
        loss.backward()
        elapsed = time.perf_counter() - t0
        shape_sets.append(list(current))
        if i >= args.warmup:
            times.append(elapsed)
    peak = _maxrss_bytes() - baseline
    return dict(
        times_s=times, shape_sets=shape_sets, peak_bytes=peak, baseline_bytes=baseline,
        torch_version=torch.__version__, threads=torch.get_num_threads(), in_channels=in_channels,
        num_classes=num_classes, params=sum(p.numel() for p in model.parameters()),
    )


def _conv_tensors(torch, s, dtype, memory_format):
    """Input, weight, bias and output gradient of one recorded dense lowering."""
    g = s["groups"]
    x_shape = (1, g * s["cin"], s["h"], s["w"]) if g > 1 else (s["batch"], s["cin"], s["h"], s["w"])

    def make(*shape, grad=True):
        t = torch.randn(*shape, dtype=dtype)
        if t.dim() == 4:
            t = t.contiguous(memory_format=memory_format)
        return t.requires_grad_(grad)

    x = make(*x_shape, grad=s["x_grad"])
    w = make(g * s["cout"], s["cin"], s["k"], s["k"])
    b = make(g * s["cout"]) if s["bias"] else None
    out_shape = (1, g * s["cout"], s["ho"], s["wo"]) if g > 1 else (s["batch"], s["cout"], s["ho"], s["wo"])
    return x, w, b, make(*out_shape, grad=False)


def _time_conv(torch, F, s, tensors) -> float:
    x, w, b, gy = tensors
    for t in (x, w, b):
        if t is not None:
            t.grad = None
    t0 = time.perf_counter()
    y = F.conv2d(x, w, b, padding=s["padding"], groups=s["groups"])
    torch.autograd.backward(y, gy)
    elapsed = time.perf_counter() - t0
    if tuple(y.shape) != tuple(gy.shape):
        raise RuntimeError(f"dense lowering of {s['layer']} gave {tuple(y.shape)}, expected {tuple(gy.shape)}")
    return elapsed


def worker_convs(args, payload) -> dict:
    """Every precision × layout in one process: replay each model iteration's convs (same warmup/timed
    split; per-iteration sums), then the largest conv alone."""
    torch = _setup_torch(args)
    import torch.nn.functional as F

    shape_sets, largest = payload["shape_sets"], payload["largest"]
    out = {}
    for precision in args.precision_list:
        for layout in ("nchw", "cl"):
            args.precision, args.layout = precision, layout
            dtype, memory_format = _dtype(torch, args), _memory_format(torch, args)
            sums, per_layer = [], []
            for i, shapes in enumerate(shape_sets):
                layer_times = [_time_conv(torch, F, s, _conv_tensors(torch, s, dtype, memory_format)) for s in shapes]
                if i >= args.warmup:
                    sums.append(sum(layer_times))
                    per_layer.append(layer_times)
            tensors = _conv_tensors(torch, largest, dtype, memory_format)
            times = [_time_conv(torch, F, largest, tensors) for _ in range(args.warmup + args.repeats)]
            out[f"{precision} {layout}"] = dict(sums_s=sums, per_layer_s=per_layer, largest_s=times[args.warmup:])
    return out


def _run_worker(args) -> None:
    payload = json.load(sys.stdin) if args.worker == "convs" else None
    result = worker_model(args) if args.worker == "model" else worker_convs(args, payload)
    sys.stdout.write(_RESULT_MARK + json.dumps(result) + "\n")
    sys.stdout.flush()


def _spawn(args, worker: str, payload=None, precision="fp32", lowering="auto") -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", worker, "--preset", args.preset,
           "--batch", str(args.batch), "--repeats", str(args.repeats), "--warmup", str(args.warmup),
           "--image-size", str(args.image_size), "--seed", str(args.seed), "--precision", precision,
           "--lowering", lowering, "--precisions", args.precisions]
    if args.threads is not None:
        cmd += ["--threads", str(args.threads)]
    proc = subprocess.run(cmd, input=None if payload is None else json.dumps(payload),
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{worker} worker failed (exit {proc.returncode}):\n{proc.stderr}")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(_RESULT_MARK):
            return json.loads(line[len(_RESULT_MARK):])
    raise RuntimeError(f"{worker} worker printed no result:\n{proc.stdout}\n{proc.stderr}")


# --------------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------------
def _macs(s) -> int:
    return s["groups"] * s["batch"] * s["cout"] * s["ho"] * s["wo"] * s["cin"] * s["k"] * s["k"]


def _shape_text(s) -> tuple[str, str]:
    g = s["groups"]
    if g > 1:
        x = f"[1, {g}*{s['cin']}, {s['h']}, {s['w']}]"
        w = f"[{g}*{s['cout']}, {s['cin']}, {s['k']}, {s['k']}]"
    else:
        x = f"[{s['batch']}, {s['cin']}, {s['h']}, {s['w']}]"
        w = f"[{s['cout']}, {s['cin']}, {s['k']}, {s['k']}]"
    return x, w


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f}"


def _ms(times) -> float:
    return statistics.median(times) * 1e3


def format_report(args, runs: dict, largest_shape: dict) -> str:
    """``runs``: ``{(precision, "model", lowering) | (precision, "convs", layout): result}``."""
    from pgcnn_triton.precision import cpu_bf16_units, cpu_model_name, default_amp

    base = runs[(args.precision_list[0], "model", "auto")]
    timed_sets = base["shape_sets"][args.warmup:]
    first = timed_sets[0]
    varying = any([_key(s) for s in t] != [_key(s) for s in first] for t in timed_sets)
    per_batch = any(s["groups"] > 1 for t in timed_sets for s in t)
    size = args.image_size
    lx, lw = _shape_text(largest_shape)
    policy = "bf16" if default_amp("cpu") else "fp32"

    lines = [
        f"### CPU: PartialGCNN `{args.preset}`, forward+backward, batch {args.batch}",
        "",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- torch {base['torch_version']}, threads: {base['threads']} (torch.get_num_threads()), "
        f"python {platform.python_version()}",
        f"- CPU: {cpu_model_name()} ({os.cpu_count()} logical CPUs visible); bf16 units: "
        f"{cpu_bf16_units() or 'none'}; the precision policy's default here: {policy}",
        f"- model: {base['params']:,} parameters, train mode; input [{args.batch}, {base['in_channels']}, "
        f"{size}, {size}] float32; loss = cross-entropy with random labels; seed {args.seed}; bf16 = "
        "torch.autocast('cpu', torch.bfloat16)",
        "- model lowering: `auto` = the library's CPU path (split disk cover from 64 input channels, channels-last); "
        "`dense` = one conv2d on the zero-masked k×k bank in NCHW (the lowering before the split one)",
        f"- timing: time.perf_counter, median of {args.repeats} timed iteration(s) after {args.warmup} warmup",
        f"- bare dense convs: one F.conv2d forward+backward per LiftingConv/GroupConv/PointwiseGroupConv call "
        f"({len(first)} per forward), shapes of the dense lowering recorded by forward hooks in the same "
        f"timed iterations; backward takes a random output gradient; NCHW or channels-last tensors"
        + ("; per-sample element sets run as one grouped conv (groups = B), as the model does" if per_batch else ""),
        "- peak memory: each model measurement runs in a fresh subprocess; peak = ru_maxrss (peak RSS) after "
        "all iterations minus ru_maxrss after imports, model construction and input creation",
        "",
        "| precision | model `auto` (ms) | model `dense` (ms) | bare dense convs NCHW (ms) | bare dense convs CL (ms) "
        "| model `auto` / convs NCHW | largest conv NCHW / CL (ms) | model peak MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for prec in args.precision_list:
        auto, dense = _ms(runs[(prec, "model", "auto")]["times_s"]), _ms(runs[(prec, "model", "dense")]["times_s"])
        nchw, cl = _ms(runs[(prec, "convs", "nchw")]["sums_s"]), _ms(runs[(prec, "convs", "cl")]["sums_s"])
        big_nchw, big_cl = _ms(runs[(prec, "convs", "nchw")]["largest_s"]), _ms(runs[(prec, "convs", "cl")]["largest_s"])
        lines.append(f"| {prec} | {auto:.1f} | {dense:.1f} | {nchw:.1f} | {cl:.1f} | {auto / nchw:.2f} | "
                     f"{big_nchw:.1f} / {big_cl:.1f} | {_mib(runs[(prec, 'model', 'auto')]['peak_bytes'])} |")
    if "fp32" in args.precision_list:
        ref = _ms(runs[("fp32", "model", "dense")]["times_s"])
        lines += ["", f"Speed-up over the fp32 dense NCHW model ({ref:.1f} ms): " + ", ".join(
            f"{prec} `auto` {ref / _ms(runs[(prec, 'model', 'auto')]['times_s']):.2f}×" for prec in args.precision_list)
            + f" (the policy's default here is {policy})."]
    lines += [
        "",
        f"Largest conv: `{largest_shape['layer']}` ({largest_shape['kind']}), input {lx}, weight {lw}, "
        f"padding {largest_shape['padding']}, {_macs(largest_shape) / 1e6:.1f} M multiply-adds (forward).",
        "",
        "Dense lowering per layer (first timed iteration"
        + ("; N_out varied between iterations" if varying else "") + "), bare conv fwd+bwd ms (median):",
        "",
        "| layer | type | input | weight | padding | fwd MMACs | " + " | ".join(
            f"{p} NCHW | {p} CL" for p in args.precision_list) + " |",
        "|---|---|---|---|---|---|" + "---|" * (2 * len(args.precision_list)),
    ]
    for j, s in enumerate(first):
        x, w = _shape_text(s)
        cells = []
        for prec in args.precision_list:
            for layout in ("nchw", "cl"):
                times = [it[j] for it in runs[(prec, "convs", layout)]["per_layer_s"] if j < len(it)]
                cells.append(f"{statistics.median(times) * 1e3:.2f}")
        lines.append(f"| {s['layer']} | {s['kind']} | {x} | {w} | {s['padding']} | {_macs(s) / 1e6:.1f} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def _key(s):
    return (s["layer"], s["cin"], s["cout"], s["h"], s["w"], s["groups"])


def main(argv=None) -> dict:
    """Run the benchmark (each measurement in a subprocess), print the report; return the numbers."""
    args = parse_args(argv)
    if args.worker is not None:
        _run_worker(args)
        return {}
    runs = {}
    for prec in args.precision_list:
        for lowering in ("auto", "dense"):
            runs[(prec, "model", lowering)] = _spawn(args, "model", precision=prec, lowering=lowering)
    shape_sets = runs[(args.precision_list[0], "model", "auto")]["shape_sets"]
    if not any(shape_sets):
        raise RuntimeError("no LiftingConv/GroupConv/PointwiseGroupConv call was recorded")
    largest_shape = max((s for t in shape_sets[args.warmup:] for s in t), key=_macs)
    convs = _spawn(args, "convs", dict(shape_sets=shape_sets, largest=largest_shape))
    for prec in args.precision_list:
        for layout in ("nchw", "cl"):
            runs[(prec, "convs", layout)] = convs[f"{prec} {layout}"]
    report = format_report(args, runs, largest_shape)
    print(report)
    out = {"report": report}
    for prec in args.precision_list:
        model_ms = _ms(runs[(prec, "model", "auto")]["times_s"])
        convs_ms = _ms(runs[(prec, "convs", "nchw")]["sums_s"])
        out[prec] = dict(model_ms=model_ms, dense_model_ms=_ms(runs[(prec, "model", "dense")]["times_s"]),
                         convs_ms=convs_ms, convs_cl_ms=_ms(runs[(prec, "convs", "cl")]["sums_s"]),
                         ratio=model_ms / convs_ms, largest_ms=_ms(runs[(prec, "convs", "nchw")]["largest_s"]),
                         model_peak_mib=runs[(prec, "model", "auto")]["peak_bytes"] / 2**20)
    return out


if __name__ == "__main__":
    main()
