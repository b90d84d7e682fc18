"""Argument checks shared by the public constructors: a ``TypeError`` for a wrong type or an unknown keyword
(with the closest valid name), a ``ValueError`` for a value out of range, each naming the argument as the caller wrote it.

NaN and ±inf never pass a number check: a comparison like ``value > 0`` lets ``inf`` through and an
unguarded NaN only shows up later as NaN outputs.
"""

from __future__ import annotations

import math
from numbers import Integral, Real


def number(value, name: str, *, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a finite float within [low, high] (``*_open``: strict bound). Returns it."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low:g}, got {value:g}")
    if high is not None and (value >= high if high_open else value > high):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high:g}, got {value:g}")
    return value


def positive(value, name: str) -> float:
    """A finite number > 0."""
    return number(value, name, low=0.0, low_open=True)


#: The smallest eps a norm accepts: below float32's smallest normal number, ``var + eps`` rounds to
#: ``var`` and a constant channel divides 0 by 0.
EPS_MIN = 1.1754943508222875e-38


def eps(value, name: str = "eps") -> float:
    """A norm's eps: finite, >= :data:`EPS_MIN`."""
    return number(value, name, low=EPS_MIN)


def integer(value, name: str, minimum: int = 1) -> int:
    """An int (not a bool) >= ``minimum``. Returns it."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


def probability(value, name: str) -> float:
    """A dropout-like rate in [0, 1)."""
    return number(value, name, low=0.0, high=1.0, high_open=True)


def unexpected_keywords(names, valid, owner: str) -> None:
    """``TypeError`` naming ``owner`` (the entry point the user called) and the first of ``names`` not in
    ``valid``, with the closest valid name; nothing if all are valid."""
    import difflib

    for name in names:
        if name not in valid:
            close = difflib.get_close_matches(str(name), sorted(valid), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TypeError(f"{owner} got an unexpected keyword argument {name!r}{hint}")


def constructor_arguments(cls) -> tuple:
    """The named keyword arguments of ``cls.__init__`` (not ``self`` nor ``**options``)."""
    import inspect

    return tuple(name for name, p in inspect.signature(cls.__init__).parameters.items()
                 if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL))
