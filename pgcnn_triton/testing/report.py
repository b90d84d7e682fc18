"""``check_equivariance``: a table for people of how equivariant a model is, and where it breaks."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import torch

from ..equivariance import TransformError, _seeded, _state_restored, equivariance_error, exact_size_problem, rotation
from ..layer_symmetry import layer_problem, layer_problems, not_meant_equivariant
from ..models.control import learned_equivariance
from ..symmetries import element_grid, pixel_symmetries, symmetry_problem
from .inputs import example_input, input_size_problem
from .tolerances import compute_dtype, default_rtol

__all__ = ["EquivarianceReport", "check_equivariance", "DEFAULT_ANGLES"]

#: the arbitrary angles of the report, in degrees
DEFAULT_ANGLES = (10.0, 30.0, 45.0, 100.0)


@dataclass
class EquivarianceReport:
    """What :func:`check_equivariance` measured. ``transforms``: one dict per pixel-grid symmetry
    (``name``; ``exact``: whether the model can be exactly invariant under it; ``why``: None, or why not,
    ``kind`` saying whose fault: ``"elements"`` (it does not permute the element grid) or ``"layers"``
    (a layer breaks it by construction, e.g. the head); ``error``: the relative error, or None when it
    could not be measured, ``problem`` then saying why; ``tolerance``; ``passed``: None where not
    exact); ``angles``: (degrees, error or None) at arbitrary angles, ``angle_problem`` saying why one
    is None; ``layers``:
    :func:`~pgcnn_triton.learned_equivariance` rows; ``model`` (its class name), ``input_shape``,
    ``group``; ``size_problem``: why the input size cannot be exact, or None; ``not_meant``: why the
    model is not meant to be exactly invariant (partial layers, a head), or None; ``breaking_layers``:
    the names of the layers that break rot90 / flips by construction."""

    model: str
    group: str
    input_shape: tuple
    transforms: list = field(default_factory=list)
    angles: list = field(default_factory=list)
    layers: list = field(default_factory=list)
    size_problem: str | None = None
    not_meant: str | None = None
    angle_problem: str | None = None
    breaking_layers: tuple = ()

    @property
    def passed(self) -> bool:
        """Every exact transform measured and within its tolerance (vacuously true when none is exact:
        see each row's ``why``)."""
        return all(row["passed"] for row in self.transforms if row["exact"])

    def __str__(self) -> str:
        lines = [f"equivariance of {self.model} ({self.group}) on x {list(self.input_shape)}"]
        if self.size_problem:
            lines.append(f"  (not exact at this size: {self.size_problem})")
        lines.append(f"  {'transform':<16}{'error':>10}  {'tolerance':>9}  result")
        for r in self.transforms:
            tol = f"{r['tolerance']:.0e}" if r["exact"] else ""
            lines.append(f"  {r['name']:<16}{_error(r['error']):>10}  {tol:>9}  {_result(r)}")
        reasons = list(dict.fromkeys(r["why"] for r in self.transforms if r.get("kind") == "layers"))
        lines += [f"  not exact by construction: {why}" for why in reasons]
        if self.transforms and not any(r["exact"] for r in self.transforms):
            lines.append("  no transform is exact for this model: nothing above can pass or fail")
        if self.angles:
            lines.append("  arbitrary angles (bilinear, centred disk): "
                         + "  ".join(f"{a:g}°: {_error(e, '.3f')}" for a, e in self.angles))
            if self.angle_problem:
                lines.append(f"    error: {self.angle_problem}")
        if self.layers:
            lines.append("  learned subset per layer:")
            for row in self.layers:
                mark = " (breaks it by construction, above)" if row["layer"] in self.breaking_layers else ""
                lines.append(f"    {row['layer']:<24}{_subset(row)}{mark}")
        return "\n".join(lines)


def _error(value, spec: str = ".2e") -> str:
    return "error" if value is None else format(value, spec)


def _result(row) -> str:
    if row["error"] is None:
        return f"error: {row['problem']}"
    if row["exact"]:
        return "pass" if row["passed"] else "FAIL"
    if row["kind"] == "layers":
        return "not exact: a layer breaks it (below)"
    return "not a symmetry of the elements"


def _subset(row) -> str:
    if row["group"] is None:
        return "no group (translations only)"
    if row["theta"] is None:
        return f"{row['group']} gates " + " ".join(f"{p:.2f}" for p in row["gates"])
    text = f"{row['group']} θ = {row['theta']:.3f} (arc ±{180 * min(row['theta'], 1.0):.0f}°)"
    if row["mirror_probability"] is not None:
        text += f", mirror p = {row['mirror_probability']:.2f}"
    return text


def check_equivariance(model, x: torch.Tensor | None = None, angles=DEFAULT_ANGLES, *, transforms=None,
                       show: bool = True, seed: int = 0) -> EquivarianceReport:
    """Measure ``model`` under every pixel-grid symmetry (or the given ``transforms``) and a few
    arbitrary angles; print and return an :class:`EquivarianceReport`.

    ``x`` defaults to a smooth batch of 2 at the smallest size from 16 up that the model takes and
    that keeps its pooling exact (:func:`~pgcnn_triton.testing.inputs.example_input`). Each row says
    whether the transform can be exact for the model, and if not why: it does not permute the model's
    elements, or a layer breaks it by construction (a learnable final pooling, a translation-only last
    conv: :mod:`pgcnn_triton.layer_symmetry`); only exact rows pass or fail. Arbitrary ``angles`` are
    in degrees. The model is measured as it is (call ``model.eval()`` first for deterministic
    elements); its state is left unchanged. About 2 forwards per row: ~5 s for a preset on 2 CPU cores.

    A model that is not meant to be exactly equivariant (partial layers with θ ≠ 1 or a gate closed,
    such a head) gets a ``UserWarning`` naming the layers before anything is measured. A model that
    raises on ``x`` (or on a transformed ``x``) raises here, with a one-line message naming the model,
    the input shape and the transform; a row that cannot be measured for a reason of the check (e.g.
    output elements that a transform does not permute) says so instead of a number.
    """
    x = example_input(model) if x is None else x
    grid = element_grid(model)
    name = type(model).__name__
    report = EquivarianceReport(name, "elements unknown" if grid is None else grid.describe(), tuple(x.shape))
    report.not_meant = not_meant_equivariant(model)
    if report.not_meant:
        warnings.warn(f"check_equivariance: {name} is not meant to be exactly invariant: {report.not_meant}. "
                      "Errors above rounding level are expected where it breaks.", UserWarning, stacklevel=2)
    dtype = compute_dtype(x, model)
    for t in pixel_symmetries() if transforms is None else list(transforms):
        elements_problem = symmetry_problem(grid, t)
        layers_problem = None if elements_problem else layer_problem(model, t)
        error, problem = _measure(model, x, t, seed)
        exact = elements_problem is None and layers_problem is None
        tol = default_rtol(t, dtype)
        report.transforms.append({
            "name": t.name, "exact": exact, "why": elements_problem or layers_problem,
            "kind": None if exact else ("elements" if elements_problem else "layers"),
            "error": error, "problem": problem, "tolerance": tol,
            "passed": (error is not None and error <= tol) if exact else None})
    for a in angles:
        error, problem = _measure(model, x, rotation(math.radians(a)), seed)
        report.angles.append((float(a), error))
        report.angle_problem = report.angle_problem or problem
    if isinstance(model, torch.nn.Module):
        report.layers = learned_equivariance(model)
        report.breaking_layers = tuple(p.layer for p in layer_problems(model))
    report.size_problem = exact_size_problem(model, x.shape[-2], x.shape[-1])
    if show:
        print(report)
    return report


def _measure(model, x, transform, seed) -> tuple[float | None, str | None]:
    """(error, None), or (None, why) for a row the check cannot measure; a model error raises."""
    with warnings.catch_warnings(), torch.no_grad():  # measuring only: no autograd graph (~1/3 faster)
        warnings.simplefilter("ignore")  # the table says which transforms are not exact, and why
        try:
            error = equivariance_error(model, x, transform, seed=seed)
        except TransformError as err:  # e.g. group features whose elements a flip does not permute
            return None, str(err)
        except Exception as err:
            raise _model_error(model, x, transform, err, seed) from err
    if not math.isfinite(error):
        return None, "the outputs are not finite (NaN or inf)"
    return error, None


def _model_error(model, x, transform, err, seed) -> Exception:
    """A one-line error naming the model, the input it failed on and the cause."""
    try:
        with _state_restored(model), torch.no_grad():
            _seeded(model, x, None, seed)
        where = f"the {transform.name} image of x {list(x.shape)}"
    except Exception:
        where = f"x {list(x.shape)}"
    cause = str(err).strip().splitlines()[0] if str(err).strip() else ""
    text = (f"check_equivariance: {type(model).__name__} raised {type(err).__name__} on {where}"
            + (f": {cause}" if cause else ""))
    size = input_size_problem(model, x.shape[-2], x.shape[-1]) if x.dim() >= 2 else None
    if size:
        text += f" ({type(model).__name__} refuses that size: {size}; example_input(model) picks one it takes)"
    cls = next((c for c in (ValueError, TypeError) if isinstance(err, c)), RuntimeError)
    return cls(text)
