"""End-to-end throughput of the CIFAR-10 presets: training step and inference, per execution setting.

    python benchmarks/models.py                       # CPU: the CPU rows (minutes; one subprocess per row)
    python benchmarks/models.py --quick               # CPU smoke run (tiny batch, 1 repeat)
    python benchmarks/models.py --modes               # CPU: static vs dynamic shape mode at θ = 0.5 and 1
    (GPU rows run from benchmarks/device_check.sh, which calls device_rows(gpu_specs()) in-process)

Models: ``PartialGCNN.from_preset("cifar10-se2-partial")`` (CKResNet, 469,903 parameters) and
``GCNN.from_preset("cifar10-se2-partial")`` (3,994,418), both with ``shape_mode="static"`` (N
elements in every layer: the sync-free mode that ``torch.compile`` needs; with θ at its initial 1
the dynamic mode runs the same shapes). Input ``[B, 3, 32, 32]`` (the ``tiny`` model of the CPU check:
``[B, 3, 16, 16]``), random labels.

* training step: ``zero_grad``; forward (under ``torch.autocast`` for bf16) inside
  ``collect_kernel_norms``; loss = cross-entropy + 1e-6·Σ kernel norms (the recipe's regulariser);
  backward; Adam step. ``compile`` wraps the model in ``torch.compile(fullgraph=True)``.
* inference: eval mode, deterministic elements, ``torch.no_grad``; ``frozen`` = ``model.freeze()``
  (banks precomputed in the row's dtype). Reported as images/s too.
* CPU rows also name the group conv's CPU lowering (``lowering``): ``auto`` (the library's: split disk
  cover, channels-last activations from 64 channels), ``split-nchw`` (split, always NCHW) or ``dense``
  (one conv2d on the zero-masked bank, NCHW: the lowering before the split one). The CPU baseline
  (``vs_baseline``) is fp32 eager ``dense``.

Shape modes (``--modes``): the CKResNet training step with every partial layer's θ set to 0.5 or 1,
in ``static`` (N = 8 slots per layer, the invalid ones masked: the same function, no host sync, one
compiled graph) and ``dynamic`` (n = ceil(8θ) elements: compute follows θ, θ read on the host each
layer). ``vs_static`` = ms of the static row at the same θ / row ms (> 1: dynamic is faster).

Timing: see ``common.timed`` (CUDA events, mean of the repeats; CPU: median of the repeats), after
warm-up calls that include compilation and autotuning. Peak memory: ``torch.cuda.max_memory_allocated``
over the timed calls on GPU; on CPU each row runs in a fresh subprocess and reports its peak RSS.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from common import Deadline, Precision, emit, machine, peak_rss_mib, table, timed, write_report  # noqa: E402
from pgcnn_triton.kernels import use_backend  # noqa: E402

from pgcnn_triton import GCNN, PartialGCNN  # noqa: E402
from pgcnn_triton.nn import collect_kernel_norms  # noqa: E402

MODELS = {"ckresnet": PartialGCNN, "gcnn": GCNN, "tiny": PartialGCNN}
# "tiny" runs every code path of a row in seconds (the CPU test of the device script, through the interpreter)
TINY = dict(hidden=4, kernel_size=3, kernel_hidden=6, num_elements=4)
# the tiny model's input is 16×16, not 32×32: at batch 2 a layer's conv then takes at most 2 of the
# interpreter's 256-pixel programs instead of 8, which more than halves a Triton row's CPU time (training
# step 4.3 s -> 1.9 s); 16 still leaves the final 'valid' 3×3 conv a 2×2 output after the two 2×2 pools
TINY_IMAGE_SIZE = 16
COLUMNS = ["model", "task", "backend", "precision", "compile", "frozen", "lowering", "batch", "ms", "img_per_s",
           "peak_MiB", "vs_baseline", "note"]
# CPU lowering of the group conv: (group_conv_reference.CPU_LOWERING, group_conv_split.CHANNELS_LAST)
LOWERINGS = {"auto": ("auto", "auto"), "split-nchw": ("auto", "never"), "dense": ("dense", "auto")}
MODE_COLUMNS = ["model", "task", "shape_mode", "theta", "backend", "precision", "compile", "batch", "ms",
                "img_per_s", "peak_MiB", "vs_static", "note"]


def build(model: str, device, shape_mode: str = "static", theta: float | None = None) -> torch.nn.Module:
    """The model of a row; ``theta`` (if given) is set in every partial layer."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {sorted(MODELS)}, got {model!r}")
    extra = TINY if model == "tiny" else {}
    net = MODELS[model].from_preset("cifar10-se2-partial", shape_mode=shape_mode, **extra).to(device)
    if theta is not None:
        with torch.no_grad():
            for sampler in net.samplers():
                if getattr(sampler, "theta", None) is not None:
                    sampler.probs[0] = theta
    return net


