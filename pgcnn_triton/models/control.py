"""Read-outs and switches that work on any ``nn.Module`` built from the library's layers.

:class:`~pgcnn_triton.models.GroupModel` has the same operations as methods; these functions are
for networks that are plain ``nn.Module`` s (a custom architecture from ``LiftingConv``,
``GroupConv``, ... ):

    from pgcnn_triton import learned_equivariance, set_eval_mode
    set_eval_mode(net, "stochastic")
    learned_equivariance(net)   # one row per LiftingConv / GroupConv, in module order
"""

from __future__ import annotations

import torch
from torch import nn

from ..freeze import FrozenConv
from ..kernels import resolve_padding
from ..nn import GroupConv, LiftingConv, SpatialMaxPool
from ..nn.augment import LearnedAugmentation
from ..portable import DenseGroupConv
from ..portable_convs import KernelNetGroupConv, PackedGroupConv
from ..sampling import EVAL_MODES, ElementSampler, PartialSampler

__all__ = ["learned_equivariance", "set_eval_mode", "set_gumbel_anneal_steps", "samplers", "spatial_stages",
           "is_partial", "is_static"]


def _check_module(module) -> None:
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")


def samplers(module: nn.Module) -> list[ElementSampler]:
    """Every element sampler inside ``module`` (one per lifting / sampling group conv)."""
    _check_module(module)
    return [m for m in module.modules() if isinstance(m, ElementSampler)]


def learned_equivariance(module: nn.Module) -> list[dict]:
    """Per lifting / group conv inside ``module``, in module order, the part of the group it keeps.

    Each row: ``layer`` (the module name), ``group`` (``"SE2"``, ``"E2"``, or ``None`` for a layer
    over one element, i.e. translations only: "no group"), ``theta`` and ``mirror_probability``:

    * partial layers: θ as ``|θ|`` (the arc is ±π|θ|; the parameter's sign only mirrors the arc,
      see README Conventions) and, for E2, the mirror keep probability ``sigmoid(2p)``;
    * full layers: θ = 1 (and mirror probability 1 for E2); C_n / D_n gated layers: ``theta=None``
      and their per-element keep probabilities under ``gates``;
    * layers with no group (N = 1, not partial, e.g. the T(2) baseline): ``theta`` and
      ``mirror_probability`` are None;
    * a learned augmentation (:class:`~pgcnn_triton.nn.augment.LearnedAugmentation`, the input
      transformation of the Augerino models) reads out as a partial layer: θ (the images are rotated
      within ±π|θ|) and the mirror keep probability.

    Frozen layers (:func:`~pgcnn_triton.freeze`) have no samplers and no rows.
    """
    _check_module(module)
    rows = []
    for name, layer in module.named_modules():
        if not isinstance(layer, (LiftingConv, GroupConv, LearnedAugmentation)):
            continue
        if isinstance(layer, LearnedAugmentation) and layer.sampler is None:  # frozen: fixed elements, no row
            continue
        config, sampler = layer.sampling, layer.sampler
        e2 = config.group == "E2"
        if config.num_elements == 1 and not isinstance(sampler, PartialSampler):
            rows.append({"layer": name, "group": None, "theta": None, "mirror_probability": None})
            continue
        row = {"layer": name, "group": config.group, "theta": 1.0, "mirror_probability": 1.0 if e2 else None}
        if isinstance(sampler, PartialSampler):
            theta = sampler.theta
            row["theta"] = None if theta is None else abs(float(theta.detach()))
            if e2:
                row["mirror_probability"] = float(sampler.mirror_probability.detach())
            if theta is None:
                n = sampler.probs.numel() - (1 if e2 else 0)
                row["gates"] = torch.sigmoid(2.0 * sampler.probs[:n].detach()).tolist()
        rows.append(row)
    return rows


def set_eval_mode(module: nn.Module, mode: str) -> nn.Module:
    """Evaluation sampling of every sampler in ``module``: ``"deterministic"``, ``"stochastic"`` or
    ``"mc"`` (which a plain module treats as ``"stochastic"``: averaging K passes is the model's job)."""
    _check_module(module)
    if mode not in EVAL_MODES:
        raise ValueError(f"eval_mode must be one of {EVAL_MODES}, got {mode!r}")
    for s in samplers(module):
        s.eval_mode = mode
    return module


def set_gumbel_anneal_steps(module: nn.Module, steps: int | None) -> nn.Module:
    """Anneal the relaxed-Bernoulli temperature of every sampler over this many training forwards."""
    _check_module(module)
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ValueError(f"steps must be None or an int >= 1, got {steps!r}")
    for s in samplers(module):
        s.anneal_steps = steps
    return module


def is_partial(module: nn.Module) -> bool:
    """Whether any layer of ``module`` learns a subset of its group (θ, mirror logit or gates)."""
    return any(isinstance(s, PartialSampler) for s in samplers(module))


def is_static(module: nn.Module) -> bool:
    """Whether every sampling layer of ``module`` runs in the static shape mode (sync-free)."""
    return all(s.config.shape_mode == "static" for s in samplers(module))


def spatial_stages(module: nn.Module) -> list[tuple[str, int, int]]:
    """The layers that change H and W, in order: ``("conv", k, padding)`` or ``("pool", k, stride)``.

    A :class:`~pgcnn_triton.models.GroupModel` says (:meth:`~GroupModel.spatial_stages`); for other
    modules they are read off the library's layers in registration order (convs with a spatial
    kernel, frozen and portable ones included, and :class:`~pgcnn_triton.nn.SpatialMaxPool`), which is the order
    they run in for a feed-forward network. 1×1 convs do not change the size and are left out.
    """
    _check_module(module)
    own = getattr(module, "spatial_stages", None)
    if callable(own):
        return own()
    return infer_spatial_stages(module)


def infer_spatial_stages(module: nn.Module) -> list[tuple[str, int, int]]:
    """:func:`spatial_stages` read off the layers in registration order (see there)."""
    stages = []
    for layer in module.modules():
        if isinstance(layer, SpatialMaxPool):
            stages.append(("pool", layer.kernel_size, layer.stride))
        elif isinstance(layer, (LiftingConv, GroupConv, FrozenConv, DenseGroupConv, PackedGroupConv,
                                KernelNetGroupConv)):
            k = layer.kernel_size
            if k > 1:
                stages.append(("conv", k, resolve_padding(layer.padding, k)))
    return stages
