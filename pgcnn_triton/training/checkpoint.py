"""Checkpoints that are never half-written and carry a checksum, and the RNG states needed to resume a run exactly."""

from __future__ import annotations

import hashlib
import io
import pickle
import random
import warnings
from pathlib import Path

import numpy as np
import torch

from .atomic import write_atomic
from .errors import CheckpointCorruptError, NonFiniteCheckpointError

_EOCD, _EOCD_SIZE = b"PK\x05\x06", 22  # zip end-of-central-directory signature and record size
_MARK, _HEX = b"pgcnn_triton-sha256:", 64  # the zip comment: this mark, then the hex digest of the rest
_TRAILER_SIZE = len(_MARK) + _HEX


def save_atomic(obj, path: str | Path) -> Path:
    """``torch.save`` ``obj`` with a sha256 checksum, written atomically (:func:`.atomic.write_atomic`).

    The checksum sits in the zip archive's comment (the last bytes of the file), so the file is still an
    ordinary ``torch.load``-able checkpoint; :func:`load_checkpoint` verifies it. If anything fails (a
    crash, a full disk), ``path`` still holds its previous content and no temporary file is left.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return write_atomic(path, _with_checksum(buffer.getvalue()))


def _with_checksum(blob: bytes) -> bytes:
    # a zip ends with its end-of-central-directory record, whose last 2 bytes are the comment length
    if len(blob) < _EOCD_SIZE or blob[-_EOCD_SIZE:-_EOCD_SIZE + 4] != _EOCD or blob[-2:] != b"\0\0":
        raise RuntimeError("torch.save wrote no plain zip end record: cannot add the checksum")
    body = blob[:-2]
    return body + _TRAILER_SIZE.to_bytes(2, "little") + _MARK + hashlib.sha256(body).hexdigest().encode()


def _verify(blob: bytes, path: Path) -> bool:
    """``True`` if ``blob`` carries a checksum and it matches; ``False`` if it has none (older files)."""
    if len(blob) < _EOCD_SIZE + _TRAILER_SIZE or blob[-_TRAILER_SIZE:-_HEX] != _MARK:
        return False
    body, stored = blob[:-_TRAILER_SIZE - 2], blob[-_HEX:]
    length = blob[-_TRAILER_SIZE - 2:-_TRAILER_SIZE]
    if (length != _TRAILER_SIZE.to_bytes(2, "little") or body[-_EOCD_SIZE + 2:-_EOCD_SIZE + 6] != _EOCD
            or hashlib.sha256(body).hexdigest().encode() != stored):
        raise CheckpointCorruptError(path, "sha256 checksum mismatch: the file changed after it was written",
                                     _alternative(path))
    return True


def _alternative(path: Path) -> str:
    """What the user can use instead of a corrupt ``path`` (its sibling ``best.pt`` / ``last.pt``)."""
    best, last = path.with_name("best.pt"), path.with_name("last.pt")
    if path.name == "last.pt" and best.is_file():
        return (f"The best weights are in {best} (pgcnn eval {best}); to train again, restore last.pt from a "
                "copy or start over with --overwrite.")
    if path.name == "best.pt" and last.is_file():
        return f"{last} holds the weights of the latest epoch (pgcnn eval {last})."
    return "Restore it from a copy, or train again."


def _problem(error: Exception, blob: bytes) -> str:
    if not blob.startswith(b"PK\x03\x04"):
        return "not a torch checkpoint: no zip archive"
    if isinstance(error, pickle.UnpicklingError) and "weights_only" in str(error).lower().replace(" ", "_"):
        return "torch.load(weights_only=True) refused it: it holds objects other than tensors and plain values"
    return f"truncated or damaged zip archive: {type(error).__name__}"


def first_non_finite(obj, prefix: str = "") -> tuple[str, float] | None:
    """``(name, value)`` of the first floating tensor inside ``obj`` (nested dicts, lists, tuples) holding
    NaN or ±inf, e.g. ``("model.blocks.0.conv.bias", nan)``; ``None`` if every one is finite."""
    if isinstance(obj, torch.Tensor):
        if (obj.is_floating_point() or obj.is_complex()) and obj.device.type != "meta":
            bad = ~torch.isfinite(obj)
            if bool(bad.any()):
                return prefix or "tensor", float(obj[bad].flatten()[0].real)
        return None
    if isinstance(obj, dict):
        items = ((f"{prefix}.{k}" if prefix else str(k), v) for k, v in obj.items())
    elif isinstance(obj, (list, tuple)):
        items = ((f"{prefix}[{i}]", v) for i, v in enumerate(obj))
    else:
        return None
    for name, value in items:
        found = first_non_finite(value, name)
        if found is not None:
            return found
    return None


def load_checkpoint(path: str | Path, map_location="cpu", *, allow_non_finite: bool = False) -> dict:
    """Load a checkpoint written by :func:`save_atomic` (plain tensors and Python values only).

    Its sha256 checksum is verified first. Files without one (written before pgcnn_triton stored
    checksums, or by plain ``torch.save``) load with a warning. Raises :class:`FileNotFoundError` if
    ``path`` is missing and :class:`~.errors.CheckpointCorruptError` (a ``ValueError``) if the checksum
    does not match, or the file is empty, truncated, not a checkpoint, or refused by ``weights_only=True``.

    Every floating tensor in it (weights, buffers, optimizer state) must be finite: one holding NaN or
    ±inf raises :class:`~.errors.NonFiniteCheckpointError` naming the file and the first such tensor, so
    such weights are never evaluated, exported or trained on. ``allow_non_finite=True`` loads it anyway
    (to inspect it).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    blob = path.read_bytes()
    if not blob:
        raise CheckpointCorruptError(path, "the file is empty (0 bytes)", _alternative(path))
    checked = _verify(blob, path)
    try:
        state = torch.load(io.BytesIO(blob), map_location=map_location, weights_only=True)
    except Exception as error:  # any unreadable content is a corrupt (or foreign) file
        raise CheckpointCorruptError(path, _problem(error, blob), _alternative(path)) from error
    if not allow_non_finite:
        found = first_non_finite(state)
        if found is not None:
            raise NonFiniteCheckpointError(path, *found, _alternative(path))
    if not checked:
        warnings.warn(f"checkpoint {path} has no checksum (older pgcnn_triton or plain torch.save): "
                      "loaded without verifying it", UserWarning, stacklevel=2)
    return state


def rng_state() -> dict:
    """The Python, NumPy, torch CPU and CUDA generator states, as checkpoint-safe values."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore the states captured by :func:`rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
