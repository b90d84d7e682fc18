"""Learned input augmentation over a subset of SE(2) / E(2): the transformation layer of Augerino models.

:class:`LearnedAugmentation` owns a sampler like a partial group conv (θ for SE(2); θ and a mirror logit
for E(2)), draws one set of elements per forward and turns a batch ``[B, C, H, W]`` into its ``G·B``
transformed copies (element-major: copy ``g·B + b`` is image b under element g). Each element rotates
the image by its angle φ about the image centre, by bilinear ``grid_sample`` with zero padding, and, for
E(2), mirrors it horizontally when its mirror flag is −1. The model runs its network on the copies and
averages the logits over the elements (:meth:`LearnedAugmentation.average`).

Two behaviours of the original Augerino are kept by default and can be switched off:

* ``resampling="original"``: the sampling grid is built with ``affine_grid(align_corners=True)`` and read
  with ``grid_sample``'s default ``align_corners=False``. The image is then shrunk about its centre by
  (W − 1)/W (and (H − 1)/H) before it is rotated, so even the identity element resamples the image
  (a half-pixel zero border, bilinear blur). ``"consistent"`` uses ``align_corners=False`` for both: the
  identity is exact and every element is a pure rotation about the image centre.
* ``mirror_gradient="none"``: the mirror is a hard flip (``torch.flip`` of the rotated image), so the
  mirror logit gets no gradient from the task loss; its keep probability stays where it was initialised.
  ``"flag"`` folds the flip into the sampling grid (the grid's x axis times the straight-through mirror
  flag, value −1) so the logit learns through the sampling positions of the mirrored copies;
  ``"features"`` multiplies each mirrored copy's logits by the sampler's straight-through gate (value 1).
  Both use the library's relaxed-Bernoulli mirror gate (:class:`~pgcnn_triton.sampling.PartialSampler`)
  and, as the layers, give the logit gradient only on steps where the mirrors were drawn.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..sampling import FullGroupSampler, PartialSampler, SamplingConfig

RESAMPLING = ("original", "consistent")
MIRROR_GRADIENTS = ("none", "flag", "features")


def rotation_matrices(angles: torch.Tensor, mirrors: torch.Tensor | None = None) -> torch.Tensor:
    """``affine_grid`` matrices ``[..., 2, 3]`` of rotations by ``angles`` (``[[cos, −sin, 0], [sin, cos, 0]]``,
    the original's convention), times ``diag(m, 1)`` on the right when ``mirrors`` (m = ±1) is given."""
    cos, sin = torch.cos(angles), torch.sin(angles)
    zero = torch.zeros_like(angles)
    if mirrors is not None:
        first = torch.stack([mirrors * cos, mirrors * sin], -1)
    else:
        first = torch.stack([cos, sin], -1)
    second = torch.stack([-sin, cos], -1)
    return torch.stack([first, second, torch.stack([zero, zero], -1)], -1)


class LearnedAugmentation(nn.Module):
    """Draws group elements with a partial (or full-group) sampler and transforms the input by them.

    Args:
        sampling: a :class:`~pgcnn_triton.sampling.SamplingConfig` (``method="random"``); ``partial=True``
            learns θ (and the E(2) mirror logit), ``partial=False`` draws from the whole group.
        resampling: ``"original"`` or ``"consistent"`` (see the module docstring).
        mirror_gradient: ``"none"``, ``"flag"`` or ``"features"`` (see the module docstring).

    ``forward(x)`` returns ``(copies, weights)``: ``copies`` ``[G·B, C, H, W]`` and ``weights`` ``None``
    (a plain mean over the G elements) or ``[G, S]`` factors of value 1 / 0 (static shape mode's masked
    slots; the straight-through mirror gate). :meth:`average` reduces the network's ``[G·B, K]`` logits.
    """

    def __init__(self, sampling: SamplingConfig, resampling: str = "original", mirror_gradient: str = "none"):
        super().__init__()
        if not isinstance(sampling, SamplingConfig):
            raise TypeError(f"sampling must be a SamplingConfig, got {type(sampling).__name__}")
        if sampling.method != "random":
            raise ValueError(f"an augmentation samples at random (method='random'), got method={sampling.method!r}")
        if resampling not in RESAMPLING:
            raise ValueError(f"resampling must be one of {RESAMPLING}, got {resampling!r}")
        if mirror_gradient not in MIRROR_GRADIENTS:
            raise ValueError(f"mirror_gradient must be one of {MIRROR_GRADIENTS}, got {mirror_gradient!r}")
        if mirror_gradient != "none" and sampling.group != "E2":
            raise ValueError(f"mirror_gradient={mirror_gradient!r} needs group='E2' (SE(2) has no mirrors)")
        # the sampler's own gate output is only needed to route the gradient through the copies' logits
        sampler_gradient = "features" if mirror_gradient == "features" else "flag"
        self.sampling = sampling.replace(mirror_gradient=sampler_gradient)
        self.resampling, self.mirror_gradient = resampling, mirror_gradient
        config = self.sampling
        self.sampler = PartialSampler(config) if config.partial else FullGroupSampler(config)
        # set by freeze_elements(): the deterministic evaluation elements, fixed (no sampler, no host reads)
        self.register_buffer("frozen_elements", None)

    @property
    def grid_align(self) -> bool:
        return self.resampling == "original"

    def elements(self, batch_size: int, device) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """``(elements, mask, gate)`` of this forward (see :mod:`pgcnn_triton.sampling`); the frozen ones if set."""
        if self.frozen_elements is not None:
            return self.frozen_elements, None, None
        return self.sampler(batch_size, device)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        elements, mask, gate = self.elements(x.shape[0], x.device)
        e2 = elements.dim() == 3
        angles = elements[..., 0] if e2 else elements                 # [S, G]
        mirrors = elements[..., 1] if e2 else None
        copies = self.transform(x, angles, mirrors)
        weights = None
        if mask is not None:
            weights = mask.to(x.dtype)
        if gate is not None:
            weights = gate.to(x.dtype) if weights is None else weights * gate.to(x.dtype)
        return copies, (None if weights is None else weights.t())

    def transform(self, x: torch.Tensor, angles: torch.Tensor, mirrors: torch.Tensor | None = None) -> torch.Tensor:
        """The copies ``[G·B, C, H, W]`` of ``x`` under the elements ``(angles, mirrors)``, each ``[S, G]``
        with S = 1 (one set for the batch) or B (one per image)."""
        b = x.shape[0]
        g = angles.shape[1]
        angles = angles.t().expand(g, b).reshape(g * b)
        if mirrors is not None:
            mirrors = mirrors.t().expand(g, b).reshape(g * b)
        in_grid = mirrors if self.mirror_gradient == "flag" else None
        matrices = rotation_matrices(angles, in_grid).to(x.dtype)
        copies = x.unsqueeze(0).expand(g, *x.shape).reshape(g * b, *x.shape[1:])
        grid = F.affine_grid(matrices, list(copies.shape), align_corners=self.grid_align)
        out = F.grid_sample(copies, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if mirrors is not None and self.mirror_gradient != "flag":
            # the original's hard decision: flip the rotated copy when its flag is −1
            flipped = (mirrors.detach() < 0).view(g * b, 1, 1, 1)
            out = torch.where(flipped, out.flip(-1), out)
        return out

    @staticmethod
    def average(logits: torch.Tensor, weights: torch.Tensor | None, batch_size: int) -> torch.Tensor:
        """The mean of ``[G·B, K]`` logits over the G elements (weighted by ``weights`` ``[G, S]``, the mean
        over the valid ones)."""
        per_element = logits.reshape(-1, batch_size, logits.shape[-1])   # [G, B, K]
        if weights is None:
            return per_element.mean(0)
        w = weights[..., None].to(per_element.dtype)                     # [G, S, 1]
        return (per_element * w).sum(0) / (w.detach() != 0).to(w.dtype).sum(0)

    def evaluation_elements(self) -> torch.Tensor:
        """The elements of a deterministic evaluation (offset u = 0.5, mirrors kept iff their keep
        probability > 0.5), valid ones only: float64 ``[1, G]`` (SE(2)) or ``[1, G, 2]`` (E(2))."""
        if self.frozen_elements is not None:
            return self.frozen_elements.clone()
        sampler = self.sampler
        was_training, mode = sampler.training, sampler.eval_mode
        sampler.eval()
        sampler.eval_mode = "deterministic"
        try:
            with torch.no_grad():
                elements, mask, _ = sampler(1, sampler.step.device)
        finally:
            sampler.train(was_training)
            sampler.eval_mode = mode
        if mask is not None:
            elements = elements[:, mask[0].nonzero().flatten()]
        return elements.detach().clone()

    def freeze_elements(self) -> "LearnedAugmentation":
        """Fix :meth:`evaluation_elements` as a buffer and drop the sampler: afterwards every forward uses
        these elements, with no sampling and no host read of θ (what :func:`pgcnn_triton.freeze` and the
        exporters need)."""
        if self.frozen_elements is None:
            self.frozen_elements = self.evaluation_elements()
            self.sampler = None
        return self

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing, unexpected, errors):
        # a frozen augmentation holds as many elements as θ kept: a skeleton takes the saved count
        key = prefix + "frozen_elements"
        if key in state_dict and self.frozen_elements is not None and state_dict[key].shape != self.frozen_elements.shape:
            self.frozen_elements = torch.empty_like(state_dict[key], device=self.frozen_elements.device)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing, unexpected, errors)

    def extra_repr(self) -> str:
        fixed = "" if self.frozen_elements is None else f", frozen elements={self.frozen_elements.shape[1]}"
        return f"resampling={self.resampling!r}, mirror_gradient={self.mirror_gradient!r}{fixed}"


__all__ = ["MIRROR_GRADIENTS", "RESAMPLING", "LearnedAugmentation", "rotation_matrices"]
