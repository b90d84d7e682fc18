"""What every pgcnn_triton model shares: sampling settings, evaluation modes, learned-subset read-out."""

from __future__ import annotations

from dataclasses import fields

import torch
from torch import nn

from .._checks import constructor_arguments, integer, probability, unexpected_keywords
from ..kernels import resolve_padding
from ..nn import LiftingConv
from ..sampling import SamplingConfig
from .control import infer_spatial_stages, learned_equivariance, samplers, set_eval_mode, set_gumbel_anneal_steps

#: The T(2) baseline: one element (the identity), i.e. a CNN with continuous kernels.
T2_SAMPLING = dict(group="SE2", num_elements=1, method="deterministic", partial=False)


def conv_stage(layer) -> tuple[str, int, int]:
    """``("conv", k, padding)`` of a conv layer (or its frozen copy)."""
    return ("conv", layer.kernel_size, resolve_padding(layer.padding, layer.kernel_size))


def check_model_arguments(in_channels, num_classes, hidden, num_blocks, dropout, **index_lists) -> None:
    """The numeric constructor arguments the models share (``ValueError`` / ``TypeError`` naming each);
    ``index_lists``: block indices such as ``pool_blocks``, ints >= 0."""
    integer(in_channels, "in_channels")
    integer(num_classes, "num_classes")
    integer(hidden, "hidden")
    integer(num_blocks, "num_blocks", minimum=0)
    probability(dropout, "dropout")
    for name, indices in index_lists.items():
        try:
            values = list(indices)
        except TypeError:
            raise TypeError(f"{name} must be a sequence of block indices, got {type(indices).__name__}") from None
        for value in values:
            integer(value, f"{name} entry", minimum=0)


def pool_stage(pool) -> tuple[str, int, int]:
    return ("pool", pool.kernel_size, pool.stride)


