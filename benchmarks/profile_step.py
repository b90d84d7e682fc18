"""Where a training step's time goes: ``torch.profiler`` over a few steps, per GPU kernel (per CPU op on CPU).

The ``profile`` part of benchmarks/device_check.py (issue 12). For each row (a ``models.make_step`` spec)
it builds the step, runs ``warmup`` steps (compilation, autotuning, cuDNN's algorithm choice), times
``steps`` steps without the profiler (``common.timed``), then profiles ``steps`` more and reports:

* the top kernels by total time: calls per step, ms per step, % of the profiled step's wall time;
* GPU busy time per step (the union of the kernels' intervals) against the step's wall time: busy far
  below wall means the GPU waits for the host (launch overhead, Python, syncs);
* kernel launches per step (memcpy / memset excluded);
* time per kind (``KINDS``): convolutions against everything else, the rest split by the issue's suspects.

On CPU (the CI run through the Triton interpreter) the same tables come from the CPU ops' self times,
so every code path runs; those numbers say nothing about the GPU. The aggregation takes plain ``Event``
tuples, so it is tested on synthetic events.
"""

from __future__ import annotations

import gzip
import re
import shutil
import time
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

import torch
from common import emit, table, timed

# Kind of a kernel or op, by name: the first pattern that matches (case-insensitive `re.search`) wins.
# Order matters: the library's own Triton kernels first; then inductor's generated kernels, whose
# names list the fused aten ops ("convolution" in one is a bias add or layout change fused next to
# a conv, not the conv); then layout / copies before cuDNN's convs (cuDNN's nchwToNhwc kernels are
# layout work); "conv(?!ert)" keeps "convert" out of the convs.
KINDS = (
    ("conv", r"^_conv_kernel|^_bank_grad_kernel|pgcnn_triton::group_conv2d|^triton_tem_\w*conv"),
    ("inductor-fused", r"^triton_(poi|red|per)_"),
    ("layout/copy", r"nchwtonhwc|nhwctonchw|transpose|permute|copy|memcpy|memset|contiguous|clone|\bcat\b"),
    ("kernel-bank", r"bank_fwd_kernel|bank_grad_hidden_kernel|bank_grad_weight_kernel|kernel_bank"),
    ("pool", r"pool|_group_max|_group_mean|_global_max"),
    ("norm", r"norm|bn_fw|bn_bw|welford"),
    ("optimizer", r"adam|foreach|multi_tensor_apply"),
    ("conv", r"conv(?!ert)|fprop|dgrad|wgrad|implicit_gemm|convolve"),
    ("gemm", r"gemm|cublas|cutlass|nvjet|aten::(mm|addmm|bmm|matmul|linear|baddbmm)\b"),
    ("elementwise", r"elementwise|reduce_kernel"),
)
_KIND_RE = [(kind, re.compile(pattern, re.IGNORECASE)) for kind, pattern in KINDS]
NOT_LAUNCHES = re.compile(r"^(memcpy|memset)", re.IGNORECASE)  # device events that are not kernel launches

KERNEL_COLUMNS = ["rank", "name", "kind", "calls_per_step", "ms_per_step", "pct_of_step"]
KIND_COLUMNS = ["kind", "calls_per_step", "ms_per_step", "pct_of_step", "pct_of_kernels"]
SUMMARY_COLUMNS = ["row", "source", "steps", "step_ms", "wall_ms", "busy_ms", "busy_pct", "kernel_ms",
                   "launches_per_step", "conv_ms", "other_ms", "conv_pct", "note"]
COMPILE_S, EAGER_S = 75.0, 20.0  # device seconds a compiled / eager row needs before it is started


class Event(NamedTuple):
    """One profiled kernel (device "cuda") or CPU op (device "cpu", duration = its self time); µs."""

    name: str
    duration: float
    start: float
    end: float
    device: str


def classify(name: str) -> str:
    """The ``KINDS`` entry of a kernel or op name ("other" if none matches)."""
    for kind, pattern in _KIND_RE:
        if pattern.search(name):
            return kind
    return "other"


def short_name(name: str, width: int = 90) -> str:
    """A kernel name fit for a table row: no ``void``/namespace noise, no ``|``, at most ``width`` chars."""
    name = re.sub(r"^void ", "", " ".join(name.split()))
    name = name.replace("at::native::", "").replace("(anonymous namespace)::", "").replace("|", "/")
    return name if len(name) <= width else name[:width - 1] + "…"