def compiled(model, spec: dict):
    """``model`` compiled as one graph if ``spec["compile"]`` is True (inductor) or a backend name."""
    if not spec.get("compile"):
        return model
    backend = spec["compile"] if isinstance(spec["compile"], str) else "inductor"
    return torch.compile(model, fullgraph=True, backend=backend)


# Optional row settings for the GPU step (issue 12), off by default; a row name ends in the suffixes of
# those it sets (``spec_name``), and ``select`` accepts any known row name with suffixes added.
OPTIONS = {"adam-fused": ("adam", "fused"), "adam-foreach": ("adam", "foreach"),
           "cudnn-bench": ("cudnn_benchmark", True), "cudnn-nobench": ("cudnn_benchmark", False)}


def optimizer(model, spec: dict) -> torch.optim.Adam:
    """The row's Adam: ``spec["adam"]`` None (torch's default implementation), "foreach" or "fused"."""
    flavour = spec.get("adam")
    if flavour not in (None, "foreach", "fused"):
        raise ValueError(f"spec['adam'] must be None, 'foreach' or 'fused', got {flavour!r}")
    return torch.optim.Adam(model.parameters(), lr=1e-4, **({flavour: True} if flavour else {}))


@contextlib.contextmanager
def cudnn_benchmark(flag: bool | None):
    """``torch.backends.cudnn.benchmark`` set to ``flag`` for the block (None: left as it is)."""
    saved = torch.backends.cudnn.benchmark
    if flag is not None:
        torch.backends.cudnn.benchmark = bool(flag)
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = saved


@contextlib.contextmanager
def make_step(spec: dict, device: torch.device):
    """Build ``spec``'s model and yield its ``step()`` (one training step or one inference call); the
    row's precision, backend and cuDNN settings hold until the block ends. ``spec`` = model, task
    (train | infer), backend, precision, compile, frozen, batch; optional: lowering, adam, cudnn_benchmark."""
    torch.manual_seed(0)
    if spec.get("compile"):
        torch._dynamo.reset()  # every row compiles its own model from scratch
    prec = Precision(spec["precision"], device.type)
    from pgcnn_triton.kernels import group_conv_reference, group_conv_split

    group_conv_reference.CPU_LOWERING, group_conv_split.CHANNELS_LAST = LOWERINGS[spec.get("lowering", "auto")]
    model = build(spec["model"], device, spec.get("shape_mode", "static"), spec.get("theta"))
    size = TINY_IMAGE_SIZE if spec["model"] == "tiny" else 32
    x = torch.randn(spec["batch"], 3, size, size, device=device)
    labels = torch.randint(0, 10, (spec["batch"],), device=device)
    with prec, use_backend(spec["backend"]), cudnn_benchmark(spec.get("cudnn_benchmark")):
        if spec["task"] == "train":
            model.train()
            opt = optimizer(model, spec)
            net = compiled(model, spec)

            def step():
                opt.zero_grad(set_to_none=True)
                with prec.autocast(), collect_kernel_norms() as norms:
                    logits = net(x)
                loss = F.cross_entropy(logits.float(), labels) + 1e-6 * torch.stack(norms).sum()
                loss.backward()
                opt.step()
        else:
            model.eval()
            if spec.get("frozen"):
                model = model.freeze(dtype=prec.dtype, example_input=x[:1])
            net = compiled(model, spec)

            def step():
                with torch.no_grad(), prec.autocast():
                    net(x)
        yield step


