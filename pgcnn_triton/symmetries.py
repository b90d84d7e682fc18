"""Which transforms are exact symmetries of a model's group elements.

A model's lifting layer samples its elements on a grid: N rotations 2π(i + u)/N for SE(2), or
R = N/2 rotations × 2 mirrors for E(2) (offset u = 0.5 in deterministic evaluation, random in training,
:mod:`pgcnn_triton.sampling`). A transform with group element t = (angle a, mirror m) permutes every
such grid, whatever u, exactly when a is a multiple of 2π/R and, if m = −1, the group has mirrors.
Only then can the layers be exactly equivariant under it: rot90 needs R a multiple of 4 (SE(2) N = 4,
8, …; E(2) N = 8, 16, …), flips need E(2), rot90(2) an even R. A T(2) model (N = 1) has no rotation.

:func:`symmetry_problem` says why a transform is not exact for a module (its elements, then its layers:
:mod:`pgcnn_triton.layer_symmetry`), :func:`exact_transforms_of` lists the exact rot90 / flip
compositions (the dihedral group D4 of the pixel grid, less the identity) and
:func:`excluded_transforms_of` the others with the reason.
They serve :func:`pgcnn_triton.equivariance.equivariance_error`'s warning,
:mod:`pgcnn_triton.testing` (the assertions' likely causes) and its hypothesis strategies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from .groups import TWO_PI, get_group
from .sampling import SamplingConfig

__all__ = ["ElementGrid", "element_grid", "symmetry_problem", "exact_transforms_of", "excluded_transforms_of",
           "pixel_symmetries", "is_identity"]

_ANGLE_ATOL = 1e-9


@dataclass(frozen=True)
class ElementGrid:
    """The element grid of a model: its group (``"SE2"`` / ``"E2"``) and N (E2: N/2 rotations × 2)."""

    group: str
    num_elements: int

    @property
    def rotations(self) -> int:
        """R, the number of rotations of the grid (N for SE2, N/2 for E2)."""
        return self.num_elements if self.group == "SE2" else max(self.num_elements // 2, 1)

    def describe(self) -> str:
        if self.num_elements == 1 and self.group == "SE2":
            return "SE2 with N = 1 (translations only, no rotation)"
        step = 360 / self.rotations
        mirrors = ", each also mirrored" if self.group == "E2" else ""
        return (f"{self.group} with N = {self.num_elements} ({self.rotations} rotations by multiples of "
                f"{step:g}°{mirrors})")


def element_grid(source) -> ElementGrid | None:
    """The :class:`ElementGrid` of a module (read from its first ``LiftingConv``), a
    :class:`~pgcnn_triton.sampling.SamplingConfig`, or an :class:`ElementGrid`; None for a module
    without a lifting layer (a layer on group features, a frozen model: its elements decide)."""
    from .nn import LiftingConv

    if isinstance(source, ElementGrid):
        return source
    if isinstance(source, SamplingConfig):
        return ElementGrid(source.group, source.num_elements)
    if isinstance(source, nn.Module):
        lift = next((m for m in source.modules() if isinstance(m, LiftingConv)), None)
        return None if lift is None else ElementGrid(lift.sampling.group, lift.sampling.num_elements)
    return None


def _grid_of(model_or_group, num_elements) -> ElementGrid:
    if isinstance(model_or_group, (str,)) or hasattr(model_or_group, "element_rank"):
        if num_elements is None:
            raise ValueError("a group needs num_elements=N (the number of elements of a full layer)")
        return ElementGrid(get_group(model_or_group).name, int(num_elements))
    grid = element_grid(model_or_group)
    if grid is None:
        raise ValueError(f"cannot tell the group elements of {type(model_or_group).__name__}: pass a model with a "
                         "LiftingConv, a SamplingConfig, or a group name with num_elements=N")
    return grid


def is_identity(transform) -> bool:
    """Whether ``transform`` maps every input to itself (angle 0 mod 2π, no mirror)."""
    return transform.mirror == 1 and _is_multiple(transform.angle, TWO_PI)


def _is_multiple(angle: float, step: float) -> bool:
    r = math.remainder(angle, step)
    return abs(r) <= _ANGLE_ATOL * max(1.0, step)


def symmetry_problem(source, transform) -> str | None:
    """Why ``transform`` is not an exact symmetry of ``source`` (a module, a ``SamplingConfig`` or an
    :class:`ElementGrid`), or None if it is (or nothing is known against it).

    First its group elements: arbitrary-angle rotations (:func:`~pgcnn_triton.equivariance.rotation`)
    are judged by their angle too: ``rotation(math.pi / 2)`` is exact inside the disk for a C4 grid,
    ``rotation(0.3)`` is not. Then, for a module, its layers
    (:func:`pgcnn_triton.layer_symmetry.layer_problem`): a learnable final pooling, a translation-only
    or plain torch conv, e.g. ``"head: learnable final pooling `final_pool` (...) is not rotation- or
    mirror-invariant ..."``."""
    problem = _element_problem(source, transform)
    if problem is None and isinstance(source, nn.Module):
        from .layer_symmetry import layer_problem

        problem = layer_problem(source, transform)
    return problem