def busy_time(intervals) -> float:
    """The length of the union of ``(start, end)`` intervals (concurrent kernels count once)."""
    total, cur_start, cur_end = 0.0, None, None
    for start, end in sorted(intervals):
        if cur_end is None or start > cur_end:
            if cur_end is not None:
                total += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    return total + (cur_end - cur_start if cur_end is not None else 0.0)


def aggregate(events: list[Event], steps: int, wall_ms: float, top: int = 15) -> dict:
    """Per-step tables from the events of ``steps`` profiled steps of ``wall_ms`` each: ``kernels`` (the
    ``top`` names by total time), ``kinds`` (every kind present) and ``summary`` (busy, launches, conv)."""
    if steps < 1 or wall_ms <= 0:
        raise ValueError(f"steps must be >= 1 and wall_ms > 0, got steps={steps}, wall_ms={wall_ms}")
    by_name = defaultdict(lambda: [0, 0.0])
    for e in events:
        by_name[e.name][0] += 1
        by_name[e.name][1] += e.duration
    kernel_ms = sum(total for _, total in by_name.values()) / 1e3 / steps

    def per_step(calls, total_us):
        ms = total_us / 1e3 / steps
        return {"calls_per_step": calls / steps, "ms_per_step": ms, "pct_of_step": 100 * ms / wall_ms}

    ranked = sorted(by_name.items(), key=lambda item: -item[1][1])
    kernels = [{"rank": i + 1, "name": short_name(name), "kind": classify(name), **per_step(*stats)}
               for i, (name, stats) in enumerate(ranked[:top])]
    by_kind = defaultdict(lambda: [0, 0.0])
    for name, (calls, total) in by_name.items():
        by_kind[classify(name)][0] += calls
        by_kind[classify(name)][1] += total
    kinds = [{"kind": kind, **per_step(*stats)} for kind, stats in sorted(by_kind.items(), key=lambda kv: -kv[1][1])]
    for row in kinds:
        row["pct_of_kernels"] = 100 * row["ms_per_step"] / kernel_ms if kernel_ms else 0.0
    busy_ms = busy_time((e.start, e.end) for e in events) / 1e3 / steps
    conv_ms = by_kind["conv"][1] / 1e3 / steps if "conv" in by_kind else 0.0
    summary = {"steps": steps, "wall_ms": wall_ms, "busy_ms": busy_ms, "busy_pct": 100 * busy_ms / wall_ms,
               "kernel_ms": kernel_ms,
               "launches_per_step": sum(1 for e in events if not NOT_LAUNCHES.match(e.name)) / steps,
               "conv_ms": conv_ms, "other_ms": kernel_ms - conv_ms,
               "conv_pct": 100 * conv_ms / kernel_ms if kernel_ms else 0.0}
    return {"kernels": kernels, "kinds": kinds, "summary": summary}


def profiler_events(prof, device: str) -> list[Event]:
    """``prof``'s kernels and memory copies on the GPU (``device`` "cuda"), or its CPU ops with their self
    times (``device`` "cpu"). User annotations are left out (``record_function`` ranges, among them
    torch.compile's, which Kineto mirrors onto the GPU timeline), and so are async CPU events."""
    from torch.autograd import DeviceType

    wanted = DeviceType.CUDA if device == "cuda" else DeviceType.CPU
    events = []
    for e in prof.events():
        if e.device_type != wanted or getattr(e, "is_user_annotation", False) or (device == "cpu" and e.is_async):
            continue
        start, end = e.time_range.start, e.time_range.end
        events.append(Event(e.name, end - start if device == "cuda" else e.self_cpu_time_total, start, end, device))
    return events