def measure(spec: dict, device: torch.device, reps: int, warmup: int) -> dict:
    """Time one row (``make_step``'s spec). On GPU the row also reports the peak reserved memory (the
    caching allocator's: cuDNN workspaces and fragmentation too) and whether cuDNN benchmarking was on."""
    with make_step(spec, device) as step:
        if device.type == "cuda":
            step()  # compile / autotune before the peak counter starts
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        ms = timed(step, device, reps, warmup)
        memory = {"peak_MiB": peak_rss_mib()} if device.type != "cuda" else {
            "peak_MiB": torch.cuda.max_memory_allocated() / 2 ** 20,
            "peak_reserved_MiB": torch.cuda.max_memory_reserved() / 2 ** 20,
            "cudnn_bench_on": torch.backends.cudnn.benchmark}
    return {**spec, "ms": ms, "img_per_s": spec["batch"] * 1e3 / ms, **memory}


def add_baselines(rows: list[dict]) -> None:
    """``vs_baseline`` = baseline ms / row ms; baseline = fp32 eager torch-backend unfrozen (on CPU: with
    the dense lowering, where such a row exists), same model and task."""
    for row in rows:
        base = [r for r in rows if r["model"] == row["model"] and r["task"] == row["task"]
                and r["backend"] == "torch" and r["precision"] == "fp32" and not r.get("compile")
                and not r.get("frozen") and "ms" in r]
        base = [r for r in base if r.get("lowering") == "dense"] or base
        if base and "ms" in row:
            row["vs_baseline"] = base[0]["ms"] / row["ms"]


def gpu_specs(models=("ckresnet", "gcnn"), batch_train: int = 64, batch_infer: int = 256) -> list[dict]:
    """The GPU rows, most important first (a run under --budget may end before the last): per model the rows of
    the issue's targets, then the other settings."""
    first, then = [], []
    for model in models:
        t = dict(model=model, task="train", batch=batch_train, frozen=False)
        i = dict(model=model, task="infer", batch=batch_infer)
        first += [
            dict(t, backend="torch", precision="fp32", compile=False),
            dict(t, backend="triton", precision="bf16", compile=True),
            dict(i, backend="torch", precision="fp32", compile=False, frozen=False),
            dict(i, backend="triton", precision="bf16", compile=False, frozen=False),
            dict(i, backend="triton", precision="bf16", compile=False, frozen=True),
        ]
        then += [
            dict(t, backend="triton", precision="bf16", compile=False),
            dict(t, backend="torch", precision="bf16", compile=False),
            dict(t, backend="torch", precision="tf32", compile=False),
            dict(t, backend="triton", precision="tf32", compile=False),
            dict(i, backend="torch", precision="bf16", compile=False, frozen=False),
            dict(i, backend="triton", precision="bf16", compile=True, frozen=True),
            dict(t, backend="torch", precision="bf16", compile=True),
        ]
    return first + then


# The device check's end-to-end rows (issue 27), most decisive first, since a run under --budget may end at any row:
# per model the headline compiled bf16 step (CKResNet: 48.1 ms on 2026-11-28), frozen inference eager
# and compiled, the eager bf16 / TF32 steps of both backends; the CKResNet's fp32 training baseline
# (vs_baseline) right after its headline row. Then, for both models, the costly or secondary rows: the
# fp32 inference baselines (0.3-1.3 s a call), the compiled torch-backend steps, and the GCNN's fp32
# training baseline last (its fp32 cuDNN workspaces peaked at 72 GB).
DEVICE_ROWS = ("{m}/train/triton/bf16/compiled", "{m}/infer/triton/bf16/eager/frozen",
               "{m}/infer/triton/bf16/compiled/frozen", "{m}/train/triton/bf16/eager", "{m}/train/torch/bf16/eager",
               "{m}/train/triton/tf32/eager", "{m}/train/torch/tf32/eager")
DEVICE_LAST = ("{m}/infer/torch/fp32/eager", "{m}/train/torch/bf16/compiled")


def device_specs(models=("ckresnet", "gcnn"), batch_train: int = 64, batch_infer: int = 256) -> list[dict]:
    """The rows of the device check's ``models`` part, in order (see ``DEVICE_ROWS``)."""
    names = []
    for m in models:
        names += [row.format(m=m) for row in DEVICE_ROWS]
        if m == "ckresnet":
            names.insert(1, "ckresnet/train/torch/fp32/eager")
    names += [row.format(m=m) for m in models for row in DEVICE_LAST]
    names += [f"{m}/train/torch/fp32/eager" for m in models if m != "ckresnet"]
    return select(gpu_specs(models, batch_train, batch_infer), names)