class GroupModel(nn.Module):
    """Base class of the models, and of your own: subclass it, build the layers in ``__init__`` (after
    ``super().__init__()``) and implement ``forward_once(x) -> logits``. It adds:

    * ``forward``: checks the input (:meth:`check_input`), then runs ``forward_once`` (``"mc"``
      evaluation: the mean of ``mc_samples`` stochastic passes);
    * :meth:`learned_equivariance`, :meth:`set_eval_mode`, :meth:`set_gumbel_anneal_steps` (used by the
      trainer), :meth:`freeze`, :meth:`min_input_size`.

    Optional: ``self.sampling`` (a :class:`SamplingConfig`: its ``eval_mode`` and ``mc_samples`` become
    the defaults), ``self.in_channels`` (else the first ``LiftingConv``'s), and
    :meth:`spatial_stages` (else read off the layers in registration order,
    :func:`~pgcnn_triton.models.control.spatial_stages`). See the README ("Your own network").
    """

    sampling: SamplingConfig | None = None
    PRESETS: dict = {}

    def __new__(cls, *args, **kwargs):
        # the constructor arguments, so a checkpoint can name how to rebuild the network
        # (pgcnn_triton.training.custom_spec); plain attribute, set before nn.Module.__init__ runs
        model = super().__new__(cls)
        object.__setattr__(model, "_init_arguments", (args, kwargs))
        return model

    @classmethod
    def keyword_arguments(cls) -> tuple:
        """The constructor's named keyword arguments besides the :class:`SamplingConfig` fields (what
        :meth:`from_preset` accepts as overrides)."""
        return constructor_arguments(cls)

    @classmethod
    def from_preset(cls, name: str, **overrides):
        """Build the model of a named configuration (``cls.PRESETS``); keyword arguments override it."""
        if not isinstance(name, str):
            raise TypeError(f"preset name must be a str, got {type(name).__name__}")
        if name not in cls.PRESETS:
            raise ValueError(f"unknown preset {name!r} for {cls.__name__}: expected one of {sorted(cls.PRESETS)}")
        kwargs = dict(cls.PRESETS[name])
        unexpected_keywords(overrides, {f.name for f in fields(SamplingConfig)} | set(cls.keyword_arguments()),
                            f"{cls.__name__}.from_preset({name!r}, ...)")
        grows = {k: v for k, v in overrides.items() if (k, v) not in (("num_elements", 1), ("partial", False))
                 and k in ("num_elements", "partial")}
        if kwargs.get("num_elements") == 1 and grows:
            # a T(2) preset is the translation-only baseline of a table: it must not turn into a group CNN
            raise ValueError(f"preset {name!r} is translation-only (T(2), one group element per layer): "
                             f"{', '.join(f'{k}={v!r}' for k, v in grows.items())} would make it a group CNN; "
                             "start from a '-se2-…' / '-e2-…' preset instead")
        kwargs.update(overrides)
        return cls(**kwargs)

    @classmethod
    def t2_baseline(cls, **kwargs):
        """The same architecture over T(2) only (N = 1): a CNN with continuous kernels."""
        return cls(**{**kwargs, **T2_SAMPLING})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        if not self.training and self.eval_mode == "mc":
            return torch.stack([self.forward_once(x) for _ in range(self.mc_samples)]).mean(0)
        return self.forward_once(x)

    def forward_once(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # -- input contract ---------------------------------------------------------------------------
    def spatial_stages(self) -> list[tuple[str, int, int]]:
        """The layers that change H and W, in order: ``("conv", k, padding)`` or ``("pool", k, stride)``.
        Default: read off the layers in registration order; override if ``forward_once`` runs them
        in another order."""
        return infer_spatial_stages(self)

    @property
    def input_channels(self) -> int | None:
        """``self.in_channels`` if set, else the first ``LiftingConv``'s (None if there is none)."""
        channels = getattr(self, "in_channels", None)
        if channels is None:
            channels = next((m.in_channels for m in self.modules() if isinstance(m, LiftingConv)), None)
        return channels

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
        channels = self.input_channels
        shown = "C" if channels is None else channels
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} expects x as a torch.Tensor [B, {shown}, H, W], got {type(x).__name__}")
        if x.device.type == "meta":
            raise ValueError(f"{name} got x on the meta device (a shape without data), which it cannot compute "
                             f"on: pass a cpu or cuda tensor")
        if not x.is_floating_point():
            raise TypeError(f"{name} expects a floating-point x (float32, float64, bfloat16 or float16), "
                            f"got dtype {x.dtype}")
        if x.dim() != 4:
            raise ValueError(f"{name} expects x of shape [B, {shown}, H, W], got rank {x.dim()} "
                             f"{tuple(x.shape)}")
        if channels is not None and x.shape[1] != channels:
            raise ValueError(f"{name} expects {channels} input channels (x of shape "
                             f"[B, {shown}, H, W]), got {x.shape[1]} in {tuple(x.shape)}")
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

    def portable(self, example_input: torch.Tensor | None = None) -> torch.fx.GraphModule:
        """A portable copy for inference: standard torch ops only (the library's CPU convs over the
        in-disk taps), dynamic batch, H and W fixed at ``example_input``'s (default 32×32); it exports and
        runs without pgcnn_triton (see :func:`pgcnn_triton.portable`). This model is left unchanged."""
        from ..portable import portable

        return portable(self, example_input=example_input)

    # -- sampling control -------------------------------------------------------------------------
    def samplers(self):
        return samplers(self)

    @property
    def eval_mode(self) -> str:
        default = self.sampling.eval_mode if self.sampling is not None else "deterministic"
        return getattr(self, "_eval_mode", default)

    @property
    def mc_samples(self) -> int:
        """K, the stochastic passes averaged in ``"mc"`` evaluation."""
        default = self.sampling.mc_samples if self.sampling is not None else 8
        return getattr(self, "_mc_samples", default)

    def set_eval_mode(self, mode: str, mc_samples: int | None = None) -> "GroupModel":
        """Evaluation sampling: ``"deterministic"``, ``"stochastic"`` or ``"mc"`` (K passes averaged)."""
        set_eval_mode(self, mode)
        self._eval_mode = mode
        if mc_samples is not None:
            if isinstance(mc_samples, bool) or not isinstance(mc_samples, int) or mc_samples < 1:
                raise ValueError(f"mc_samples must be an int >= 1, got {mc_samples!r}")
            self._mc_samples = mc_samples
            if self.sampling is not None:
                self.sampling = self.sampling.replace(mc_samples=mc_samples)
        return self

    def set_gumbel_anneal_steps(self, steps: int | None) -> "GroupModel":
        """Anneal the relaxed-Bernoulli temperature over this many training forwards (e.g. epochs·iters)."""
        set_gumbel_anneal_steps(self, steps)
        return self

    def learned_equivariance(self) -> list[dict]:
        """Per lifting / group conv, in module order: θ (the arc is ±π|θ|), mirror keep probability
        and group; see :func:`pgcnn_triton.models.control.learned_equivariance`."""
        return learned_equivariance(self)
