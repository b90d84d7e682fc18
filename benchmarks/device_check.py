"""One GPU check within a wall-clock limit (--budget): kernels against their references, then the end-to-end rows.

    bash benchmarks/device_check.sh                  # on the H200 (budget 400 s: --budget)
    bash benchmarks/device_check.sh --tiny           # CPU: tiny shapes through the Triton interpreter (CI)

Parts run in the order of ``--parts`` (default: most decisive first, so a run cut short keeps what
matters), each printed (``ROW {...}``) as soon as it is measured and appended to ``results.jsonl`` in
``--out``, so a run cut short still reports what it did; rows are skipped when the ``--budget``
(seconds) runs low, and on the GPU each part stops early enough to leave the later parts of the same
call their minimum (``RESERVE_S``):

1. ``targets``: the kernel table's target rows (``benchmarks/conv_table.py``, issue 13): the three
   7×7 CKResNet shapes at batch 64, forward / input gradient / bank gradient timed separately, Triton
   (NCHW and channels-last) vs cuDNN, bf16 at S = 1 and S = B, then TF32 at S = 1;
2. ``profile`` (``benchmarks/profile_step.py``): ``torch.profiler`` over a few compiled bf16 training
   steps of the CKResNet and the GCNN (``--profile-rows``): top kernels, GPU busy vs wall time,
   launches per step, convolutions vs the rest;
3. ``models``: end-to-end rows (``benchmarks/models.py``, ``models.device_specs``): CIFAR-10 CKResNet and
   GCNN training step and frozen inference, torch vs Triton backend, bf16 / TF32 (and the fp32
   baselines), eager vs compiled;
4. ``correctness`` (relative-norm error against a float64 reference on the same device; tolerances of
   docs/kernels.md#how-the-kernels-are-tested: fp32 1e-5, TF32 and fp16 5e-3, bf16 2e-2): group conv forward /
   input gradient / bank gradient (shared and per-sample banks; the bank gradient with split = 3 partial sums;
   the channels-last forward and input gradient; the fused max and mean pooling, whose gradients are compared
   through the Triton run's own arg-max, since rounding flips near-tied arg-maxes), kernel bank
   forward/backward, pooling; fp16 checks the group conv rows only;
5. ``table-rest``: the kernel table's other shapes (the GCNN's, lifting convs, 1×1 shortcuts), bf16,
   S = 1 then S = B (``table`` = ``targets,table-rest``);
6. ``scaling`` of one group conv with N and with θ (``benchmarks/scaling.py``), bf16, Triton (tiny: two
   points per sweep);
7. ``kernels``: the group conv forward and forward + backward against cuDNN's dense conv on the
   same zero-masked bank (per-sample banks), with TFLOP/s on the masked FLOPs and the fraction of
   the roofline; the bank and pooling kernels' GB/s against device copy bandwidth.

The commands for the next H200 session (which parts in which call, budgets) are in BENCHMARKS.md.
Tables are printed last and written to ``--out`` (device_check.md / .json). On the GPU the script
sets ``PGCNN_AUTOTUNE=quick`` unless it is set (3–4 tile configs per dtype: compiling the full set for
every dtype costs minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from common import Deadline, Precision, emit, machine, table, timed  # noqa: E402
from device_correctness import TOL, conv_inputs, correctness  # noqa: E402,F401 (TOL: the rows' tolerances)
from pgcnn_triton.kernels import (  # noqa: E402
    auto_choices,
    dense_kernel,
    disk_taps,
    group_conv2d,
    group_pool,
    kernel_bank,
)

PEAK_TFLOPS = {"bf16": 790.0, "tf32": 400.0, "fp32": 60.0}  # docs/kernels.md#roofline ceilings for the H200
# (B, C, N, k, H): the kernel benchmark shapes (C_in = C_out = C, G = N, H = W, 'same')
GPU_SHAPES = [(64, 64, 8, 7, 32), (64, 32, 8, 7, 32), (64, 64, 8, 5, 32), (64, 10, 8, 7, 28)]
TINY_SHAPES = [(2, 2, 4, 3, 6), (2, 2, 3, 5, 7)]
# every part, in the default order: the most decisive rows first (issue 27)
PARTS = ("targets", "profile", "models", "correctness", "table-rest", "scaling", "kernels")
ALIASES = {"table": ("targets", "table-rest")}
# GPU seconds a part keeps for itself when it comes later in the same call: the parts before it stop
# starting rows that early (one compiled profile row; one compiled model row; the checks' compiles)
RESERVE_S = {"targets": 60.0, "profile": 120.0, "models": 90.0, "correctness": 60.0, "table-rest": 20.0,
             "scaling": 30.0, "kernels": 20.0}
# the profiled rows (models.spec_name, optionally with models.OPTIONS suffixes), most important first
PROFILE_ROWS = "ckresnet/train/triton/bf16/compiled,gcnn/train/triton/bf16/compiled"
TINY_PROFILE_ROWS = "tiny/train/triton/bf16/compiled"  # aot_eager, as the tiny models rows
# what GPU rows add (models.measure) and the optional row settings (models.OPTIONS), for issue 12 item 3
GPU_MEMORY_COLUMNS = ["peak_reserved_MiB", "cudnn_bench_on", "adam", "cudnn_benchmark"]


def masked_flop(b, c, n, k, h):
    return 2.0 * b * h * h * (c * n) * (disk_taps(k).num_taps * c * n)


def time_conv(device, shape, prec, reps, warmup=1):
    b, c, n, k, h = shape
    with Precision(prec) as p:
        x, bank, bias = conv_inputs(b, c, n, k, h, False, device, p.dtype)
        dense = dense_kernel(bank, k).reshape(b * c * n, c * n, k, k).contiguous()
        x4 = x.reshape(1, b * c * n, h, h)
        full_bias = bias.repeat_interleave(n).repeat(b)

        def triton_fwd():
            with torch.no_grad():
                group_conv2d(x, bank, k, c, bias, backend="triton")

        def cudnn_fwd():
            with torch.no_grad():
                F.conv2d(x4, dense, full_bias, padding=k // 2, groups=b)

        xg, bankg = x.detach().requires_grad_(), bank.detach().requires_grad_()
        x4g, denseg = x4.detach().requires_grad_(), dense.detach().requires_grad_()
        gy = torch.randn(b, c, n, h, h, device=device, dtype=p.dtype)

        def triton_step():
            group_conv2d(xg, bankg, k, c, bias, backend="triton").backward(gy)

        def cudnn_step():
            F.conv2d(x4g, denseg, full_bias, padding=k // 2, groups=b).backward(gy.reshape(1, -1, h, h))

        times = {name: timed(fn, device, reps, warmup) for name, fn in (
            ("triton_fwd", triton_fwd), ("cudnn_fwd", cudnn_fwd), ("triton_step", triton_step),
            ("cudnn_step", cudnn_step))}
        with torch.no_grad():
            group_conv2d(x, bank, k, c, bias, backend="auto")
    flop = masked_flop(b, c, n, k, h)
    row = {"shape": str(shape), "precision": prec, **{key: round(v, 4) for key, v in times.items()}}
    row["fwd_speedup"] = times["cudnn_fwd"] / times["triton_fwd"]
    row["step_speedup"] = times["cudnn_step"] / times["triton_step"]
    row["fwd_tflops"] = flop / times["triton_fwd"] / 1e9
    row["step_tflops"] = 3 * flop / times["triton_step"] / 1e9
    row["fwd_roofline"] = row["fwd_tflops"] / PEAK_TFLOPS[prec] if device.type == "cuda" else float("nan")
    return row


def time_bank(device, shape, reps, warmup=1):
    b, c, n, k, _ = shape
    taps = disk_taps(k).num_taps
    hidden = torch.randn(b, n, n, taps, 32, device=device)
    weight = torch.randn(c * c, 32, device=device)
    bias = torch.randn(c * c, device=device)
    out_bytes = b * c * n * taps * c * n * 2  # bf16 bank
    in_bytes = hidden.numel() * 4 + weight.numel() * 4
    rows = []
    for backend in ("triton", "torch"):
        ms = timed(lambda be=backend: kernel_bank(hidden, weight, bias, c, dtype=torch.bfloat16, backend=be),
                   device, reps, warmup)
        rows.append({"op": f"kernel_bank ({backend})", "shape": f"S={b} N={n} T={taps} C={c}", "ms": ms,
                     "GB/s": (out_bytes + in_bytes) / ms / 1e6})
    x = torch.randn(b, c, n, 32, 32, device=device, dtype=torch.bfloat16)
    for backend in ("triton", "torch"):
        ms = timed(lambda be=backend: group_pool(x, "max", backend=be), device, reps, warmup)
        rows.append({"op": f"group_pool max ({backend})", "shape": str(tuple(x.shape)), "ms": ms,
                     "GB/s": x.numel() * 2 * (1 + 1 / n) / ms / 1e6})
    return rows


def kernel_timing(device, shapes, reps, deadline, sink, warmup=1):
    """The ``kernels`` part: conv rows per shape and precision, then the memory-bound kernels against
    the device copy bandwidth, while ``deadline`` allows. Returns (conv rows, memory rows, copy GB/s)."""
    timing, memory_rows, copy = [], [], float("nan")
    for shape in shapes:
        for prec in ("bf16", "tf32"):
            if deadline.allows(20):
                try:
                    timing.append(time_conv(device, shape, prec, reps, warmup))
                except Exception as exc:
                    timing.append({"shape": str(shape), "precision": prec, "note": f"FAILED {exc!r}"[:200]})
                emit(timing[-1], sink)
    if deadline.allows(10):
        memory_rows = time_bank(device, shapes[0], reps, warmup)
        copy = copy_bandwidth(device, reps, warmup)
        for row in memory_rows:
            row["vs_copy"] = row["GB/s"] / copy
            emit(row, sink)
    return timing, memory_rows, copy


def copy_bandwidth(device, reps, warmup=1):
    src = torch.empty(256 * 2 ** 20 if device.type == "cuda" else 2 ** 20, device=device, dtype=torch.float32)
    dst = torch.empty_like(src)
    ms = timed(lambda: dst.copy_(src), device, reps, warmup)
    return 2 * src.numel() * 4 / ms / 1e6


# ------------------------------------------------------------------------------------------- main

def conv_table_report(rows) -> str:
    if not rows:
        return ""
    import conv_table

    return conv_table.report(rows)


def part_order(text: str) -> list[str]:
    """The parts of ``--parts`` in the order given (aliases expanded, repeats dropped); unknown names raise
    ``ValueError`` naming them."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = sorted(set(names) - set(PARTS) - set(ALIASES))
    if unknown or not names:
        raise ValueError(f"--parts: unknown {unknown}; choose from {','.join(PARTS)} (or table = targets,table-rest)")
    return list(dict.fromkeys(p for n in names for p in ALIASES.get(n, (n,))))


