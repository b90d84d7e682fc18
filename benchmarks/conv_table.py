"""The kernel table of issue 13: every group-conv shape of the CIFAR-10 presets, Triton vs cuDNN, per pass.

    bash benchmarks/device_check.sh --parts table --budget 420     # on the H200
    bash benchmarks/device_check.sh --tiny --parts table           # CPU: tiny shapes, interpreter

Shapes are read off the built models, not listed by hand: :func:`layer_calls` builds
``PartialGCNN`` (CKResNet) and ``GCNN`` from the ``cifar10-se2-partial`` preset in static shape mode
(N = 8 slots in every layer, what the GPU rows of ``benchmarks/models.py`` run), replaces the group
conv op by a recorder that returns zeros of the right shape, and runs one forward pass at batch 1
(about 1.5 s on a CPU). Each recorded call gives C_in, N_in, C_out, N_out, k, T (taps), H, W,
padding and the fused pooling (``pool=`` of ``group_conv2d``: none of the preset layers fuses it;
their 2×2 spatial max pools are separate layers). :func:`distinct_shapes` dedupes them at batch 64,
keeping which layers share a shape. The 1×1 pointwise shortcuts and the lifting convs are included.

Each shape is timed in three passes, separately: forward, input gradient (dgrad) and bank gradient
(wgrad). Triton: ``group_conv_triton.conv_forward`` / ``conv_input_grad`` / ``conv_bank_grad``,
the kernels the ``group_conv2d`` op runs, on NCHW activations (their layout). cuDNN: ``F.conv2d`` and
``aten.convolution_backward`` (input-only, then weight-only) on the dense zero-masked bank
``dense_kernel(bank, k)``, activations, output gradient and weight in channels-last,
``cudnn.benchmark = True``; per-sample banks (S = B) as a grouped conv with ``groups = B`` on the
``[1, B·C, H, W]`` view, as the reference lowering does. bf16 tensors (no autocast), and a TF32 pass
(fp32 tensors, TF32 allowed) for the target shapes at S = 1, measured right after the bf16 targets.

Columns per pass (``fwd``, ``dgrad``, ``wgrad``): ``*_triton_ms``, ``*_cudnn_ms``, ``*_speedup``
(cuDNN / Triton), ``*_tflops`` (Triton, on the in-disk taps: ``masked_flop``, the forward's useful
multiply-adds, the same count for all three passes) and ``*_roofline`` (that over the H200 ceiling
``PEAK_TFLOPS``; NaN off the GPU). ``sum_speedup`` = (cuDNN fwd + dgrad + wgrad) / (Triton fwd +
dgrad + wgrad). ``auto_fwd`` / ``auto_bwd``: what the ``auto`` backend picks for this shape (it times
both once and caches the winner, :func:`pgcnn_triton.kernels.auto_choices`; a per-precision rule,
``PGCNN_AUTO_RULES``, can fix the choice: ``auto_rule`` is the rule in force, ``time`` if none);
``auto_ok``: whether that pick is the faster path of this
table, within ``AUTO_NOISE`` (fwd vs fwd; bwd vs dgrad + wgrad). Off the GPU auto runs the
interpreter and times nothing (``auto_ok`` = ``n/a``).

Channels-last variant (``*_triton_cl_ms``, ``*_cl_speedup`` = cuDNN / it, ``sum_cl_speedup``,
``cl_max_rel_err``): the same Triton kernels fed channels-last activations and output gradient, writing
channels-last outputs (``conv_forward(..., channels_last=True)``; not what the op runs). Compiled for
sm_90, only this layout lets the bf16 kernels pipeline their loads (``cp.async``), so it measures the
NHWC lever of issue 13 item 2 without a rewrite. Its failure is noted in the row, not fatal to it.

``max_rel_err``: the largest relative-norm difference between the Triton and cuDNN results of the
three passes (each row is also a correctness check; above ``TOL`` the row's ``note`` says FAILED and
``device_check`` exits non-zero).

Target shapes (``target`` column). The issue's "three 7×7 shapes with ≥ 256 channels (CKResNet,
batch 64)" counts channels of the conv2d view, C·N. The CKResNet preset has four 7×7 group convs
with C_in·N_in ≥ 256 and C_out·N_out ≥ 256: 256→256 at 32×32, 256→512 at 16×16, 512→512 at 16×16
('same' padding) and the final 512→512 'valid' conv on 8×8 (a 2×2 output: 256 output pixels, a
launch-bound GEMM). The three 'same' ones are the targets (:func:`is_target`); the lifting conv
(3 input channels) and the 1×1 shortcuts are not 7×7-with-≥-256-channels shapes.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from common import Deadline, Precision, emit, timed_results  # noqa: E402
from pgcnn_triton.kernels import _backend, dense_kernel, use_backend  # noqa: E402
from pgcnn_triton.kernels import group_conv as gc  # noqa: E402
from pgcnn_triton.kernels.group_conv import packed_kernel  # noqa: E402

PRESET = "cifar10-se2-partial"
MODELS = ("ckresnet", "gcnn")
PASSES = ("fwd", "dgrad", "wgrad")
PEAK_TFLOPS = {"bf16": 790.0, "tf32": 400.0, "fp32": 60.0}  # docs/kernels.md#roofline ceilings for the H200
TOL = {"bf16": 2e-2, "tf32": 5e-3, "fp32": 1e-5}  # Triton vs cuDNN, relative norm (docs/kernels.md#how-the-kernels-are-tested)
AUTO_NOISE = 0.05  # auto may pick a path up to 5 % slower than the table's faster one (timing noise)
# what the tiny (CPU) table derives its shapes from: the tiny model of benchmarks/models.py, batch 2
TINY_MODEL = dict(hidden=4, kernel_size=3, kernel_hidden=6, num_elements=4)
TINY_BATCH, TINY_SIZE = 2, 12
COLUMNS = (["model", "layers", "shape", "S", "precision", "target"]
           + [f"{p}_{c}" for p in PASSES for c in ("triton_ms", "cudnn_ms", "speedup", "tflops", "roofline")]
           + ["sum_speedup", "max_rel_err"]
           + [f"{p}_{c}" for p in PASSES for c in ("triton_cl_ms", "cl_speedup")] + ["sum_cl_speedup", "cl_max_rel_err"]
           + ["auto_fwd", "auto_bwd", "auto_rule", "auto_ok", "note"])
SUMMARY_COLUMNS = ["model", "layers", "shape", "S", "precision", "target", "fwd_triton_ms", "fwd_cudnn_ms",
                   "fwd_speedup", "dgrad_speedup", "wgrad_speedup", "sum_speedup", "fwd_cl_speedup", "sum_cl_speedup",
                   "fwd_tflops", "fwd_roofline",
                   "wgrad_roofline", "max_rel_err", "auto_fwd", "auto_bwd", "auto_rule", "auto_ok", "note"]


@dataclass(frozen=True)
class ConvShape:
    """One group-conv problem: ``x [B, C_in, N_in, H, W]`` with a bank ``[S, C_out·N_out, T, C_in·N_in]``."""

    batch: int
    c_in: int
    n_in: int
    c_out: int
    n_out: int
    k: int
    taps: int
    h: int
    w: int
    padding: int
    pool: str | None = None
    model: str = field(default="", compare=False)
    layers: tuple = field(default=(), compare=False)

    @property
    def rows(self) -> int:  # bank rows = output channels of the conv2d view
        return self.c_out * self.n_out

    @property
    def cols(self) -> int:  # bank columns = input channels of the conv2d view
        return self.c_in * self.n_in

    @property
    def out_hw(self) -> tuple[int, int]:
        return self.h + 2 * self.padding - self.k + 1, self.w + 2 * self.padding - self.k + 1

    def flop(self) -> float:
        """Masked FLOPs of one pass (in-disk taps only)."""
        h_out, w_out = self.out_hw
        return conv_flop(self.batch, self.rows, self.cols, self.taps, h_out, w_out)

    def label(self) -> str:
        pool = f" +{self.pool}pool" if self.pool else ""
        return (f"B{self.batch} {self.c_in}x{self.n_in}->{self.c_out}x{self.n_out} k{self.k} T{self.taps} "
                f"{self.h}x{self.w} p{self.padding}{pool}")


def conv_flop(batch, rows, cols, taps, h_out, w_out) -> float:
    """2 · output pixels · bank rows · (taps · bank columns): the multiply-adds of the in-disk taps."""
    return 2.0 * batch * h_out * w_out * rows * (taps * cols)


def is_target(shape: ConvShape) -> bool:
    """The issue's target shapes: CKResNet 7×7 'same' convs with ≥ 256 conv2d channels in and out."""
    return ("ckresnet" in shape.model.split("+") and shape.k == 7 and shape.padding == shape.k // 2
            and shape.cols >= 256 and shape.rows >= 256)


