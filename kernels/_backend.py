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
"""

from __future__ import annotations

import contextvars
import os
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


@torch.compiler.assume_constant_result
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


def resolve(backend: str | None, device: torch.device) -> str:
    """``"triton"``, ``"torch"`` or, for CUDA + auto, ``"auto"`` (the op then times both)."""
    name = requested(backend)
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
    return "torch"


_FASTEST: dict[tuple, str] = {}


def fastest(key: tuple, candidates: dict, reps: int = 3) -> str:
    """Time each ``candidates[name]()`` once per ``key`` on the current CUDA stream; cache the winner.

    Used by ``auto`` on GPU so the library is never slower than cuDNN on a shape where Triton loses.
    During CUDA-graph capture nothing can be timed: the cached choice, else ``"torch"``, is used.
    """
    if key in _FASTEST:
        return _FASTEST[key]
    if torch.cuda.is_current_stream_capturing():
        return "torch"
    times = {name: cuda_ms(fn, reps) for name, fn in candidates.items()}
    _FASTEST[key] = min(times, key=times.get)
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


def run(backend: str | None, device: torch.device, key, candidates: dict):
    """Run ``candidates["triton"]`` or ``candidates["torch"]`` as :func:`resolve` says; for ``auto`` on
    CUDA the faster one for ``key()`` (a callable, so the key is only built when timing may be needed)."""
    which = resolve(backend, device)
    if which == "auto":
        which = fastest(key(), candidates)
    return candidates[which]()


def auto_choices() -> dict[tuple, str]:
    """A copy of the choices ``auto`` has made so far (key → backend), for benchmarks and logs."""
    return dict(_FASTEST)
