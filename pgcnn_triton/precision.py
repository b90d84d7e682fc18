"""Precision policy: bf16 autocast where the hardware runs bf16 natively, fp32 elsewhere.

* CUDA: bf16 autocast on (every GPU the library targets has bf16 tensor cores).
* CPU: on where the CPU has bf16 matrix units — Intel AMX (``amx_bf16``: Sapphire Rapids and later) or
  AVX512-BF16 (``avx512_bf16``: Cooper Lake, AMD Zen 4 and later) — and off elsewhere: oneDNN
  emulates bf16 without them, which is slower than fp32.

Detection uses torch's own CPU capability query (:func:`torch.cpu.get_capabilities`, the flags
oneDNN dispatches on). The trainer's ``--amp`` / ``--no-amp`` override the default.

Usage::

    from pgcnn_triton import precision
    with precision.autocast(x.device):          # the policy's choice for this device
        logits = model(x)
    with precision.autocast("cpu", enabled=False):
        ...                                      # fp32, whatever the CPU
"""

from __future__ import annotations

import contextlib
import platform

import torch

#: The autocast dtype of the policy.
AMP_DTYPE = torch.bfloat16

# the CPU flags that mean native bf16 matrix arithmetic, strongest first
_BF16_UNITS = ("amx_bf16", "avx512_bf16")


def cpu_capabilities() -> dict:
    """torch's CPU capability flags (``{}`` where this torch build cannot report them)."""
    query = getattr(torch.cpu, "get_capabilities", None)
    if query is None:
        return {}
    try:
        return dict(query())
    except RuntimeError:
        return {}


def cpu_bf16_units() -> str | None:
    """The CPU's native bf16 matrix unit: ``"amx_bf16"``, ``"avx512_bf16"``, or ``None``."""
    caps = cpu_capabilities()
    for flag in _BF16_UNITS:
        if caps.get(flag):
            return flag
    return None


def cpu_model_name() -> str:
    """The CPU model name (``lscpu``'s "Model name", from /proc/cpuinfo or torch's capability query)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return str(cpu_capabilities().get("cpu_name") or platform.processor() or platform.machine() or "unknown")


def _device_type(device) -> str:
    if isinstance(device, torch.device):
        return device.type
    if isinstance(device, str):
        return torch.device(device).type
    raise TypeError(f"device must be a torch.device or a device string, got {type(device).__name__}")


def default_amp(device) -> bool:
    """Whether the policy turns bf16 autocast on for ``device``: CUDA yes, CPU where it has bf16 units."""
    kind = _device_type(device)
    if kind == "cuda":
        return True
    if kind == "cpu":
        return cpu_bf16_units() is not None
    return False


def resolve_amp(device, amp: bool | None = None) -> bool:
    """``amp`` if given (an explicit ``--amp`` / ``--no-amp``), else :func:`default_amp`."""
    if amp is not None and not isinstance(amp, bool):
        raise TypeError(f"amp must be True, False or None (the device's default), got {amp!r}")
    return default_amp(device) if amp is None else amp


def autocast(device, enabled: bool | None = None):
    """The policy's autocast context for ``device``: bf16 autocast when :func:`resolve_amp` says so,
    else a no-op context (fp32, or whatever dtype the model and inputs have)."""
    kind = _device_type(device)
    if not resolve_amp(device, enabled):
        return contextlib.nullcontext()
    return torch.autocast(kind, dtype=AMP_DTYPE)


def describe(device, amp: bool | None = None) -> dict:
    """What a run records about its precision: the choice, why, and the machine it was made on."""
    on = resolve_amp(device, amp)
    info = {"amp": on, "amp_dtype": str(AMP_DTYPE).replace("torch.", "") if on else None,
            "amp_source": "flag" if amp is not None else "default", "device": _device_type(device)}
    if info["device"] == "cpu":
        info.update(cpu=cpu_model_name(), cpu_bf16_units=cpu_bf16_units())
    elif info["device"] == "cuda" and torch.cuda.is_available():
        info.update(gpu=torch.cuda.get_device_name())
    return info


def format_choice(info: dict) -> str:
    """One log line for :func:`describe`'s record, e.g. ``precision: bf16 autocast (default on this CPU: …)``."""
    what = f"{info['amp_dtype']} autocast" if info["amp"] else "fp32 (no autocast)"
    why = "set by --amp/--no-amp" if info["amp_source"] == "flag" else f"default on this {info['device']}"
    if info["device"] == "cpu":
        why += f": {info['cpu']}, bf16 units: {info['cpu_bf16_units'] or 'none'}"
    elif info.get("gpu"):
        why += f": {info['gpu']}"
    return f"precision: {what} ({why})"


__all__ = ["AMP_DTYPE", "autocast", "cpu_bf16_units", "cpu_capabilities", "cpu_model_name", "default_amp",
           "describe", "format_choice", "resolve_amp"]
