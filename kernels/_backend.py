"""Which implementation an op runs: the Triton kernel or the pure-torch reference.

Choice, first match wins:

1. the op's ``backend=`` argument (``"triton"``, ``"torch"`` or ``"auto"``);
2. :func:`use_backend` (a context manager, e.g. to run a whole model on one backend);
3. the environment variable ``PGCNN_BACKEND``;
4. ``"auto"``.

``"auto"`` means: CUDA tensors → Triton (the group conv times Triton against cuDNN once per shape and
keeps the faster, :func:`fastest`); CPU tensors → the Triton kernels through the interpreter when
``TRITON_INTERPRET=1``, else the torch reference. ``"triton"`` on CPU without the interpreter raises
(a launch would fail with Triton's "0 active drivers").

What ``auto`` chose, per op and shape, is cached for the process and listed by :func:`auto_choices`.

Per-precision rules (``PGCNN_AUTO_RULES`` or :func:`set_auto_rule`): ``auto`` can be told to take
one backend for a precision without timing, e.g. ``PGCNN_AUTO_RULES=tf32=torch`` routes every TF32
group conv (fp32 tensors with ``torch.backends.cudnn.allow_tf32``) to cuDNN. Precisions: ``bf16``,
``fp16``, ``tf32``, ``fp32`` (TF32 off), ``fp64``; backends: ``triton``, ``torch`` or ``time`` (the
default: time both). No rule is set by default.

CUDA graphs: a shape's choice must be made before the graph is captured (one eager call of each
shape, e.g. the warm-up iterations that ``torch.compile(mode="reduce-overhead")`` runs anyway),
because nothing can be timed inside a capture. A shape first seen during capture gets the safe
default, ``"torch"`` (cuDNN), which is then cached for the process so the captured graph and later
eager calls agree, and a warning names the shape (:func:`capture_fallbacks` lists them);
``PGCNN_AUTO_CAPTURE=error`` raises instead.

The same holds for every backend choice that lands on Triton (``backend="triton"``, a per-precision rule,
the ops whose ``auto`` means Triton): its first call of a shape autotunes (timing, which synchronizes),
compiles and copies the tap tables from host memory, none of which a capture allows. So the warm-up
rule: **run each shape once eagerly before capturing it.** A Triton op of a shape not yet run eagerly
on that device raises a one-line error inside a capture with ``backend="triton"``; with ``auto`` it
takes the torch path as above (warned, cached, ``PGCNN_AUTO_CAPTURE=error`` raises).

Launch failures: when ``auto`` picked Triton and the launch fails (e.g. a grid past CUDA's limits), the
op warns once, naming the shape, and runs the torch path for that shape for the rest of the process
(:func:`launch_fallbacks` lists them). ``backend="triton"`` raises instead.

The reproducible mode (``PGCNN_DETERMINISTIC=1`` or ``torch.use_deterministic_algorithms(True)``,
:func:`deterministic`): ``auto`` takes Triton (or the precision's rule) without timing.

``TRITON_INTERPRET=1`` with CUDA tensors: ``auto`` runs the torch path (the interpreter would run the
kernels on copies in host memory) and warns once per process; ``backend="triton"`` raises.
"""

from __future__ import annotations

import contextvars
import os
import warnings
from contextlib import contextmanager
from functools import lru_cache

import torch

ENV_VAR = "PGCNN_BACKEND"
BACKENDS = ("auto", "triton", "torch")

_CONTEXT: contextvars.ContextVar[str | None] = contextvars.ContextVar("pgcnn_backend", default=None)


def check_backend(backend) -> str:
    """Validate a backend name (``None`` and ``""`` mean "not given")."""
    if backend is None or backend == "":
        return ""
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS} (or None), got {backend!r}")
    return backend


@contextmanager
def use_backend(backend: str):
    """Run every op inside the context on ``backend`` unless an op is given ``backend=`` itself."""
    token = _CONTEXT.set(check_backend(backend) or None)
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def _constant_under_compile(fn):
    """``torch.compiler.assume_constant_result`` without its import of ``torch._dynamo``, which took 1.6 s
    of every process start that imports this package (CLI runs included). The decorator only marks the
    function; tests/kernels/test_backend.py checks the mark against torch's, and the fullgraph compile tests
    break if dynamo stops honouring it."""
    fn._dynamo_marked_constant = True
    return fn