def _element_problem(source, transform) -> str | None:
    grid = element_grid(source)
    if grid is None:
        return None
    if transform.mirror == -1 and grid.group == "SE2":
        return (f"{transform.name} contains a mirror, but the model's elements are {grid.describe()}: "
                "no mirror is a symmetry of them (use group='E2' for mirror symmetry)")
    step = TWO_PI / grid.rotations
    if _is_multiple(transform.angle, step):
        return None
    degrees = math.degrees(transform.angle)
    if grid.rotations == 1:
        return f"{transform.name} rotates by {degrees:g}°, but the model's elements are {grid.describe()}"
    need = _needed_rotations(transform.angle)
    fix = (f"; a grid with a multiple of {need} rotations ({_n_for(grid.group, need)}) makes it exact"
           if need else "")
    return (f"{transform.name} rotates by {degrees:.4g}°, which is not a multiple of {360 / grid.rotations:g}°: "
            f"the model's elements are {grid.describe()}{fix}")


def _needed_rotations(angle: float) -> int | None:
    for r in (2, 4, 8, 16, 32):
        if _is_multiple(angle, TWO_PI / r):
            return r
    return None


def _n_for(group: str, rotations: int) -> str:
    if group == "SE2":
        return f"SE2 N = {rotations}, {2 * rotations}, …"
    return f"E2 N = {2 * rotations}, {4 * rotations}, …"


def pixel_symmetries() -> list:
    """The 7 non-identity transforms of the pixel grid (D4): rot90(1..3), flip_w, flip_h and the two
    diagonal flips (:func:`~pgcnn_triton.equivariance.transpose`, :func:`~pgcnn_triton.equivariance.antitranspose`)."""
    from .equivariance import antitranspose, flip_h, flip_w, rot90, transpose

    return [rot90(1), rot90(2), rot90(3), flip_w(), flip_h(), transpose(), antitranspose()]


def exact_transforms_of(model_or_group, num_elements: int | None = None) -> list:
    """The rot90 / flip compositions under which a model (or ``group`` with ``num_elements=N``) can be
    exactly equivariant: those that permute its element grid and, for a model, that no layer breaks
    (its head included, :mod:`pgcnn_triton.layer_symmetry`).

    SE2 N = 8: rot90(1), rot90(2), rot90(3); E2 N = 4: rot90(2), flip_w, flip_h; E2 N = 8: all 7.
    Empty for a T(2) model (N = 1) and for a model whose head is not invariant (the learnable final
    pooling of ``cifar10-se2-full``); :func:`excluded_transforms_of` says why each one is left out."""
    return [t for t, why in _judged(model_or_group, num_elements) if why is None]


def excluded_transforms_of(model_or_group, num_elements: int | None = None) -> list[tuple]:
    """The rot90 / flip compositions that :func:`exact_transforms_of` leaves out, each with the reason:
    ``[(transform, reason), ...]``, e.g. ``(rot90(1), "head: learnable final pooling `final_pool` ...")``."""
    return [(t, why) for t, why in _judged(model_or_group, num_elements) if why is not None]


def _judged(model_or_group, num_elements):
    grid = _grid_of(model_or_group, num_elements)
    layers = model_or_group if isinstance(model_or_group, nn.Module) else None
    judged = []
    for t in pixel_symmetries():
        why = symmetry_problem(grid, t)
        if why is None and layers is not None:
            from .layer_symmetry import layer_problem

            why = layer_problem(layers, t)
        judged.append((t, why))
    return judged
