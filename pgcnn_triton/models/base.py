"""What every pgcnn_triton model shares: sampling settings, evaluation modes, learned-subset read-out."""

from __future__ import annotations

import torch
from torch import nn

from ..kernels import resolve_padding
from ..sampling import EVAL_MODES, ElementSampler, PartialSampler, SamplingConfig

#: The T(2) baseline: one element (the identity), i.e. a CNN with continuous kernels.
T2_SAMPLING = dict(group="SE2", num_elements=1, method="deterministic", partial=False)


def conv_stage(layer) -> tuple[str, int, int]:
    """``("conv", k, padding)`` of a conv layer (or its frozen copy)."""
    return ("conv", layer.kernel_size, resolve_padding(layer.padding, layer.kernel_size))


def pool_stage(pool) -> tuple[str, int, int]:
    return ("pool", pool.kernel_size, pool.stride)


class GroupModel(nn.Module):
    """Base class of the models. Subclasses implement ``forward_once(x) -> logits`` and
    ``spatial_stages()``, and set ``in_channels``; ``forward`` checks the input first."""

    sampling: SamplingConfig
    in_channels: int
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
        self.check_input(x)
        if not self.training and self.eval_mode == "mc":
            return torch.stack([self.forward_once(x) for _ in range(self.sampling.mc_samples)]).mean(0)
        return self.forward_once(x)

    def forward_once(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # -- input contract ---------------------------------------------------------------------------
    def spatial_stages(self) -> list[tuple[str, int, int]]:
        """The layers that change H and W, in order: ``("conv", k, padding)`` or ``("pool", k, stride)``."""
        raise NotImplementedError

    def output_size(self, size: int) -> int | None:
        """The final spatial size for an input side of ``size`` pixels, or None if a layer cannot run."""
        for kind, k, p in self.spatial_stages():
            if kind == "conv":
                size = size + 2 * p - k + 1
            else:  # max pooling, window k, stride p
                size = (size - k) // p + 1 if size >= k else 0
            if size < 1:
                return None
        return size

    def min_input_size(self) -> int:
        """The smallest H (and W) the architecture accepts (every conv and pool gets a valid input)."""
        size = 1
        while self.output_size(size) is None:
            size += 1
        return size

    def check_input(self, x) -> None:
        """Raise a TypeError / ValueError naming what the model needs unless ``x`` is a floating
        ``[B, in_channels, H, W]`` tensor with H, W ≥ :meth:`min_input_size`."""
        name = type(self).__name__
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} expects x as a torch.Tensor [B, {self.in_channels}, H, W], got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"{name} expects a floating-point x (float32, float64, bfloat16 or float16), "
                            f"got dtype {x.dtype}")
        if x.dim() != 4:
            raise ValueError(f"{name} expects x of shape [B, {self.in_channels}, H, W], got rank {x.dim()} "
                             f"{tuple(x.shape)}")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"{name} expects {self.in_channels} input channels (x of shape "
                             f"[B, {self.in_channels}, H, W]), got {x.shape[1]} in {tuple(x.shape)}")
        if x.shape[0] < 1:
            raise ValueError(f"{name} expects a non-empty batch, got {tuple(x.shape)}")
        if self.output_size(x.shape[2]) is None or self.output_size(x.shape[3]) is None:
            need = self.min_input_size()  # the search runs only to word the error
            raise ValueError(f"{name} needs H, W >= {need} for its layers ({self.describe_stages()}), "
                             f"got {x.shape[2]}x{x.shape[3]} in {tuple(x.shape)}")

    def describe_stages(self) -> str:
        """E.g. ``"6 7x7 convs (1 'valid'), 2 2x2 max pools"``."""
        stages = self.spatial_stages()
        convs = [(k, p) for kind, k, p in stages if kind == "conv"]
        pools = [k for kind, k, _ in stages if kind == "pool"]
        sizes = "/".join(sorted({f"{k}x{k}" for k, _ in convs}))
        valid = sum(1 for k, p in convs if p == 0 and k > 1)
        text = f"{len(convs)} {sizes} convs" + (f" ({valid} 'valid')" if valid else "")
        return text + f", {len(pools)} {pools[0]}x{pools[0]} max pool{'s' if len(pools) != 1 else ''}" if pools else text

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