def part_deadlines(order: list[str], deadline: Deadline, reserve: bool) -> dict[str, Deadline]:
    """Each part's deadline: the call's, less what the parts after it reserve (``RESERVE_S``; none if not
    ``reserve``, as for the tiny CPU run)."""
    return {part: deadline.reserving(sum(RESERVE_S[p] for p in order[i + 1:]) if reserve else 0.0)
            for i, part in enumerate(order)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny shapes (default on CPU: the interpreter)")
    parser.add_argument("--reps", type=int, default=None, help="timed repetitions per measurement")
    parser.add_argument("--budget", type=float, default=400.0, help="seconds; later parts are skipped past it")
    parser.add_argument("--out", default=os.environ.get("OUT") or "runs/device_check", help="output folder")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help="comma-separated parts, run in this order (default %(default)s; table = targets,table-rest)")
    parser.add_argument("--models", default="ckresnet,gcnn", help="end-to-end models (GPU; default %(default)s)")
    parser.add_argument("--select", default=None,
                        help="end-to-end rows to run, in order, by name (models.spec_name); "
                             "default: models.device_specs (tiny: models.tiny_specs)")
    parser.add_argument("--precisions", default="fp32,bf16,tf32,fp16", help="correctness precisions (GPU)")
    parser.add_argument("--profile-rows", default=None,
                        help=f"rows to profile (default GPU: {PROFILE_ROWS}; tiny: {TINY_PROFILE_ROWS})")
    parser.add_argument("--profile-steps", type=int, default=None, help="profiled steps per row (GPU 5, tiny 1)")
    parser.add_argument("--profile-trace", action="store_true", help="also write gzipped Chrome traces to --out")
    args = parser.parse_args(argv)
    try:
        order = part_order(args.parts)
    except ValueError as exc:
        parser.error(str(exc))
    import models
    import profile_step
    import scaling

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tiny = args.tiny or device.type != "cuda"
    reps = args.reps or (1 if tiny else 10)
    # tiny runs time nothing that matters (interpreter): no warm-up calls, which halves their CPU time
    warmup = 0 if tiny else 1
    deadline = Deadline(args.budget)
    deadlines = part_deadlines(order, deadline, reserve=not tiny)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sink = out / "results.jsonl"
    sink.unlink(missing_ok=True)
    started = time.perf_counter()
    header = f"device_check on {machine()} ({'tiny shapes, interpreter' if tiny else 'GPU'})"
    print(header + f"; parts in order: {','.join(order)}", flush=True)
    torch.manual_seed(0)

    batches = (2, 2) if tiny else (64, 256)
    # resolved before any part runs, so a misspelt row fails at once, not after minutes of measuring
    profile_names = (args.profile_rows or (TINY_PROFILE_ROWS if tiny else PROFILE_ROWS)).split(",")
    profile_known = models.tiny_specs(*batches) if tiny else models.gpu_specs(("ckresnet", "gcnn"), *batches)
    profile_specs = models.select(profile_known, profile_names) if "profile" in order else []
    if args.select:
        specs = models.select(models.gpu_specs(("ckresnet", "gcnn", "tiny"), *batches), args.select.split(","))
    elif tiny:
        specs = models.tiny_specs(*batches)
    else:
        specs = models.device_specs(tuple(args.models.split(",")), *batches)

    found = {part: [] for part in PARTS}
    copy = float("nan")
    for part in order:
        part_deadline = deadlines[part]
        if part == "correctness":
            found[part] = correctness(device, tiny, sink, tuple(args.precisions.split(",")))
        elif part in ("targets", "table-rest"):
            import conv_table

            found[part] = conv_table.run(device, part_deadline, sink, tiny=tiny, reps=args.reps,
                                         which="targets" if part == "targets" else "rest", warmup=warmup)
        elif part == "models":
            found[part] = models.device_rows(specs, device, part_deadline, sink, reps=1 if tiny else 10,
                                             warmup=0 if tiny else 2)
        elif part == "scaling" and part_deadline.allows(30):
            size = dict(batch=1, channels=2, size=8) if tiny else dict(batch=64, channels=32, size=32)
            points = dict(n_values=scaling.TINY_N_VALUES, thetas=scaling.TINY_THETAS) if tiny else {}
            found[part] = scaling.run(device, backend="triton", precision="bf16" if not tiny else "fp32",
                                      reps=reps, warmup=warmup, deadline=part_deadline, sink=sink, **size, **points)
        elif part == "kernels":
            found[part], memory, copy = kernel_timing(device, TINY_SHAPES if tiny else GPU_SHAPES, reps,
                                                      part_deadline, sink, warmup)
            found["memory"] = memory
        elif part == "profile":
            found[part] = profile_step.run(profile_specs, device, part_deadline, sink,
                                           steps=args.profile_steps or (1 if tiny else 5),
                                           warmup=0 if tiny else 2, reps=1 if tiny else None,
                                           trace_dir=out if args.profile_trace else None)
    checks, model_rows, scale_rows, timing = found["correctness"], found["models"], found["scaling"], found["kernels"]
    memory_rows, profile_rows = found.get("memory", []), found["profile"]
    table_rows = found["targets"] + found["table-rest"]

    report = "\n\n".join([
        f"{header}, {time.perf_counter() - started:.0f} s, PGCNN_AUTOTUNE={os.environ.get('PGCNN_AUTOTUNE', 'full')}, "
        f"parts in order: {','.join(order)}",
        "Correctness (relative-norm error vs float64 reference):\n" + table(
            checks, ["op", "precision", "shape", "rel_err", "tol", "ok"]),
        "End-to-end (CIFAR-10 presets, static shape mode; train = fwd+bwd+Adam at batch 64, infer at batch "
        "256; ms per call; vs_baseline = fp32 eager torch-backend ms / row ms, same model and task):\n"
        + table(model_rows, models.COLUMNS[:-1] + GPU_MEMORY_COLUMNS + ["note"]),
        f"One GroupConv fwd+bwd vs N and θ (dynamic mode), Triton, {'fp32' if tiny else 'bf16'} "
        "(vs_last = ms / ms of the sweep's last row):\n"
        + table(scale_rows, scaling.COLUMNS),
        "Group conv, per-sample banks (S = B), Triton tap-sparse vs cuDNN dense on the masked bank "
        "(ms; speedup = cuDNN / Triton; TFLOP/s on masked FLOPs; step = fwd + bwd):\n" + table(
            timing, ["shape", "precision", "triton_fwd", "cudnn_fwd", "fwd_speedup", "fwd_tflops",
                     "fwd_roofline", "triton_step", "cudnn_step", "step_speedup", "step_tflops", "note"]),
        f"Memory-bound kernels (device copy {copy:.0f} GB/s):\n" + table(
            memory_rows, ["op", "shape", "ms", "GB/s", "vs_copy"]),
        profile_step.report(profile_rows),
        conv_table_report(table_rows),
        "auto choices: " + json.dumps({str(k[0]) + str(k[1][0]): v for k, v in auto_choices().items()}),
    ])
    (out / "device_check.md").write_text(report + "\n")
    (out / "device_check.json").write_text(json.dumps(
        {"header": header, "correctness": checks, "models": model_rows, "scaling": scale_rows, "conv": timing,
         "table": table_rows, "memory": memory_rows, "copy_GBps": copy, "profile": profile_rows}, indent=1, default=str))
    print(report, flush=True)
    failed = [r for r in checks if r["ok"] != "yes"] + [r for r in model_rows + profile_rows + table_rows
                                                         if "FAILED" in r.get("note", "")]
    if failed:
        print(f"\n{len(failed)} check(s) FAILED", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
