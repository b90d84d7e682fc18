"""``assert_equivariant`` / ``assert_invariant``: equivariance checks in the spirit of
``torch.testing.assert_close``, with default tolerances (:mod:`.tolerances`) and failure messages that
say where the deviation is and what probably caused it (:mod:`.diagnosis`)."""

from __future__ import annotations

import math
import warnings

import torch

from ..equivariance import (
    Transform,
    _state_restored,
    transformed_outputs,
    warn_if_not_a_symmetry,
    warn_if_partial,
    warn_if_size_breaks_exactness,
)
from ..symmetries import is_identity
from .diagnosis import first_breaking_layer, likely_causes, locate
from .tolerances import compute_dtype, default_rtol

__all__ = ["assert_equivariant", "assert_invariant"]


def assert_equivariant(module, x: torch.Tensor, transform: Transform, elements: torch.Tensor | None = None, *,
                       rtol: float | None = None, atol: float | None = None, msg: str | None = None,
                       seed: int = 0) -> float:
    """Assert ``module(T x) = T′ module(x)``; return the relative error.

    ``module``, ``x``, ``elements`` and ``seed`` as in :func:`~pgcnn_triton.equivariance.equivariance_error`:
    an image ``x`` ``[B, C, H, W]``, or group features ``[B, C, G, H, W]`` with their ``elements``; a module
    returning ``(features, elements)`` is compared on its group features (T′ moves space and permutes the
    group axis), one returning a tensor (logits) unchanged. The module's buffers and the RNG are restored.

    Passes when ``‖f(T x) − T′f(x)‖ ≤ atol·√numel + rtol·‖T′f(x)‖``. Defaults: ``atol = 0`` and ``rtol``
    by the dtype the convs run in (autocast, else input / parameters) and the kind of transform: 1e-4
    for exact transforms in float32 (measured ≤ 2.8e-6 on the presets), 1e-10 float64, 5e-2 bfloat16,
    and :data:`~pgcnn_triton.testing.tolerances.CONTINUOUS_RTOL` for arbitrary angles (a statistical
    bound on smooth inputs); the measurements are in :mod:`pgcnn_triton.testing.tolerances`.

    Never vacuous: an identity transform, or outputs that are all zero, raise a ``ValueError``; an ``x``
    that the transform leaves unchanged warns. On failure the ``AssertionError`` gives the error and the
    tolerance, where the deviation is largest (sample and class, or channel / group slot / pixel), the
    first layer whose output breaks equivariance, and the likely causes it recognises: an input size the
    pooling cannot split evenly, a transform that does not permute the model's elements, training mode
    with stochastic elements, partial layers (θ ≠ 1), autocast, rough inputs at arbitrary angles.
    ``msg`` is prepended to it.
    """
    return _check(module, x, transform, elements, rtol, atol, msg, seed, invariant=False)


def assert_invariant(model, x: torch.Tensor, transform: Transform, *, rtol: float | None = None,
                     atol: float | None = None, msg: str | None = None, seed: int = 0) -> float:
    """Assert ``model(T x) = model(x)`` for a model returning a tensor (e.g. logits ``[B, K]``); return the
    relative error. Tolerances, vacuity checks and failure messages as :func:`assert_equivariant`."""
    return _check(model, x, transform, None, rtol, atol, msg, seed, invariant=True)


def _check(module, x, transform, elements, rtol, atol, msg, seed, invariant):
    if not isinstance(transform, Transform):
        raise TypeError(f"transform must be a Transform (rot90(), flip_w(), rotation(a), ...), got "
                        f"{type(transform).__name__}")
    if is_identity(transform):
        raise ValueError(f"transform {transform.name} maps every input to itself: the check would pass for any "
                         "module; use rot90(1), flip_w(), rotation(0.3), ...")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    _warn_if_unchanged(x, transform, elements)
    if not transform.disk:
        warn_if_size_breaks_exactness(module, x.shape[-2], x.shape[-1], transform)
        warn_if_not_a_symmetry(module, transform, elements)
    warn_if_partial(module, transform)
    with _state_restored(module):
        actual, expected = transformed_outputs(module, x, transform, elements, seed)
        if invariant and (isinstance(actual, tuple) or actual.dim() not in (1, 2)):
            raise TypeError("assert_invariant compares outputs such as logits [B, K]; this module returns "
                            "group features: use assert_equivariant")
        dtype = compute_dtype(x, module)
        rtol = default_rtol(transform, dtype) if rtol is None else float(rtol)
        atol = 0.0 if atol is None else float(atol)
        norm = float(expected.detach().double().norm())
        if norm == 0.0:
            raise ValueError(f"the outputs of {_name(module)} are all zero: any transform would pass; check the "
                             "input and the weights (an untrained model with zero weights?)")
        dev = float((actual - expected).detach().double().norm())
        error = dev / norm
        allowed = atol * math.sqrt(expected.numel()) + rtol * norm
        if dev <= allowed:
            return error
        tol = allowed / norm
        where = locate(actual, expected, _output_elements(module, x, elements, seed, actual))
        layer = first_breaking_layer(module, _restricted(x, transform), _transformed(x, transform, elements),
                                     transform, elements, seed, tol) if not transform.disk else None
        causes = likely_causes(module, x, transform, elements)
    kind = "invariance" if invariant else "equivariance"
    lines = [f"{transform.name} {kind} of {_name(module)} failed: relative error {error:.3e} > tolerance "
             f"{tol:.1e} (rtol={rtol:g}, atol={atol:g}, {str(dtype).replace('torch.', '')}, "
             f"{'arbitrary-angle' if transform.disk else 'exact'} transform)",
             f"  largest deviation: {where}"]
    if layer:
        lines.append(f"  first layer that breaks it: {layer}")
    if causes:
        lines += ["  likely cause" + ("s" if len(causes) > 1 else "") + ":"] + [f"    - {c}" for c in causes]
    elif layer:
        lines.append("  likely cause: that layer is not equivariant (e.g. its kernel ignores the rotation of the "
                     "elements, or it pools or crops asymmetrically)")
    else:
        lines.append("  likely cause: none recognised (a custom layer that is not equivariant?)")
    text = "\n".join(lines)
    raise AssertionError(f"{msg}\n{text}" if msg else text)


def _name(module) -> str:
    return type(module).__name__ if isinstance(module, torch.nn.Module) else getattr(module, "__name__", "module")


def _restricted(x, transform):
    return transform.restrict(x)


def _transformed(x, transform, elements):
    x0 = transform.restrict(x)
    return transform.image(x0) if elements is None else transform.features(x0, elements)


def _output_elements(module, x, elements, seed, actual):
    """The output elements (for naming a group slot), from one more seeded forward; None for logits."""
    if actual.dim() != 5:
        return None
    from ..equivariance import _seeded

    out = _seeded(module, x, elements, seed)
    return out[1] if isinstance(out, tuple) else elements


def _warn_if_unchanged(x, transform, elements):
    try:
        moved = _transformed(x, transform, elements)
    except ValueError:
        return  # elements not closed under T: transformed_outputs raises the clearer error
    if moved.shape == x.shape and torch.equal(moved, transform.restrict(x)):
        warnings.warn(f"x is unchanged by {transform.name} (a symmetric or constant input): the check cannot "
                      "fail; use a random input (random_images, inputs_for)", UserWarning, stacklevel=4)