def write_trace(prof, path: Path) -> None:
    """``prof``'s Chrome trace, gzipped, at ``path`` (open in Perfetto or chrome://tracing)."""
    raw = path.with_suffix("")
    prof.export_chrome_trace(str(raw))
    with open(raw, "rb") as src, gzip.open(path, "wb") as dst:
        shutil.copyfileobj(src, dst)
    raw.unlink()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def profile_row(spec: dict, device: torch.device, steps: int, warmup: int, top: int = 15,
                trace: Path | None = None, reps: int | None = None) -> dict:
    """Profile ``steps`` steps of ``spec`` after ``warmup`` steps; ``aggregate``'s tables, with the
    unprofiled step time over ``reps`` steps (default ``steps``) as ``summary["step_ms"]``.
    ``trace``: also write a gzipped Chrome trace there."""
    import models

    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with models.make_step(spec, device) as step:
        for _ in range(warmup):
            step()
        step_ms = timed(step, device, reps or steps, warmup=0)
        with torch.profiler.profile(activities=activities) as prof:
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            _sync(device)
            wall_ms = (time.perf_counter() - t0) * 1e3 / steps
    source, note = ("cuda kernels", "") if device.type == "cuda" else ("cpu ops (self time)", "")
    events = profiler_events(prof, device.type)
    if device.type == "cuda" and not events:  # CUPTI missing or failing: say so, show the host side
        source, note = "cpu ops (self time)", "no CUDA kernel events (CUPTI unavailable?)"
        events = profiler_events(prof, "cpu")
    result = aggregate(events, steps, wall_ms, top)
    result["summary"].update(source=source, step_ms=step_ms, note=note)
    if trace is not None:
        try:
            write_trace(prof, trace)
        except Exception as exc:  # the tables are what the run is for
            result["summary"]["note"] = f"trace not written: {type(exc).__name__}: {str(exc)[:100]}"
    return result


def run(specs: list[dict], device: torch.device, deadline, sink=None, steps: int = 5, warmup: int = 2,
        top: int = 15, trace_dir: Path | None = None, reps: int | None = None) -> list[dict]:
    """Profile each spec while ``deadline`` allows; a compiled spec that fails, or no longer fits, is
    profiled eager instead (the note says why), so a single run still sees that model. Every table
    row is emitted as soon as its spec is done, tagged with ``row`` (the name of the spec profiled) and
    ``table`` (kernels | kinds | summary); a spec that did not run leaves one summary row with its notes."""
    import models

    rows = []
    for spec in specs:
        attempts = [spec, {**spec, "compile": False}] if spec.get("compile") else [spec]
        notes, found = [], None
        for attempt in attempts:
            name = models.spec_name(attempt)
            if not deadline.allows(COMPILE_S if attempt.get("compile") else EAGER_S):
                notes.append(f"{name} skipped: --budget reached")
                continue
            try:
                trace = trace_dir / f"trace_{name.replace('/', '_')}.json.gz" if trace_dir else None
                result = profile_row(attempt, device, steps, warmup, top, trace, reps)
            except Exception as exc:  # a failing row must not cost the rows after it
                notes.append(f"{name} FAILED {type(exc).__name__}: {str(exc)[:200]}")
                continue
            result["summary"]["note"] = "; ".join(notes + [result["summary"]["note"]]).strip("; ")
            found = [{"table": t, **r} for t in ("kernels", "kinds") for r in result[t]]
            found.append({"table": "summary", **result["summary"]})
            break
        for row in found or [{"table": "summary", "note": "; ".join(notes)}]:
            row = {"row": name if found else models.spec_name(spec), **row}
            emit(row, sink)
            rows.append(row)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def report(rows: list[dict]) -> str:
    """The Markdown tables of ``run``'s rows: one summary over all rows, then per row its kinds and top kernels."""
    parts = ["Step profile (torch.profiler; step_ms = unprofiled step, wall_ms = profiled step; busy = union "
             "of kernel intervals per step; kernel_ms = their sum; conv = KINDS 'conv' in "
             "benchmarks/profile_step.py):\n" + table([r for r in rows if r["table"] == "summary"], SUMMARY_COLUMNS)]
    for name in dict.fromkeys(r["row"] for r in rows):
        mine = [r for r in rows if r["row"] == name]
        if any(r["table"] == "kinds" for r in mine):
            parts.append(f"{name}: time per kind\n" + table([r for r in mine if r["table"] == "kinds"], KIND_COLUMNS))
            parts.append(f"{name}: top kernels / ops by total time\n"
                         + table([r for r in mine if r["table"] == "kernels"], KERNEL_COLUMNS))
    return "\n\n".join(parts)
