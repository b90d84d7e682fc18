"""Augerino baselines: invariance learned by augmentation (Benton et al. 2020), as the paper compares them.

An Augerino model is the translation-only (T(2)) version of a network (one identity element per layer,
the same widths) behind a :class:`~pgcnn_triton.nn.augment.LearnedAugmentation`: every forward draws one
set of group elements for the whole batch from the partial sampler (θ for SE(2); θ and a mirror logit for
E(2), initialised as a partial layer's, θ = 1 and logit 1), transforms every image by each of them,
runs the network on the G·B copies and averages the G logit sets. The augmentation range is learned through
the rotation of the inputs; there is no width regulariser.

Defaults compute what the original computes, including its two quirks (see
:mod:`pgcnn_triton.nn.augment`): ``resampling="original"`` (grid built with ``align_corners=True``,
sampled with ``align_corners=False``) and ``mirror_gradient="none"`` (a hard flip: the E(2) mirror logit
never learns). ``resampling="consistent"`` and ``mirror_gradient="flag"`` / ``"features"`` are the
corrected variants. The presets (:data:`AUGERINO_CKRESNET_PRESETS`, :data:`AUGERINO_GCNN_PRESETS`) keep
the original's behaviour.

    model = AugerinoCKResNet.from_preset("rotmnist-se2-partial")
    model.learned_equivariance()   # [{"layer": "augment", "group": "SE2", "theta": 1.0, ...}]
"""

from __future__ import annotations

import dataclasses

import torch

from .._checks import constructor_arguments
from ..nn.augment import LearnedAugmentation
from ..sampling import SamplingConfig, make_config
from .base import T2_SAMPLING, GroupModel
from .ckresnet import PartialGCNN
from .control import learned_equivariance
from .gcnn import GCNN

_SAMPLING_FIELDS = {f.name for f in dataclasses.fields(SamplingConfig)}
#: SamplingConfig fields that do not apply to an augmentation (one set per forward, drawn at random)
_IGNORED = {"per_layer", "coordinate"}


class Augerino(GroupModel):
    """Base class of :class:`AugerinoCKResNet` and :class:`AugerinoGCNN` (``NETWORK``: the wrapped model class).

    Args:
        resampling: ``"original"`` (default) or ``"consistent"`` align_corners (see
            :mod:`pgcnn_triton.nn.augment`).
        mirror_gradient: ``"none"`` (default, the original's hard flip), ``"flag"`` or ``"features"``
            (E(2) only: the mirror logit learns through the straight-through gate).
        sampling: the augmentation's :class:`~pgcnn_triton.sampling.SamplingConfig` (``method="random"``),
            or its fields as keyword arguments: ``group`` (``"SE2"`` / ``"E2"``), ``num_elements`` (N, the
            original's ``no_samples``), ``partial`` (learn θ; ``False``: the whole group), ``per_batch_element``,
            ``shape_mode``, ``eval_mode``, ``mc_samples``, ``estimator``, the Gumbel temperatures.
        **network: the arguments of the wrapped network (its widths, kernels, pooling, ...); its
            sampling is always :data:`~pgcnn_triton.models.T2_SAMPLING`.

    The parameters are the T(2) network's plus θ (and the mirror logit) of ``augment.sampler.probs``.
    """

    NETWORK: type[GroupModel] = PartialGCNN

    def __init__(self, *, resampling: str = "original", mirror_gradient: str | None = "none",
                 sampling: SamplingConfig | None = None, **kwargs):
        super().__init__()
        options = {k: kwargs.pop(k) for k in list(kwargs) if k in _SAMPLING_FIELDS}
        for key in _IGNORED:
            options.pop(key, None)
        options.setdefault("method", "random")
        config = make_config(sampling, options)
        self.augment = LearnedAugmentation(config, resampling=resampling,
                                           mirror_gradient="none" if mirror_gradient is None else mirror_gradient)
        self.sampling = self.augment.sampling
        self._eval_mode = self.sampling.eval_mode
        for key in ("last_conv_t2", "learnable_final_pooling"):
            if kwargs.get(key):
                raise ValueError(f"{type(self).__name__}: {key}=True does not apply: the network is translation-only "
                                 "(T(2)) and the logits are averaged over the augmentations")
        self.network = self.NETWORK(**kwargs, **T2_SAMPLING)
        self.in_channels = self.network.in_channels

    @classmethod
    def keyword_arguments(cls) -> tuple:
        # the wrapped network's arguments pass through **network
        return (*constructor_arguments(cls), *cls.NETWORK.keyword_arguments())

    @property
    def lift(self):
        """The network's lifting layer (what :func:`pgcnn_triton.freeze` reads the input channels from)."""
        return self.network.lift

    def spatial_stages(self):
        return self.network.spatial_stages()

    def forward_once(self, x: torch.Tensor) -> torch.Tensor:
        copies, weights = self.augment(x)
        return self.augment.average(self.network.forward_once(copies), weights, x.shape[0])

    def learned_equivariance(self) -> list[dict]:
        """One row, the augmentation's, as a partial layer's: ``layer`` ``"augment"``, ``group``, ``theta``
        (|θ|: the images are rotated within ±π|θ|) and, for E(2), ``mirror_probability`` (sigmoid(2p)).
        θ = 1 (and mirror probability 1) when ``partial=False``. The network's layers are translation-only
        and have no row. A frozen model (:meth:`freeze`) has no sampler and no row, as frozen layers."""
        return [row for row in learned_equivariance(self) if row["layer"] == "augment"]

    def freeze(self, dtype: torch.dtype | None = None, example_input: torch.Tensor | None = None) -> "Augerino":
        """A frozen copy for inference: the network's kernel banks precomputed and the augmentation fixed at
        its deterministic evaluation elements (u = 0.5: n = ceil(N·|θ|) rotations θ·(2π(i + ½)/n − π), and
        for E(2) their mirror images iff the mirror keep probability > 0.5); see :func:`pgcnn_triton.freeze`."""
        return super().freeze(dtype=dtype, example_input=example_input)

    def evaluation_elements(self) -> torch.Tensor:
        """The elements a deterministic evaluation (and the frozen / exported model) uses, float64
        ``[1, G]`` (SE(2) angles) or ``[1, G, 2]`` (E(2) angle, mirror flag)."""
        return self.augment.evaluation_elements()


class AugerinoCKResNet(Augerino):
    """Augerino around the T(2) CKResNet (:class:`~pgcnn_triton.PartialGCNN` with one element per layer).

    Presets: :data:`AUGERINO_CKRESNET_PRESETS` (``AugerinoCKResNet.from_preset("cifar10-se2-partial")``).
    """

    NETWORK = PartialGCNN


class AugerinoGCNN(Augerino):
    """Augerino around the T(2) 9-layer :class:`~pgcnn_triton.GCNN`.

    Presets: :data:`AUGERINO_GCNN_PRESETS` (``AugerinoGCNN.from_preset("rotmnist-se2-partial")``).
    """

    NETWORK = GCNN


__all__ = ["Augerino", "AugerinoCKResNet", "AugerinoGCNN"]