# ------------------------------------------------------------------------------------------ shapes

def build_model(model: str, tiny: bool = False):
    """The preset model the table reads its shapes from (static shape mode, CPU, fp32)."""
    from pgcnn_triton import GCNN, PartialGCNN

    classes = {"ckresnet": PartialGCNN, "gcnn": GCNN}
    if model not in classes:
        raise ValueError(f"model must be one of {sorted(classes)}, got {model!r}")
    return classes[model].from_preset(PRESET, shape_mode="static", **(TINY_MODEL if tiny else {}))


def layer_calls(model: str, tiny: bool = False, size: int | None = None) -> list[dict]:
    """Every ``group_conv2d`` call of one forward of the preset model, in order, with the calling layer.

    The op is replaced by a recorder returning zeros, so no convolution is computed."""
    import pgcnn_triton.nn.conv as conv_module
    from pgcnn_triton.nn.conv import _KernelConv

    net = build_model(model, tiny)
    names = {m: name for name, m in net.named_modules()}
    current, calls = [None], []

    def record(x, bank, kernel_size, out_channels, bias=None, padding="same", pool=None, backend=None):
        pad = gc.resolve_padding(padding, kernel_size)
        b, c_in, n_in, h, w = x.shape
        s, rows, taps, cols = (bank[None] if bank.dim() == 3 else bank).shape
        calls.append(dict(layer=names[current[0]], kind=type(current[0]).__name__, c_in=c_in, n_in=n_in,
                          c_out=out_channels, n_out=rows // out_channels, k=kernel_size, taps=taps, h=h, w=w,
                          padding=pad, pool=pool, bank_samples=s))
        h_out, w_out = h + 2 * pad - kernel_size + 1, w + 2 * pad - kernel_size + 1
        shape = (b, out_channels, h_out, w_out) if pool else (b, out_channels, rows // out_channels, h_out, w_out)
        return x.new_zeros(shape)

    def enter(module, args):
        current[0] = module

    hooks = [m.register_forward_pre_hook(enter) for m in net.modules() if isinstance(m, _KernelConv)]
    saved = conv_module.group_conv2d
    conv_module.group_conv2d = record
    try:
        # the torch backend for the bank: through the interpreter (TRITON_INTERPRET=1) it takes a minute
        with torch.no_grad(), use_backend("torch"):
            # train mode: eval mode may average several stochastic passes (mc_samples), recording them all
            net(torch.zeros(1, net.input_channels, size or 32, size or 32))
    finally:
        conv_module.group_conv2d = saved
        for hook in hooks:
            hook.remove()
    return calls


def distinct_shapes(models=MODELS, batch: int = 64, tiny: bool = False) -> list[ConvShape]:
    """The distinct group-conv shapes of the preset models at ``batch``, in order of first use
    (targets first), each with the layers (``model:name``) that run it; ``model`` names every model that has the shape."""
    found: dict[ConvShape, ConvShape] = {}
    for model in models:
        for call in layer_calls(model, tiny, TINY_SIZE if tiny else None):
            shape = ConvShape(batch, call["c_in"], call["n_in"], call["c_out"], call["n_out"], call["k"],
                              call["taps"], call["h"], call["w"], call["padding"], call["pool"])
            known = found.get(shape, shape)
            owners = known.model.split("+") if known.model else []
            found[shape] = ConvShape(**{**known.__dict__, "layers": known.layers + (f"{model}:{call['layer']}",),
                                        "model": "+".join(dict.fromkeys(owners + [model]))})
    shapes = list(found.values())
    return sorted(shapes, key=lambda s: not is_target(s))  # stable: targets first, then model order


# ------------------------------------------------------------------------------------------ timing

def _inputs(shape: ConvShape, samples: int, device, dtype):
    x = torch.randn(shape.batch, shape.c_in, shape.n_in, shape.h, shape.w, device=device, dtype=dtype)
    bank = torch.randn(samples, shape.rows, shape.taps, shape.cols, device=device, dtype=dtype)
    bank = bank / (shape.taps * shape.cols) ** 0.5
    bias = torch.randn(shape.c_out, device=device, dtype=dtype)
    h_out, w_out = shape.out_hw
    gy = torch.randn(shape.batch, shape.rows, h_out, w_out, device=device, dtype=dtype)
    return x, bank, bias, gy


def pass_functions(shape: ConvShape, samples: int, device, prec: str):
    """``{pass: (triton_fn, cudnn_fn)}`` (``"cl"``: ``{pass: channels-last triton_fn}``), what makes each
    function's result comparable (``{pass: (triton_post, cudnn_post)}``, ``"cl"``: ``{pass: post}``: the
    Triton pass's output against cuDNN's, as a tensor of the same layout) and the tensors they use, for one
    shape and bank mode."""
    from pgcnn_triton.kernels import group_conv_triton as gct

    dtype = Precision(prec).dtype
    tf32 = prec == "tf32"
    x, bank, bias, gy = _inputs(shape, samples, device, dtype)
    k, pad, b = shape.k, shape.padding, shape.batch
    groups = b if samples > 1 else 1
    cl = torch.channels_last
    dense = dense_kernel(bank, k).reshape(samples * shape.rows, shape.cols, k, k).contiguous(memory_format=cl)
    h_out, w_out = shape.out_hw
    lead = (1, b * shape.cols) if groups > 1 else (b, shape.cols)
    x4 = x.reshape(*lead, shape.h, shape.w).contiguous(memory_format=cl)
    gy4 = gy.reshape(lead[0], groups * shape.rows, h_out, w_out).contiguous(memory_format=cl)
    full_bias = bias.repeat_interleave(shape.n_out).repeat(groups)

    def triton_fwd():
        return gct.conv_forward(x, bank, bias, k, pad, shape.c_out, pool=shape.pool or "", allow_tf32=tf32)

    def cudnn_fwd():
        y = F.conv2d(x4, dense, full_bias, padding=pad, groups=groups)
        if shape.pool:  # the unfused equivalent: conv, then the reduction over the output elements
            y = y.reshape(b, shape.c_out, shape.n_out, h_out, w_out)
            y = y.amax(2) if shape.pool == "max" else y.mean(2)
        return y

    def cudnn_backward(need_x, need_w):
        return torch.ops.aten.convolution_backward(gy4, x4, dense, None, [1, 1], [pad, pad], [1, 1], False,
                                                   [0, 0], groups, [need_x, need_w, False])

    def wgrad_packed(grads):  # cuDNN's dense weight gradient gathered back to the in-disk taps, as the bank
        return packed_kernel(grads[1].reshape(samples, shape.rows, shape.cols, k, k), k, shape.taps)

    def pooled_value(y):  # a fused-pool forward returns (values, argmax)
        return y[0] if shape.pool else y

    # for the Triton-vs-cuDNN agreement check: each pass's (triton, cudnn) results as comparable tensors
    comparable = {
        "fwd": (pooled_value, lambda y: y.reshape(b, -1, h_out, w_out)),
        "dgrad": (lambda dx: dx, lambda grads: grads[0].reshape(x.shape)),
        "wgrad": (lambda dbank: dbank, wgrad_packed),
        "cl": {"fwd": pooled_value, "dgrad": lambda dx: dx, "wgrad": lambda dbank: dbank},
    }
    # the NHWC variant: the same kernels on channels-last activations / output gradient, outputs
    # written channels-last (their operand rows are channel-contiguous, so the bf16 build pipelines)
    x_cl = x.reshape(b, shape.cols, shape.h, shape.w).contiguous(memory_format=cl).reshape(x.shape)
    gy_cl = gy.contiguous(memory_format=cl)
    channels_last = {
        "fwd": lambda: gct.conv_forward(x_cl, bank, bias, k, pad, shape.c_out, pool=shape.pool or "",
                                        allow_tf32=tf32, channels_last=True),
        "dgrad": lambda: gct.conv_input_grad(gy_cl, bank, x.shape, k, pad, tf32, channels_last=True),
        "wgrad": lambda: gct.conv_bank_grad(gy_cl, x_cl, bank.shape, k, pad, tf32),
    }
    functions = {
        "fwd": (triton_fwd, cudnn_fwd),
        "dgrad": (lambda: gct.conv_input_grad(gy, bank, x.shape, k, pad, tf32), lambda: cudnn_backward(True, False)),
        "wgrad": (lambda: gct.conv_bank_grad(gy, x, bank.shape, k, pad, tf32), lambda: cudnn_backward(False, True)),
    }
    functions["cl"] = channels_last
    return functions, comparable, (x, bank, bias, gy)


def auto_picks(device, shape: ConvShape, tensors) -> tuple[str, str]:
    """What ``auto`` runs for this shape's forward and backward (on CUDA it times both once and caches)."""
    from pgcnn_triton.kernels import _backend

    which = _backend.resolve("auto", device)
    if which != "auto":  # CPU: the interpreter or the torch reference, nothing is timed
        return which, which
    x, bank, bias, gy = tensors
    k, pad = shape.k, shape.padding
    if shape.pool:
        torch.ops.pgcnn_triton.group_conv2d_pool(x, bank, bias, k, pad, shape.c_out, shape.pool, "auto")
        fwd_key = gc._key("conv_pool", x, bank, extra=(k, pad, shape.c_out, shape.pool))
    else:
        torch.ops.pgcnn_triton.group_conv2d(x, bank, bias, k, pad, "auto")
        fwd_key = gc._key("conv_fwd", x, bank, extra=(k, pad, True))
    torch.ops.pgcnn_triton.group_conv2d_backward(gy, x, bank, k, pad, True, True, "auto")
    bwd_key = gc._key("conv_bwd", x, bank, extra=(k, pad, True, True))
    choices = _backend.auto_choices()
    return choices.get(fwd_key, "?"), choices.get(bwd_key, "?")


def auto_verdict(row: dict) -> str:
    """``yes`` if auto's picks are the faster path of the table within :data:`AUTO_NOISE`, else ``NO``."""
    if row["auto_fwd"] not in ("triton", "torch") or row["auto_bwd"] not in ("triton", "torch"):
        return "n/a"
    ok = True
    for picked, passes in ((row["auto_fwd"], ("fwd",)), (row["auto_bwd"], ("dgrad", "wgrad"))):
        ms = {side: sum(row[f"{p}_{side}_ms"] for p in passes) for side in ("triton", "cudnn")}
        chosen = ms["triton" if picked == "triton" else "cudnn"]
        ok &= chosen <= min(ms.values()) * (1 + AUTO_NOISE)
    return "yes" if ok else "NO"


def measure(device, shape: ConvShape, samples: int, prec: str, reps: int, warmup: int = 1) -> dict:
    """One table row: the three passes of ``shape`` with ``samples`` banks (1 or B), Triton vs cuDNN."""
    row = {"model": shape.model, "layers": ",".join(shape.layers), "shape": shape.label(),
           "S": "1" if samples == 1 else "B", "precision": prec, "target": is_target(shape),
           "flop": shape.flop()}
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        with Precision(prec):
            functions, comparable, tensors = pass_functions(shape, samples, device, prec)
            errors, expected = [], {}
            for name in PASSES:
                (row[f"{name}_triton_ms"], row[f"{name}_cudnn_ms"]), (got, expected[name]) = timed_results(
                    functions[name], comparable[name], device, reps, warmup)
                errors.append(rel_err(got, expected[name]))
                del got
            row["max_rel_err"] = max(errors)
            row["auto_fwd"], row["auto_bwd"] = auto_picks(device, shape, tensors)
            row["auto_rule"] = _backend.auto_rule(prec)
            notes = [] if row["max_rel_err"] <= TOL[prec] else \
                [f"FAILED: Triton and cuDNN differ ({row['max_rel_err']:.2g})"]
            try:  # the channels-last variant is an experiment: its failure must not cost the row
                cl_errors = []
                for name in PASSES:
                    (row[f"{name}_triton_cl_ms"],), (got,) = timed_results(
                        [functions["cl"][name]], [comparable["cl"][name]], device, reps, warmup)
                    cl_errors.append(rel_err(got, expected[name]))
                    del got
                row["cl_max_rel_err"] = max(cl_errors)
                if row["cl_max_rel_err"] > TOL[prec]:
                    notes.append(f"FAILED: channels-last Triton and cuDNN differ ({row['cl_max_rel_err']:.2g})")
            except Exception as exc:
                notes.append(f"channels-last variant FAILED {exc!r}"[:200])
    finally:
        torch.backends.cudnn.benchmark = saved
    peak = PEAK_TFLOPS.get(prec, float("nan"))
    for name in PASSES:
        triton_ms, cudnn_ms = row[f"{name}_triton_ms"], row[f"{name}_cudnn_ms"]
        row[f"{name}_speedup"] = cudnn_ms / triton_ms
        row[f"{name}_tflops"] = row["flop"] / triton_ms / 1e9
        row[f"{name}_roofline"] = row[f"{name}_tflops"] / peak if device.type == "cuda" else float("nan")
    cudnn_sum = sum(row[f"{p}_cudnn_ms"] for p in PASSES)
    row["sum_speedup"] = cudnn_sum / sum(row[f"{p}_triton_ms"] for p in PASSES)
    if "cl_max_rel_err" in row:
        for name in PASSES:
            row[f"{name}_cl_speedup"] = row[f"{name}_cudnn_ms"] / row[f"{name}_triton_cl_ms"]
        row["sum_cl_speedup"] = cudnn_sum / sum(row[f"{p}_triton_cl_ms"] for p in PASSES)
    row["auto_ok"] = auto_verdict(row) if device.type == "cuda" else "n/a"
    row["note"] = "; ".join(notes)
    return row


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """Relative-norm difference ‖a − b‖ / ‖b‖ (in float32: ample for the bf16 / TF32 tolerances, and half
    the transient memory of float64 on the GCNN's multi-GB per-sample bank gradients)."""
    a, b = a.float(), b.float()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def plan(shapes: list[ConvShape], tf32: bool = True, which: str = "all") -> list[tuple[ConvShape, str, str]]:
    """Measurement order (a run under --budget can end at any row): the issue's targets first — bf16 at S = 1, then
    S = B, then TF32 at S = 1 (its TF32 target) — then the other shapes in bf16, S = 1 then S = B.
    Without targets (the tiny shapes) the first shape stands in for them. ``which``: ``"all"``,
    ``"targets"`` (the target rows only: ``--parts targets``) or ``"rest"`` (the others: ``--parts table-rest``)."""
    if which not in ("all", "targets", "rest"):
        raise ValueError(f"which must be 'all', 'targets' or 'rest', got {which!r}")
    lead = [s for s in shapes if is_target(s)] or shapes[:1]
    rest = [s for s in shapes if s not in lead]
    first = [(s, "1", "bf16") for s in lead] + [(s, "B", "bf16") for s in lead]
    if tf32:
        first += [(s, "1", "tf32") for s in lead]
    then = [(s, "1", "bf16") for s in rest] + [(s, "B", "bf16") for s in rest]
    return {"all": first + then, "targets": first, "rest": then}[which]


def run(device, deadline: Deadline, sink=None, tiny: bool = False, reps: int | None = None,
        row_seconds: float = 20.0, tf32: bool = True, which: str = "all", warmup: int = 1) -> list[dict]:
    """Measure the table in :func:`plan` order (``which`` of its rows), each row emitted as measured; rows
    that would start with less than ``row_seconds`` of the budget left are skipped (listed in one final
    ``note`` row). ``warmup``: untimed calls before each timing (0 for the tiny CPU run)."""
    shapes = distinct_shapes(batch=TINY_BATCH if tiny else 64, tiny=tiny)
    reps = reps or (1 if tiny else 10)
    rows, skipped = [], []
    for shape, s, prec in plan(shapes, tf32, which):
        if not deadline.allows(row_seconds):
            skipped.append(f"{shape.label()} S={s} {prec}")
            continue
        try:
            row = measure(device, shape, shape.batch if s == "B" else 1, prec, reps, warmup)
        except Exception as exc:  # one failing shape must not cost the rest of the run
            row = {"model": shape.model, "layers": ",".join(shape.layers), "shape": shape.label(), "S": s,
                   "precision": prec, "target": is_target(shape), "note": f"FAILED {exc!r}"[:300]}
        emit(row, sink)
        rows.append(row)
    if skipped:
        row = {"model": "", "shape": "", "note": f"budget: {len(skipped)} row(s) skipped: " + "; ".join(skipped)}
        emit(row, sink)
        rows.append(row)
    return rows


def report(rows: list[dict]) -> str:
    """The Markdown summary of the table (all columns are in the JSON and the ROW lines)."""
    from common import table

    measured = [r for r in rows if "fwd_triton_ms" in r]
    lines = ["Kernel table (issue 13): group-conv shapes of the CIFAR-10 presets, batch 64 (tiny on CPU); "
             "Triton tap-sparse vs cuDNN dense on the masked bank (channels-last, cudnn.benchmark); ms per "
             "pass; speedup = cuDNN / Triton; TFLOP/s and roofline on the in-disk taps; sum = fwd + dgrad + "
             "wgrad; target = the issue's three 7×7 CKResNet shapes (conv_table.py docstring)\n"
             + table(rows, SUMMARY_COLUMNS)]
    targets = [r for r in measured if r["target"] and r["precision"] == "bf16"]
    if targets:
        lines.append("Targets (bf16): " + "; ".join(
            f"{r['shape']} S={r['S']}: fwd {r['fwd_speedup']:.2f}x, sum {r['sum_speedup']:.2f}x "
            f"(goal 1.3x), fwd roofline {r['fwd_roofline']:.0%}" if not math.isnan(r["fwd_roofline"]) else
            f"{r['shape']} S={r['S']}: fwd {r['fwd_speedup']:.2f}x, sum {r['sum_speedup']:.2f}x"
            for r in targets))
    tf32 = [r for r in measured if r["precision"] == "tf32"]
    if tf32:  # the TF32 target: within 1.1x of cuDNN, or auto routes TF32 to cuDNN
        slow = [r for r in tf32 if r["sum_speedup"] < 1 / 1.1]
        lines.append("TF32 (fwd + dgrad + wgrad, cuDNN / Triton): " + "; ".join(
            f"{r['shape']}: {r['sum_speedup']:.2f}x" for r in tf32) + (
            f". Triton is more than 1.1x slower on {len(slow)} shape(s): route TF32 to cuDNN with "
            "PGCNN_AUTO_RULES=tf32=torch (or set_auto_rule('tf32', 'torch'))" if slow else
            ". Triton is within 1.1x of cuDNN on every TF32 shape measured"))
    return "\n\n".join(lines)