@_constant_under_compile
def requested(backend: str | None = None) -> str:
    """The backend asked for: argument, then context, then ``PGCNN_BACKEND``, then ``"auto"``.

    Under ``torch.compile`` this is read once, when the graph is traced (dynamo cannot trace a
    ``ContextVar``): a compiled function keeps the backend it was compiled with.
    """
    name = check_backend(backend)
    if name:
        return name
    name = _CONTEXT.get()
    if name:
        return name
    env = os.environ.get(ENV_VAR, "")
    if env and env not in BACKENDS:
        raise ValueError(f"environment variable {ENV_VAR} must be one of {BACKENDS}, got {env!r}")
    return env or "auto"


def shape_key(name: str, *tensors, extra=()) -> tuple:
    """The cache key of an op call: ``name``, each tensor's shape, dtype and strides (``None`` skipped), then
    ``extra`` and the first tensor's device."""
    present = [t for t in tensors if t is not None]
    return (name, *((tuple(t.shape), t.dtype, t.stride()) for t in present), *extra, str(present[0].device))


DETERMINISTIC_ENV = "PGCNN_DETERMINISTIC"


class GridLimitError(RuntimeError):
    """A launch needs more programs on a grid axis than CUDA allows and its launcher cannot fold them."""


def deterministic() -> bool:
    """The reproducible mode: ``PGCNN_DETERMINISTIC=1`` or ``torch.use_deterministic_algorithms(True)``.

    In it the group conv launches one pinned tile configuration per element size instead of autotuning
    (autotuning times configurations in each process, and the tile's ``BLOCK_K`` / ``BLOCK_P`` fix the
    summation order), and ``backend="auto"`` takes Triton (or the precision's rule) without timing it
    against cuDNN. Results are then bitwise identical across processes on the same GPU model, driver,
    Triton and torch versions, for the same inputs and shapes. Read at every call.
    """
    value = os.environ.get(DETERMINISTIC_ENV, "")
    if value not in ("", "0", "1"):
        raise ValueError(f"environment variable {DETERMINISTIC_ENV} must be 0 or 1, got {value!r}")
    return value == "1" or torch.are_deterministic_algorithms_enabled()