def tiny_specs(batch_train: int = 2, batch_infer: int = 2) -> list[dict]:
    """The tiny model's rows for the CPU run of the device check (CI): every path once, not every
    combination (the interpreter makes each Triton row seconds long). Covered: train and infer,
    torch and Triton, fp32 / bf16 / tf32 (on the torch backend: TF32 is fp32 off the GPU), a compiled
    Triton step, frozen inference. The compiled
    step uses ``aot_eager``: the same fullgraph trace and AOT partitioning of the Triton-backed ops,
    without inductor's C++ code generation for the CPU glue (a minute cold; the trainer's inductor
    step is tested in tests/training/test_compiled_training.py)."""
    keep = [("train", "torch", "fp32", False, False), ("train", "triton", "bf16", True, False),
            ("infer", "torch", "fp32", False, False), ("infer", "triton", "bf16", False, False),
            ("infer", "triton", "bf16", False, True), ("train", "torch", "tf32", False, False)]
    specs = gpu_specs(("tiny",), batch_train, batch_infer)
    rows = [s for s in specs if (s["task"], s["backend"], s["precision"], s["compile"], s["frozen"]) in keep]
    return [{**s, "compile": "aot_eager"} if s["compile"] else s for s in rows]


def cpu_specs(batch: int, batch_infer: int | None = None) -> list[dict]:
    """The CPU rows: fp32 and bf16, each lowering for the training step; eager, frozen and compiled
    inference (at ``batch_infer``, default ``batch``)."""
    rows = []
    for model in ("ckresnet", "gcnn"):
        t = dict(model=model, task="train", batch=batch, backend="torch", frozen=False, compile=False)
        i = dict(model=model, task="infer", batch=batch_infer or batch, backend="torch", lowering="auto")
        for precision in ("fp32", "bf16"):
            rows += [dict(t, precision=precision, lowering=lowering) for lowering in LOWERINGS]
        rows += [dict(t, precision="bf16", lowering="auto", compile=True)]
        for precision in ("fp32", "bf16"):
            rows += [
                dict(i, precision=precision, compile=False, frozen=False),
                dict(i, precision=precision, compile=False, frozen=True),
                dict(i, precision=precision, compile=True, frozen=True),
            ]
        rows += [dict(i, precision="fp32", compile=False, frozen=False, lowering="dense")]
    return rows


# the --quick rows: the CPU baseline, the policy's training step, frozen bf16 inference
QUICK = ("ckresnet/train/torch/fp32/eager/dense", "ckresnet/train/torch/bf16/eager",
         "ckresnet/infer/torch/bf16/eager/frozen")


def mode_specs(batch: int, model: str = "ckresnet", compile_static: bool = True) -> list[dict]:
    """Static vs dynamic shape mode, training step, θ = 0.5 and 1 (plus the compiled static step)."""
    rows = []
    for theta in (0.5, 1.0):
        t = dict(model=model, task="train", batch=batch, backend="torch", precision="fp32", frozen=False,
                 theta=theta)
        rows += [dict(t, shape_mode="static", compile=False), dict(t, shape_mode="dynamic", compile=False)]
        if compile_static:
            rows.append(dict(t, shape_mode="static", compile=True))
    return rows


def add_static_ratios(rows: list[dict]) -> None:
    """``vs_static`` = ms of the eager static row with the same model, task and θ / row ms."""
    for row in rows:
        base = [r for r in rows if r["model"] == row["model"] and r["task"] == row["task"]
                and r.get("theta") == row.get("theta") and r.get("shape_mode") == "static"
                and not r.get("compile") and "ms" in r]
        if base and "ms" in row:
            row["vs_static"] = base[0]["ms"] / row["ms"]


def spec_name(spec: dict) -> str:
    """``model/task/backend/precision/eager|compiled[/frozen][/mode@θ]``, e.g.
    ``ckresnet/train/triton/bf16/compiled`` or ``ckresnet/train/torch/fp32/eager/dynamic@0.5``."""
    name = "/".join([spec["model"], spec["task"], spec["backend"], spec["precision"],
                     "compiled" if spec.get("compile") else "eager"])
    lowering = spec.get("lowering", "auto")
    name += ("/frozen" if spec.get("frozen") else "") + ("" if lowering == "auto" else f"/{lowering}")
    if "shape_mode" in spec:
        name += f"/{spec['shape_mode']}@{spec.get('theta')}"
    return name + "".join(f"/{option}" for option, (key, value) in OPTIONS.items() if spec.get(key) == value)


