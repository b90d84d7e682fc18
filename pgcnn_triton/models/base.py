"""What every pgcnn_triton model shares: sampling settings, evaluation modes, learned-subset read-out."""

from __future__ import annotations

import torch
from torch import nn

from ..sampling import EVAL_MODES, ElementSampler, PartialSampler, SamplingConfig

#: The T(2) baseline: one element (the identity), i.e. a CNN with continuous kernels.
T2_SAMPLING = dict(group="SE2", num_elements=1, method="deterministic", partial=False)


class GroupModel(nn.Module):
    """Base class of the models. Subclasses implement ``forward_once(x) -> logits``."""

    sampling: SamplingConfig
    PRESETS: dict = {}

    @classmethod
    def from_preset(cls, name: str, **overrides):
        """Build the model of a named configuration (``cls.PRESETS``); keyword arguments override it."""
        if not isinstance(name, str):
            raise TypeError(f"preset name must be a str, got {type(name).__name__}")
        if name not in cls.PRESETS:
            raise ValueError(f"unknown preset {name!r} for {cls.__name__}: expected one of {sorted(cls.PRESETS)}")
        kwargs = dict(cls.PRESETS[name])
        kwargs.update(overrides)
        return cls(**kwargs)

    @classmethod
    def t2_baseline(cls, **kwargs):
        """The same architecture over T(2) only (N = 1): a CNN with continuous kernels."""
        return cls(**{**kwargs, **T2_SAMPLING})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training and self.eval_mode == "mc":
            return torch.stack([self.forward_once(x) for _ in range(self.sampling.mc_samples)]).mean(0)
        return self.forward_once(x)

    def forward_once(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def freeze(self, dtype: torch.dtype | None = None, example_input: torch.Tensor | None = None) -> "GroupModel":
        """A frozen copy for inference: every kernel bank precomputed, kernel nets dropped
        (see :func:`pgcnn_triton.freeze`). This model is left unchanged."""
        from ..freeze import freeze

        return freeze(self, dtype=dtype, example_input=example_input)

    # -- sampling control -------------------------------------------------------------------------
    def samplers(self):
        return [m for m in self.modules() if isinstance(m, ElementSampler)]

    @property
    def eval_mode(self) -> str:
        return self._eval_mode

    def set_eval_mode(self, mode: str, mc_samples: int | None = None) -> "GroupModel":
        """Evaluation sampling: ``"deterministic"``, ``"stochastic"`` or ``"mc"`` (K passes averaged)."""
        if mode not in EVAL_MODES:
            raise ValueError(f"eval_mode must be one of {EVAL_MODES}, got {mode!r}")
        self._eval_mode = mode
        for s in self.samplers():
            s.eval_mode = mode
        if mc_samples is not None:
            self.sampling = self.sampling.replace(mc_samples=mc_samples)
        return self

    def set_gumbel_anneal_steps(self, steps: int | None) -> "GroupModel":
        """Anneal the relaxed-Bernoulli temperature over this many training forwards (e.g. epochs·iters)."""
        if steps is not None and (not isinstance(steps, int) or steps < 1):
            raise ValueError(f"steps must be None or an int >= 1, got {steps!r}")
        for s in self.samplers():
            s.anneal_steps = steps
        return self

    def learned_equivariance(self) -> list[dict]:
        """Per group-conv layer, in module order: θ (the arc is ±πθ) and the mirror keep probability.

        Full layers report θ = 1 (and mirror probability 1 for E2); C_n / D_n gated layers report
        ``theta=None`` and their per-element keep probabilities under ``gates``.
        """
        rows = []
        e2 = self.sampling.group == "E2"
        for name, module in self.named_modules():
            sampler = getattr(module, "sampler", "absent")
            if sampler == "absent":
                continue
            row = {"layer": name, "theta": 1.0, "mirror_probability": 1.0 if e2 else None}
            if isinstance(sampler, PartialSampler):
                theta = sampler.theta
                row["theta"] = None if theta is None else float(theta.detach())
                if e2:
                    row["mirror_probability"] = float(sampler.mirror_probability.detach())
                if theta is None:
                    n = sampler.probs.numel() - (1 if e2 else 0)
                    row["gates"] = torch.sigmoid(2.0 * sampler.probs[:n].detach()).tolist()
            rows.append(row)
        return rows