def interpreting() -> bool:
    """True when Triton kernels run through the CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0", "false", "False")


@lru_cache(maxsize=None)
def triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except Exception:  # pragma: no cover - platforms without a triton wheel
        return False
    return True


_INTERPRETER_WARNED = [False]


def _warn_interpreter_on_cuda() -> None:
    if not _INTERPRETER_WARNED[0]:
        _INTERPRETER_WARNED[0] = True
        warnings.warn("TRITON_INTERPRET=1 is set, so backend='auto' runs the torch path on CUDA tensors (the "
                      "interpreter would run the Triton kernels on host copies); unset TRITON_INTERPRET before "
                      "triton is imported to run the Triton kernels on the GPU", RuntimeWarning, stacklevel=4)


def resolve(backend: str | None, device: torch.device) -> str:
    """``"triton"``, ``"torch"`` or, for CUDA + auto, ``"auto"`` (the op then times both)."""
    return _resolve(requested(backend), device)


def _resolve(name: str, device: torch.device) -> str:
    if name == "torch":
        return "torch"
    if device.type == "cuda" and not interpreting():
        if not triton_available():
            if name == "triton":
                raise RuntimeError("backend='triton' needs the triton package, which is not importable here")
            return "torch"
        return name
    if device.type == "cpu" and interpreting() and triton_available():
        return "triton"
    if name == "triton":
        raise RuntimeError(
            f"backend='triton' cannot run on {device.type} tensors: Triton kernels need a CUDA device, "
            "or CPU tensors with TRITON_INTERPRET=1 set before triton is imported (the interpreter)"
        )
    if device.type == "cuda":
        _warn_interpreter_on_cuda()
    return "torch"


_FASTEST: dict[tuple, str] = {}
_CAPTURE_FALLBACKS: list[tuple] = []
_LAUNCH_FALLBACKS: list[tuple] = []
_WARM: set = set()  # keys Triton has run eagerly on CUDA: safe inside a CUDA-graph capture
PRECISIONS = ("bf16", "fp16", "tf32", "fp32", "fp64")
RULE_ENV = "PGCNN_AUTO_RULES"
CAPTURE_ENV = "PGCNN_AUTO_CAPTURE"
_RULES: dict[str, str] = {}  # set_auto_rule(); overrides the environment


def precision_of(dtype: torch.dtype, allow_tf32: bool) -> str:
    """The rule name of an op's precision: ``bf16``, ``fp16``, ``tf32`` (fp32 with TF32 allowed), ``fp32``,
    ``fp64``."""
    if dtype == torch.float32:
        return "tf32" if allow_tf32 else "fp32"
    return {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float64: "fp64"}.get(dtype, str(dtype))


def _check_rule(precision, backend, source: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"{source}: precision must be one of {PRECISIONS}, got {precision!r}")
    if backend not in ("triton", "torch", "time"):
        raise ValueError(f"{source}: backend for {precision} must be 'triton', 'torch' or 'time', got {backend!r}")


def set_auto_rule(precision: str, backend: str | None) -> None:
    """Make ``auto`` take ``backend`` (``"triton"`` / ``"torch"``, or ``"time"``: time both) for every op
    of ``precision`` (see :data:`PRECISIONS`); ``None`` removes the rule (the environment applies again).
    Choices already cached are kept: set rules before the first call."""
    if backend is None:
        _RULES.pop(precision, None)
        return
    _check_rule(precision, backend, "set_auto_rule")
    _RULES[precision] = backend


def auto_rules() -> dict[str, str]:
    """The per-precision rules in force: ``PGCNN_AUTO_RULES`` (``"tf32=torch,fp32=torch"``) updated by
    :func:`set_auto_rule`."""
    rules = {}
    for item in filter(None, (part.strip() for part in os.environ.get(RULE_ENV, "").split(","))):
        precision, sep, backend = item.partition("=")
        if not sep:
            raise ValueError(f"{RULE_ENV} must look like 'tf32=torch,fp32=torch', got {item!r}")
        _check_rule(precision.strip(), backend.strip(), RULE_ENV)
        rules[precision.strip()] = backend.strip()
    return {**rules, **_RULES}


def auto_rule(precision: str | None) -> str:
    """``"triton"``, ``"torch"`` or ``"time"`` for an op of this precision (``None``: ``"time"``)."""
    return auto_rules().get(precision, "time") if precision else "time"


def _capture_fallback(key: tuple) -> str:
    mode = os.environ.get(CAPTURE_ENV, "torch")
    if mode not in ("torch", "error"):
        raise ValueError(f"{CAPTURE_ENV} must be 'torch' or 'error', got {mode!r}")
    advice = ("backend='auto' times Triton against cuDNN once per shape, which cannot happen inside CUDA-graph "
              "capture: run one eager call of every shape before capturing (e.g. a warm-up step; "
              "torch.compile(mode='reduce-overhead') warms up before it captures), or pick backend='triton' / "
              "'torch' for captured code")
    if mode == "error":
        raise RuntimeError(f"{advice}. First call of {key[0]!r} during capture (shape key {key}); "
                           f"unset {CAPTURE_ENV} to fall back to cuDNN instead")
    warnings.warn(f"{advice}. Shape key {key} was first seen during capture: it uses 'torch' (cuDNN) for the rest "
                  f"of the process ({CAPTURE_ENV}=error raises instead)", RuntimeWarning, stacklevel=4)
    _CAPTURE_FALLBACKS.append(key)
    _FASTEST[key] = "torch"
    return "torch"


def _launch_fallback(key: tuple, error: Exception) -> str:
    warnings.warn(f"backend='auto': the Triton kernel failed for shape key {key} ({type(error).__name__}: "
                  f"{str(error).splitlines()[0] if str(error) else ''}); this shape uses the torch path for the "
                  "rest of the process (backend='triton' raises instead)", RuntimeWarning, stacklevel=4)
    _LAUNCH_FALLBACKS.append(key)
    _FASTEST[key] = "torch"
    return "torch"


def fastest(key: tuple, candidates: dict, reps: int = 3) -> str:
    """Time each ``candidates[name]()`` once per ``key`` on the current CUDA stream; cache the winner.

    Used by ``auto`` on GPU so the library is never slower than cuDNN on a shape where Triton loses.
    During CUDA-graph capture nothing can be timed: the cached choice, else ``"torch"`` (cached too,
    with a warning; ``PGCNN_AUTO_CAPTURE=error`` raises), see the module docstring. A Triton candidate
    that fails is dropped (the launch-failure fallback).
    """
    if key in _FASTEST:
        return _FASTEST[key]
    if torch.cuda.is_current_stream_capturing():
        return _capture_fallback(key)
    times = {}
    for name, fn in candidates.items():
        try:
            times[name] = cuda_ms(fn, reps)
        except Exception as error:
            if name != "triton":
                raise
            return _launch_fallback(key, error)
    _FASTEST[key] = min(times, key=times.get)
    _WARM.add(key)  # the timing ran each candidate eagerly
    return _FASTEST[key]


def cuda_ms(fn, reps: int = 3) -> float:
    """Mean milliseconds of ``fn()`` on the current CUDA stream, after one warm-up call (which
    compiles / autotunes a Triton kernel or picks the cuDNN algorithm)."""
    fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / reps


def _torch_only(key: tuple) -> bool:
    """A key that fell back to torch (capture, launch failure) keeps torch for the process."""
    return key in _CAPTURE_FALLBACKS or key in _LAUNCH_FALLBACKS


def _auto_choice(key: tuple, candidates: dict, precision: str | None, default: str) -> str:
    if _torch_only(key):
        return "torch"
    pinned = deterministic()
    if pinned or key not in _FASTEST:  # the rules are parsed from the environment: only where they decide
        rule = auto_rule(precision)
        choice = default if rule == "time" else rule
        if pinned:  # never timed, whatever an earlier timing cached
            return "triton" if choice == "time" else choice
        if choice != "time":
            _FASTEST[key] = choice
    return fastest(key, candidates)


def _capture_refusal(key: tuple) -> RuntimeError:
    return RuntimeError(f"backend='triton': first Triton call of shape key {key} inside CUDA-graph capture, where "
                        "autotuning, compiling and host copies are not allowed; run one eager call of each shape "
                        "before capturing (a warm-up step)")


def run(backend: str | None, device: torch.device, key, candidates: dict, precision: str | None = None,
        auto: str = "time"):
    """Run ``candidates["triton"]`` or ``candidates["torch"]`` as :func:`resolve` says; for ``auto`` on
    CUDA the one the precision's rule names, else ``auto`` (``"time"``: the faster one for ``key()``, a
    callable, so the key is only built when needed; ``"triton"``: Triton, for ops with nothing to time).
    Either way the choice is cached and recorded. Enforces the capture warm-up rule and, under ``auto``,
    falls back to torch when Triton fails (module docstring)."""
    name = requested(backend)
    which = _resolve(name, device)
    by_auto = name == "auto"
    built = []

    def the_key():
        if not built:
            built.append(key())
        return built[0]

    if which == "auto":
        which = _auto_choice(the_key(), candidates, precision, auto)
    elif which == "triton" and by_auto and (_CAPTURE_FALLBACKS or _LAUNCH_FALLBACKS) and _torch_only(the_key()):
        # auto through the interpreter: a shape that fell back keeps torch (no key built before any has)
        which = "torch"
    cuda = device.type == "cuda"
    if which == "triton" and cuda and the_key() not in _WARM and torch.cuda.is_current_stream_capturing():
        if not by_auto:
            raise _capture_refusal(the_key())
        which = _capture_fallback(the_key())
    if which != "triton":
        return candidates[which]()
    if not by_auto:
        result = candidates["triton"]()
    else:
        try:
            result = candidates["triton"]()
        except Exception as error:
            # in the interpreter (CPU) any other failure is a kernel bug, which a fallback would hide
            if not cuda and not isinstance(error, GridLimitError):
                raise
            return candidates[_launch_fallback(the_key(), error)]()
    if cuda and not torch.cuda.is_current_stream_capturing():
        _WARM.add(the_key())
    return result


def auto_choices() -> dict[tuple, str]:
    """A copy of the choices ``auto`` has made so far (key → backend), for benchmarks and logs."""
    return dict(_FASTEST)


def launch_fallbacks() -> list[tuple]:
    """The shape keys whose Triton launch failed under ``auto`` and which run the torch path since."""
    return list(_LAUNCH_FALLBACKS)


def capture_fallbacks() -> list[tuple]:
    """The shape keys first seen during CUDA-graph capture, which got ``"torch"`` without timing."""
    return list(_CAPTURE_FALLBACKS)
