"""Unpickling of dataset files that cannot run code: only containers, strings, numbers and NumPy arrays.

``pickle.loads`` calls whatever a file names (``os.system`` in a ``__reduce__`` payload). The CIFAR
python batches are pickles of dicts, lists, strings and uint8 arrays, so :func:`restricted_loads` allows
exactly the globals that the NumPy array reconstruction needs (under their NumPy 1 and NumPy 2 module
names, pickled at any protocol) and refuses every other one before it is called.
"""

from __future__ import annotations

import _codecs
import io
import pickle

import numpy as np

try:  # NumPy 2
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # NumPy 1
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric

_ALLOWED = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    # Python 3 writes bytes at protocol 2 as _codecs.encode(text, "latin1")
    ("_codecs", "encode"): _codecs.encode,
}
for _module in ("numpy.core", "numpy._core"):
    _ALLOWED[(f"{_module}.multiarray", "_reconstruct")] = _multiarray._reconstruct
    _ALLOWED[(f"{_module}.numeric", "_frombuffer")] = _numeric._frombuffer


class ForbiddenGlobalError(pickle.UnpicklingError):
    """The pickle names a callable or class outside the allowed set; nothing of it was called."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name
        super().__init__(f"it asks to call {module}.{name}, which a dataset file never needs "
                         "(refused without running it: the file may be malicious)")


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise ForbiddenGlobalError(module, name) from None


def restricted_loads(blob: bytes, *, encoding: str = "ASCII"):
    """``pickle.loads`` that only builds builtin containers, strings, numbers and NumPy arrays.

    Raises :class:`ForbiddenGlobalError` (a ``pickle.UnpicklingError``) for anything else, before it runs.
    Object-dtype arrays are refused too (their elements would be arbitrary objects).
    """
    value = _RestrictedUnpickler(io.BytesIO(blob), encoding=encoding).load()
    _refuse_object_arrays(value)
    return value


def _refuse_object_arrays(value) -> None:
    if isinstance(value, np.ndarray) and value.dtype.hasobject:
        raise pickle.UnpicklingError("it holds an array of Python objects, not of numbers")
    if isinstance(value, dict):
        for item in value.values():
            _refuse_object_arrays(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _refuse_object_arrays(item)