def select(specs: list[dict], names: list[str]) -> list[dict]:
    """The specs named in ``names``, in that order; a name may end in ``OPTIONS`` suffixes, which set
    those options on the named spec (an unknown name raises, listing the known ones)."""
    by_name = {spec_name(s): s for s in specs}
    chosen, unknown = [], []
    for name in names:
        parts, options = name.split("/"), {}
        while parts and parts[-1] in OPTIONS:
            key, value = OPTIONS[parts.pop()]
            options[key] = value
        base = "/".join(parts)
        if base in by_name:
            chosen.append({**by_name[base], **options})
        else:
            unknown.append(name)
    if unknown:
        raise ValueError(f"unknown rows {unknown}; known: {sorted(by_name)} (with optional suffixes "
                         f"{', '.join('/' + o for o in OPTIONS)})")
    return chosen


def device_rows(specs, device, deadline: Deadline, sink=None, reps: int = 10, warmup: int = 2) -> list[dict]:
    """Run ``specs`` in this process while the deadline allows (a compiling row needs 90 s, another 20 s);
    a failing row becomes a note and the next one runs."""
    rows = []
    for spec in specs:
        if not deadline.allows(90 if spec.get("compile") else 20):
            rows.append({**spec, "note": "skipped: --budget reached"})
            continue
        try:
            row = measure(spec, device, reps, warmup=warmup)
        except Exception as exc:  # a failing row must not cost the rows after it
            row = {**spec, "note": f"FAILED {type(exc).__name__}: {str(exc)[:200]}"}
        emit(row, sink)
        rows.append(row)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    add_baselines(rows)
    add_static_ratios(rows)
    return rows


def _run_row_subprocess(spec: dict, reps: int, warmup: int, threads: int | None) -> dict:
    cmd = [sys.executable, __file__, "--row", json.dumps(spec), "--reps", str(reps), "--warmup", str(warmup)]
    if threads:
        cmd += ["--threads", str(threads)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("ROW "):
            return json.loads(line[4:])
    return {**spec, "note": f"FAILED: {(proc.stderr or proc.stdout)[-300:]}"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8, help="CPU batch size (default %(default)s)")
    parser.add_argument("--batch-infer", type=int, default=64, help="CPU inference batch size (default %(default)s)")
    parser.add_argument("--select", default=None, help="comma-separated row names (see spec_name), in that order")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--models", default="ckresnet,gcnn", help="comma-separated subset of ckresnet,gcnn")
    parser.add_argument("--quick", action="store_true", help="batch 1, 1 repeat, no warm-up, three CKResNet rows")
    parser.add_argument("--modes", action="store_true",
                        help="only the static vs dynamic shape-mode rows (CKResNet training, θ = 0.5 and 1)")
    parser.add_argument("--row", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help="folder for models.md / models.json")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.row:  # worker: one row in this fresh process
        emit(measure(json.loads(args.row), torch.device("cpu"), args.reps, args.warmup))
        return 0
    if args.quick:
        args.batch, args.batch_infer, args.reps, args.warmup, args.models = 1, 1, 1, 0, "ckresnet"
    wanted = args.models.split(",")
    unknown = set(wanted) - set(MODELS)
    if unknown:
        parser.error(f"--models: unknown {sorted(unknown)}; choose from {sorted(MODELS)}")
    if args.modes:
        specs = [s for m in wanted for s in mode_specs(args.batch, m, compile_static=not args.quick)]
    else:
        specs = [s for s in cpu_specs(args.batch, args.batch_infer) if s["model"] in wanted]
    if args.select:
        specs = select(specs, args.select.split(","))
    if args.quick and not args.modes:
        specs = select(specs, list(QUICK))
    rows = []
    for spec in specs:
        row = _run_row_subprocess(spec, args.reps, args.warmup, args.threads)
        print(json.dumps(row), flush=True)
        rows.append(row)
    add_baselines(rows)
    add_static_ratios(rows)
    report = (f"models.py on {machine()}, reps {args.reps}, warm-up {args.warmup}\n\n"
              + table(rows, MODE_COLUMNS if args.modes else COLUMNS))
    write_report(args.out, "models_modes" if args.modes else "models", report, rows)
    return 0 if all("ms" in r for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
