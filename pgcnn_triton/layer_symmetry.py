"""Layers that keep a model from being exactly invariant under rot90 and flips, whatever its elements.

:mod:`pgcnn_triton.symmetries` judges a transform by the model's element grid. A model can still break
the symmetry in one layer, by construction:

* a **learnable final pooling** (``PartialGCNN(learnable_final_pooling=True)``, the CIFAR-10 full
  presets): a linear map over the (G, H, W) positions of the last map weighs every position and element
  separately, so moving them (rot90, flips) changes the logits;
* a **translation-only layer**: the ``last_conv_t2`` conv of ``PartialGCNN`` (the CIFAR-100 E(2) full
  preset), which convolves with one fixed element, or any lifting / group conv over a single element
  in a model whose lifting layer has more;
* a **plain torch conv** (``nn.Conv2d`` / ``nn.Conv3d``) with a spatial kernel: its kernel is not
  constrained, so no symmetry can be proved.

:func:`layer_problems` lists them; :func:`layer_problem` says why one transform is not exact for a
model because of them (:func:`pgcnn_triton.symmetries.symmetry_problem` adds it to the element check).

Learned partial layers (θ ≠ 1, a C_n gate or the E(2) mirror gate closed in evaluation) are another
matter: the architecture is equivariant, the learned parameters keep part of the group.
:func:`partial_layers` names them; the checks warn before measuring (:func:`not_meant_equivariant`).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

__all__ = ["LayerProblem", "layer_problems", "layer_problem", "partial_layers", "not_meant_equivariant"]

_THETA_ATOL = 1e-6


@dataclass(frozen=True)
class LayerProblem:
    """A layer that breaks the pixel-grid symmetries: its ``layer`` name (as in ``named_modules``),
    ``reason``, a sentence starting with where it sits (``"head: ..."`` or ``"layer: ..."``), and
    ``keeps``: the names of the transforms it provably still commutes with (e.g. ``{"flip_w"}``)."""

    layer: str
    reason: str
    keeps: frozenset = frozenset()

    def breaks(self, transform) -> bool:
        """Whether this layer keeps ``transform`` from being exact."""
        return transform.name not in self.keeps


def layer_problems(model) -> list[LayerProblem]:
    """The layers of ``model`` that break rot90 and flip invariance by construction, in module order
    (empty for a plain callable or a model built only from equivariant layers)."""
    if not isinstance(model, nn.Module):
        return []
    return _final_pooling(model) + _translation_only(model) + _plain_convs(model)


def layer_problem(model, transform) -> str | None:
    """Why ``transform`` (any rotation or flip) cannot be exact for ``model`` because of its layers, or
    None."""
    problems = [p for p in layer_problems(model) if p.breaks(transform)]
    return "; ".join(p.reason for p in problems) if problems else None


def _final_pooling(model: nn.Module) -> list[LayerProblem]:
    pool = getattr(model, "final_pool", None)
    if not isinstance(pool, nn.Linear):
        return []
    grid = _lift_elements(model)
    positions = pool.in_features
    shape = f"the {positions} (G, H, W) positions of the last map"
    if grid and positions % grid == 0:
        side = round((positions // grid) ** 0.5)
        if side * side * grid == positions:
            shape = f"the {grid} elements × {side}×{side} positions of the last map"
    return [LayerProblem("final_pool", f"head: learnable final pooling `final_pool`, a Linear over {shape}, is not "
                                       "rotation- or mirror-invariant: it weighs every element and position "
                                       "separately")]


def _translation_only(model: nn.Module) -> list[LayerProblem]:
    from .nn import GroupConv, LiftingConv

    problems = []
    if getattr(model, "last_conv_t2", False) and isinstance(getattr(model, "last_conv", None), nn.Module):
        problems.append(_t2_last_conv(model))  # also on a frozen copy, which has no lifting layer left
    grid = _lift_elements(model)
    if grid is None or grid <= 1:
        return problems
    for name, layer in model.named_modules():
        if isinstance(layer, (LiftingConv, GroupConv)) and name != "last_conv" \
                and layer.sampling.num_elements == 1 and not layer.sampling.partial:
            problems.append(LayerProblem(name, f"layer: `{name}` ({type(layer).__name__}) has one element, "
                                               "translations only: its kernel never rotates"))
    return problems


def _t2_last_conv(model: nn.Module) -> LayerProblem:
    # the fixed element is zeros_like(an element) (models.ckresnet.t2_element): under E(2) the pair
    # (angle 0, mirror 0) makes the kernel constant along x, so the conv still commutes with flip_w
    e2 = getattr(getattr(model, "sampling", None), "group", None) == "E2"
    kept = ("; under E2 its kernel is constant along x, so it still commutes with flip_w (x → −x)"
            if e2 else "")
    return LayerProblem("last_conv", "head: translation-only last conv `last_conv` (the mean over G, then one fixed "
                                     "element: its kernel never rotates) is not rotation-equivariant" + kept,
                        frozenset({"flip_w"}) if e2 else frozenset())


def _plain_convs(model: nn.Module) -> list[LayerProblem]:
    problems = []
    for name, layer in model.named_modules():
        if isinstance(layer, nn.modules.conv._ConvNd) and any(k > 1 for k in layer.kernel_size[-2:]):
            size = "×".join(str(k) for k in layer.kernel_size)
            problems.append(LayerProblem(name, f"layer: `{name}` is a plain {type(layer).__name__} ({size} kernel) "
                                               "whose kernel is not constrained: no rotation or flip symmetry can "
                                               "be proved for it"))
    return problems


def _lift_elements(model: nn.Module) -> int | None:
    from .symmetries import element_grid

    grid = element_grid(model)
    return None if grid is None else grid.num_elements


def partial_layers(model, transform=None) -> list[str]:
    """Layers whose learned parameters keep part of the group, e.g. ``"blocks.1.gconv2 θ = 0.5"``: θ ≠ 1,
    a C_n / D_n gate closed in evaluation (keep probability ≤ 0.5), and, for a ``transform`` with a
    mirror (or None: any), an E(2) mirror gate closed in evaluation."""
    if not isinstance(model, nn.Module):
        return []
    from .models.control import learned_equivariance

    rows = learned_equivariance(model)
    found = [f"{r['layer']} θ = {r['theta']:.3g}" for r in rows
             if r["theta"] is not None and abs(r["theta"] - 1.0) > _THETA_ATOL]
    found += [f"{r['layer']} gates {[round(p, 2) for p in r['gates']]}" for r in rows
              if r.get("gates") and min(r["gates"]) <= 0.5]
    if transform is None or getattr(transform, "mirror", 1) == -1:
        found += [f"{r['layer']} mirror probability {r['mirror_probability']:.2f}" for r in rows
                  if r["mirror_probability"] is not None and r["mirror_probability"] <= 0.5]
    return found


def not_meant_equivariant(model, transform=None) -> str | None:
    """Why ``model`` is not meant to be exactly equivariant under ``transform`` (None: any rot90 / flip):
    its partial layers and the layers of :func:`layer_problems`, named; None if nothing is known."""
    parts = []
    partial = partial_layers(model, transform)
    if partial:
        shown = ", ".join(partial[:4]) + (f", … ({len(partial)} in all)" if len(partial) > 4 else "")
        parts.append(f"partial layers do not sample the full element grid ({shown})")
    parts += [p.reason for p in layer_problems(model) if transform is None or p.breaks(transform)]
    return "; ".join(parts) if parts else None
