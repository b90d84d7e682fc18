"""``check_equivariance``: a table for people of how equivariant a model is, and where it breaks."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..equivariance import equivariance_error, exact_size_problem, rotation
from ..models.control import learned_equivariance
from ..symmetries import element_grid, pixel_symmetries, symmetry_problem
from .inputs import example_input
from .tolerances import compute_dtype, default_rtol

__all__ = ["EquivarianceReport", "check_equivariance", "DEFAULT_ANGLES"]

#: the arbitrary angles of the report, in degrees
DEFAULT_ANGLES = (10.0, 30.0, 45.0, 100.0)


@dataclass
class EquivarianceReport:
    """What :func:`check_equivariance` measured. ``transforms``: one dict per pixel-grid symmetry
    (``name``, ``exact``: whether it permutes the model's elements, ``error``, ``tolerance``,
    ``passed``: None where not exact); ``angles``: (degrees, error) at arbitrary angles; ``layers``:
    :func:`~pgcnn_triton.learned_equivariance` rows; ``model`` (its class name), ``input_shape``,
    ``group``; ``size_problem``: why the input size cannot be exact, or None."""

    model: str
    group: str
    input_shape: tuple
    transforms: list = field(default_factory=list)
    angles: list = field(default_factory=list)
    layers: list = field(default_factory=list)
    size_problem: str | None = None

    @property
    def passed(self) -> bool:
        """Every exact transform within its tolerance."""
        return all(row["passed"] for row in self.transforms if row["exact"])

    def __str__(self) -> str:
        lines = [f"equivariance of {self.model} ({self.group}) on x {list(self.input_shape)}"]
        if self.size_problem:
            lines.append(f"  (not exact at this size: {self.size_problem})")
        lines.append(f"  {'transform':<16}{'error':>10}  {'tolerance':>9}  result")
        for r in self.transforms:
            result = ("pass" if r["passed"] else "FAIL") if r["exact"] else "not a symmetry of the elements"
            tol = f"{r['tolerance']:.0e}" if r["exact"] else ""
            lines.append(f"  {r['name']:<16}{r['error']:>10.2e}  {tol:>9}  {result}")
        if self.angles:
            lines.append("  arbitrary angles (bilinear, centred disk): "
                         + "  ".join(f"{a:g}°: {e:.3f}" for a, e in self.angles))
        if self.layers:
            lines.append("  learned subset per layer:")
            for row in self.layers:
                lines.append(f"    {row['layer']:<24}{_subset(row)}")
        return "\n".join(lines)


def _subset(row) -> str:
    if row["group"] is None:
        return "no group (translations only)"
    if row["theta"] is None:
        return f"{row['group']} gates " + " ".join(f"{p:.2f}" for p in row["gates"])
    text = f"{row['group']} θ = {row['theta']:.3f} (arc ±{180 * min(row['theta'], 1.0):.0f}°)"
    if row["mirror_probability"] is not None:
        text += f", mirror p = {row['mirror_probability']:.2f}"
    return text


def check_equivariance(model, x: torch.Tensor | None = None, angles=DEFAULT_ANGLES, *, show: bool = True,
                       seed: int = 0) -> EquivarianceReport:
    """Measure ``model`` under every pixel-grid symmetry and a few arbitrary angles; print and return
    an :class:`EquivarianceReport`.

    ``x`` defaults to a smooth batch of 2 at the smallest size that keeps the pooling exact
    (:func:`~pgcnn_triton.testing.inputs.example_input`). Transforms that do not permute the model's
    elements are measured and shown, without pass / fail. Arbitrary ``angles`` are in degrees. The
    model is measured as it is (call ``model.eval()`` first for deterministic elements); its state is
    left unchanged. About 2 forwards per row: ~5 s for a preset on 2 CPU cores.
    """
    x = example_input(model) if x is None else x
    grid = element_grid(model)
    report = EquivarianceReport(type(model).__name__, "elements unknown" if grid is None else grid.describe(),
                                tuple(x.shape))
    dtype = compute_dtype(x, model)
    for t in pixel_symmetries():
        exact = symmetry_problem(model, t) is None
        error = _quiet_error(model, x, t, seed)
        tol = default_rtol(t, dtype)
        report.transforms.append({"name": t.name, "exact": exact, "error": error, "tolerance": tol,
                                  "passed": error <= tol if exact else None})
    report.angles = [(float(a), _quiet_error(model, x, rotation(math.radians(a)), seed)) for a in angles]
    if isinstance(model, torch.nn.Module):
        report.layers = learned_equivariance(model)
    report.size_problem = exact_size_problem(model, x.shape[-2], x.shape[-1])
    if show:
        print(report)
    return report


def _quiet_error(model, x, transform, seed) -> float:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the table says which transforms are not symmetries
        try:
            return equivariance_error(model, x, transform, seed=seed)
        except ValueError:  # e.g. SE2 group features under a flip: no permutation exists
            return float("nan")
