"""What the benchmark scripts share: precision settings, timers, peak memory, Markdown tables, a deadline."""

from __future__ import annotations

import contextlib
import json
import platform
import statistics
import sys
import time
from datetime import datetime, timezone

import torch

PRECISIONS = ("fp32", "tf32", "bf16")


class Precision:
    """Run a block in fp32 (TF32 off), TF32 (fp32 tensors, TF32 matmuls/convs) or bf16 (autocast)."""

    def __init__(self, name: str, device_type: str = "cuda"):
        if name not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {name!r}")
        self.name = name
        self.device_type = device_type
        self.dtype = torch.bfloat16 if name == "bf16" else torch.float32
        self._stack = contextlib.ExitStack()

    def __enter__(self):
        self.saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
        tf32 = self.name in ("tf32", "bf16")  # bf16 runs: what autocast leaves in fp32 may use TF32
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32
        return self

    def autocast(self):
        """The autocast context of this precision (bf16 only; a no-op otherwise)."""
        if self.name == "bf16":
            return torch.autocast(self.device_type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def __exit__(self, *exc):
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = self.saved


def timed(fn, device: torch.device, reps: int, warmup: int = 1) -> float:
    """Milliseconds per call of ``fn()`` after ``warmup`` untimed calls: the mean over ``reps`` calls
    between CUDA events on GPU, the median of ``reps`` wall-clock calls on CPU."""
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        from pgcnn_triton.kernels._backend import cuda_ms  # the timer `auto` uses (one more warm-up call)

        torch.cuda.synchronize()
        return cuda_ms(fn, reps)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def ort_cpu_session(path, threads: int):
    """An ONNX Runtime CPU session of the file at ``path`` with ``threads`` intra-op threads (the same
    cores as torch's, for side-by-side timings)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def timed_results(fns, posts, device, reps: int, warmup: int = 1) -> tuple[list[float], list]:
    """:func:`timed` of each of ``fns`` in turn, and each one's result through its ``posts`` entry.

    On the GPU the results come from one more call of each, after all the timings: ``timed`` keeps none,
    and a result held meanwhile would take memory from the calls timed after it. On a CPU the last timed
    call's result is kept instead: through the interpreter (the tiny table) the Triton calls are what a
    row costs, and calling each again would double it."""
    if device.type == "cuda":
        times = [timed(fn, device, reps, warmup) for fn in fns]
        return times, [post(fn()) for fn, post in zip(fns, posts)]
    times, results = [], []
    for fn, post in zip(fns, posts):
        last = [None]

        def call(fn=fn, last=last):
            last[0] = fn()

        times.append(timed(call, device, reps, warmup))
        results.append(post(last[0]))
    return times, results


def write_report(out, name: str, report: str, rows) -> None:
    """Print ``report`` and, if ``out`` is a folder path, write ``name``.md (the report) and ``name``.json (rows)."""
    from pathlib import Path

    print(report)
    if out:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{name}.md").write_text(report + "\n")
        (out / f"{name}.json").write_text(json.dumps(rows, indent=1, default=str))


def peak_rss_mib() -> float:
    """The process's peak resident set size so far (CPU peak memory)."""
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (rss if sys.platform == "darwin" else rss * 1024) / 2 ** 20


def table(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = []
        for col in columns:
            v = row.get(col, "")
            cells.append(f"{v:.3g}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine() -> str:
    """One line: date (UTC), device, torch/triton versions, threads."""
    import triton

    if torch.cuda.is_available():
        dev = torch.cuda.get_device_name()
    else:
        from pgcnn_triton.precision import cpu_bf16_units, cpu_model_name

        dev = (f"CPU {cpu_model_name()} (bf16 units: {cpu_bf16_units() or 'none'}), "
               f"{torch.get_num_threads()} threads")
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"{stamp}; {dev}; torch {torch.__version__}, triton {triton.__version__}, python {platform.python_version()}"


class Deadline:
    """A wall-clock budget for a script that must end within a time limit (--budget)."""

    def __init__(self, seconds: float | None):
        self.end = None if seconds is None else time.monotonic() + seconds

    def left(self) -> float:
        return float("inf") if self.end is None else self.end - time.monotonic()

    def allows(self, seconds: float) -> bool:
        return self.left() >= seconds

    def reserving(self, seconds: float) -> "Deadline":
        """A deadline ``seconds`` earlier than this one (what a part may use while later parts keep theirs)."""
        part = Deadline(None)
        part.end = None if self.end is None else self.end - seconds
        return part


def emit(row: dict, sink=None) -> None:
    """Print one result row at once (a run cut short still reports what it measured) and append it
    to ``sink`` (a JSON-lines path) if given."""
    print("ROW " + json.dumps(row, default=str), flush=True)
    if sink is not None:
        with open(sink, "a") as f:
            f.write(json.dumps(row, default=str) + "\n")
