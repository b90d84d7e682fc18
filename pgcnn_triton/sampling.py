"""Samplers of group elements: full group, partial SE(2)/E(2), and the C_n / D_n gates.

Every sampler is a small module that returns ``(elements, mask, gate)``:

* ``elements``: float64 ``[S, G]`` (SE2) or ``[S, G, 2]`` (E2), S = B when sampling per batch element,
  else 1; E2 elements are ordered [all m = +1, all m = −1];
* ``mask``: ``None`` (every element is valid), or in ``static`` shape mode a bool ``[1, G]`` slot mask:
  G = N slots, of which exactly the elements that ``dynamic`` mode would produce are valid;
* ``gate``: ``None``, or with ``mirror_gradient="features"`` a ``[1, G]`` multiplier of value 1 whose
  straight-through gradient reaches the mirror logit through the mirrored elements' features.

Behaviour (docs/method.md#sampling-group-elements and docs/method.md#differences-from-the-official-code):

* **full group** (lifting layer, non-partial per-layer sampling): stratified grid with one random offset
  ``g_i = 2π(i + u)/N`` (E2: N/2 rotations × 2 mirrors), ``u ~ U[0, 1)`` per sample set;
* **partial SE(2)**: learnable θ; ``g_i = θ·(2π(i + u)/n − π) mod 2π``, i < n, with ``n = ceil(N·|θ|)``
  clamped to 1..N (``static``: N slots, the first n these elements); the ``reference`` estimator reproduces the official
  detached spread, whose gradient ``∂g_i/∂θ = −π + 2πu/n`` is the same for every i;
* element counts for θ < 0 (:func:`element_count`): ``ceil(·|θ|)``, except the original's E(2) rule
  ``|ceil(R·θ)|`` under ``reference``;
* **partial E(2)**: θ as above over N/2 rotations (jitter divided by n, or by N in ``reference``,
  quirk Q3) and a mirror logit ``p`` through a relaxed-Bernoulli straight-through gate with keep
  probability ``sigmoid(2p)`` and the annealed temperature;
* **C_n / D_n gates** (deterministic method, partial): one gate per non-identity grid rotation (and the
  mirror gate for D_n); ``reference`` reproduces the official SE2 keep probability
  ``sigmoid(sigmoid(2p))`` (quirk Q5);
* **evaluation**: ``deterministic`` (u = 0.5, gates on iff their keep probability > 0.5),
  ``stochastic`` (as in training), ``mc`` (stochastic here; the model averages K passes).

Static shape mode computes the dynamic mode's function with shapes that never depend on θ or
the gates: a partial layer has N slots; ``n = clamp(ceil(N·|θ|), 1, N)`` (the same rule as
:func:`element_count`) is computed on the device, the first n slots hold exactly the elements dynamic
mode samples from the same uniforms, and every other slot (beyond n, or switched off by a gate) is
masked. The layers, norms and pools use the mask so that masked slots contribute exactly nothing
(:mod:`pgcnn_triton.nn`). The mask is a hard 0/1: gradients reach θ and the gate logits only through
the valid elements, as in dynamic mode.

The straight-through value ``1 + b·(y − y.detach())`` (value 1, gradient ``b·dy``) scales the angle of
a kept C_n element and the mirror flag of a mirrored element, so a logit gets gradient only on steps
where its element was kept (quirk Q7, as official).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import torch
from torch import nn

from ._checks import integer, number, positive, unexpected_keywords
from .groups import TWO_PI, Group, get_group

METHODS = ("random", "deterministic")
SHAPE_MODES = ("dynamic", "static")
EVAL_MODES = ("deterministic", "stochastic", "mc")
ESTIMATORS = ("clean", "reference")
COORDINATES = ("official", "periodic")
MIRROR_GRADIENTS = ("flag", "features")


def _choice(value, options, argument):
    if value not in options:
        raise ValueError(f"{argument} must be one of {options}, got {value!r}")


@dataclass(frozen=True)
class SamplingConfig:
    """How a network samples group elements. Shared by all layers of a model.

    Args:
        group: ``"SE2"`` (rotations) or ``"E2"`` (rotations and mirrors).
        num_elements: N, the number of elements of a full layer (E2: N/2 rotations × 2 mirrors).
        method: ``"random"`` (stratified MC sampling) or ``"deterministic"`` (the C_n / D_n grid).
        partial: learn a subset of the group in every group conv (θ, mirror logit or C_n gates).
        per_batch_element: draw one element set per batch element (S = B) instead of one per batch.
        per_layer: draw new output elements in every group conv (otherwise a non-partial layer reuses
            its input elements). Forced on for partial random sampling, off for deterministic grids.
        shape_mode: ``"dynamic"`` (n = ceil(N·θ) elements: compute follows θ; needs θ on the host) or
            ``"static"`` (N slots, the invalid ones masked: the same function, no host sync,
            ``torch.compile`` friendly, always pays for N).
        eval_mode: ``"deterministic"`` (default), ``"stochastic"`` or ``"mc"``.
        mc_samples: K, the number of stochastic passes averaged in ``"mc"`` evaluation.
        estimator: ``"clean"`` (reparameterised, default) or ``"reference"`` (the official gradients).
        gumbel_init_temp, gumbel_end_temp: the relaxed-Bernoulli temperature anneals linearly from the
            first to the second over ``gumbel_anneal_steps`` training forwards, then stays at the end
            value; ``None`` keeps it at the initial value.
        coordinate: relative-angle kernel coordinate, ``"official"`` (h/π − 1) or ``"periodic"``
            ((cos h, sin h), an extension).
        mirror_gradient: how the E(2) mirror gate's straight-through gradient reaches its logit:
            ``"flag"`` (the paper: through the mirrored elements' flags, i.e. the kernel coordinates)
            or ``"features"`` (an extension: the gate's straight-through value, 1, also multiplies
            the mirrored elements' conv outputs). Both shape modes compute the same function.
    """

    group: str = "SE2"
    num_elements: int = 8
    method: str = "random"
    partial: bool = True
    per_batch_element: bool = False
    per_layer: bool = True
    shape_mode: str = "dynamic"
    eval_mode: str = "deterministic"
    mc_samples: int = 8
    estimator: str = "clean"
    gumbel_init_temp: float = 0.5
    gumbel_end_temp: float = 1e-4
    gumbel_anneal_steps: int | None = None
    coordinate: str = "official"
    mirror_gradient: str = "flag"

    def __post_init__(self):
        g = get_group(self.group)
        object.__setattr__(self, "group", g.name)
        n = self.num_elements
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"num_elements must be an int >= 1, got {type(n).__name__}")
        if n < 1:
            raise ValueError(f"num_elements must be >= 1, got {n}")
        if g.name == "E2" and n % 2:
            raise ValueError(f"num_elements must be even for E2 (N/2 rotations x 2 mirrors), got {n}")
        _choice(self.method, METHODS, "method")
        _choice(self.shape_mode, SHAPE_MODES, "shape_mode")
        _choice(self.eval_mode, EVAL_MODES, "eval_mode")
        _choice(self.estimator, ESTIMATORS, "estimator")
        _choice(self.coordinate, COORDINATES, "coordinate")
        _choice(self.mirror_gradient, MIRROR_GRADIENTS, "mirror_gradient")
        integer(self.mc_samples, "mc_samples")
        if self.gumbel_anneal_steps is not None:
            integer(self.gumbel_anneal_steps, "gumbel_anneal_steps")
        positive(self.gumbel_init_temp, "gumbel_init_temp")
        positive(self.gumbel_end_temp, "gumbel_end_temp")
        if self.method == "deterministic":
            if self.per_batch_element:
                raise ValueError("per_batch_element=True needs method='random' "
                                 "(a deterministic grid is the same for every sample)")
            object.__setattr__(self, "per_layer", False)
        elif self.partial:
            object.__setattr__(self, "per_layer", True)

    @property
    def group_obj(self) -> Group:
        return get_group(self.group)

    def replace(self, **changes) -> "SamplingConfig":
        return replace(self, **changes)


def make_config(sampling: SamplingConfig | None, options: dict, owner: str | None = None,
                valid: tuple = ()) -> SamplingConfig:
    """A layer's or model's config: ``sampling`` (or the defaults) with keyword ``options`` applied.

    ``owner`` (e.g. ``"LiftingConv"``) names the constructor the user called in the ``TypeError`` for an
    unknown keyword; ``valid`` are that constructor's own argument names (offered as suggestions too)."""
    if owner is not None:
        unexpected_keywords(options, {f.name for f in fields(SamplingConfig)} | set(valid), f"{owner}()")
    if sampling is None:
        return SamplingConfig(**options)
    if not isinstance(sampling, SamplingConfig):
        raise TypeError(f"sampling must be a SamplingConfig, got {type(sampling).__name__}")
    return sampling.replace(**options) if options else sampling


@torch.library.custom_op("pgcnn_triton::snapshot", mutates_args=())
def snapshot(x: torch.Tensor) -> torch.Tensor:
    """A copy of ``x`` that compiled graphs keep rather than recompute.

    The Gumbel counter is a buffer advanced in place in the forward. AOTAutograd's partitioners
    (torch 2.11–2.13) recompute values derived from a mutated input in the backward from the input
    itself, i.e. after the mutation: the compiled backward then used the next step's temperature
    (gradients off by τ_i/τ_{i+1}). An opaque op is never recomputed, so its copy is saved.
    """
    return x.clone()


@snapshot.register_fake
def _(x):
    return torch.empty_like(x)


def straight_through(y: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Value 1, gradient ``b·dy``: the straight-through factor of a kept element (0 gradient if dropped)."""
    return 1.0 + b * (y - y.detach())


def relaxed_bernoulli(logits: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    """A relaxed-Bernoulli (binary Concrete) sample with the given logits, differentiable in them."""
    u = torch.rand_like(logits).clamp(1e-6, 1.0 - 1e-6)
    return torch.sigmoid((logits + torch.log(u) - torch.log1p(-u)) / temperature)


def element_count(total: int, theta: float, group: str = "SE2", estimator: str = "clean") -> int:
    """Number of rotations a partial layer keeps in dynamic mode: ``ceil(total·|θ|)`` clamped to 1..total.

    ``total`` is N (SE2) or R = N/2 (E2). The one exception is the original's E(2) rule, used by
    ``estimator="reference"``: ``min(|ceil(R·θ)|, R)``, at least 1, which differs for θ < 0
    (θ = −0.6, R = 4: 2 rotations, where ``ceil(R·|θ|)`` gives 3). ``clean`` uses ``ceil(total·|θ|)``
    for both groups: the arc ``θ·[−π, π)`` has length ``2π|θ|`` whatever θ's sign, so the count, like
    the arc and the element density, depends only on |θ|; it is also the original's own SE(2) rule.

    A non-finite θ raises the ``ValueError`` that assigning it (:meth:`PartialSampler.set_theta`,
    ``load_state_dict``) raises in either shape mode.
    """
    number(theta, "theta")
    # clipped before ceil: a huge finite θ (total·θ overflowing to inf) keeps all, as static mode does
    scaled = min(max(total * theta, -total), total)
    if group == "E2" and estimator == "reference":
        n = abs(math.ceil(scaled))
    else:
        n = math.ceil(abs(scaled))
    return min(max(n, 1), total)


EXPORT_MESSAGE = (
    "torch.export cannot trace a partial layer in the dynamic shape mode: its element count "
    "ceil(N·θ) (and, for E(2), whether the mirrors are kept) is read from the learned parameters on the "
    "host, which export sees as a data-dependent value. Export model.freeze() instead (every bank "
    "precomputed, no sampling; see pgcnn_triton.freeze), or build the model with shape_mode='static'."
)


class DynamicShapeExportError(RuntimeError):
    """Raised when ``torch.export`` traces a dynamic-shape-mode partial layer (:data:`EXPORT_MESSAGE`)."""

    # torch.export prints the partially traced graph (hundreds of lines) of a failing trace to stderr
    # from this attribute, which the tracer sets on the exception; the message says all there is
    partial_fx_graph = property(lambda self: "", lambda self, value: None)


def check_not_exporting() -> None:
    """Raise :class:`DynamicShapeExportError` under ``torch.export``, before a host read of θ or a gate
    would fail inside torch with a data-dependent guard error and a page of graph."""
    if torch.compiler.is_exporting():
        raise DynamicShapeExportError(EXPORT_MESSAGE)


def element_count_tensor(total: int, theta: torch.Tensor, group: str = "SE2", estimator: str = "clean") -> torch.Tensor:
    """:func:`element_count` on the device: the same count as a float64 0-d tensor, no host sync.

    ``theta`` is a float64 tensor; its gradient is not followed (n is piecewise constant in θ).
    """
    theta = theta.detach()
    if group == "E2" and estimator == "reference":
        n = torch.ceil(total * theta).abs()
    else:
        n = torch.ceil(total * theta.abs())
    return n.clamp(1, total)


class ElementSampler(nn.Module):
    """Base class: eval-mode switch, offsets, Gumbel temperature counter."""

    def __init__(self, config: SamplingConfig):
        super().__init__()
        self.config = config
        self.group = config.group_obj
        self.eval_mode = config.eval_mode
        self.anneal_steps = config.gumbel_anneal_steps
        # Each layer owns its counter (docs/method.md#gumbel-temperature): advanced once per training forward.
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    @property
    def stochastic(self) -> bool:
        return self.training or self.eval_mode != "deterministic"

    def num_sets(self, batch_size: int) -> int:
        return batch_size if self.config.per_batch_element else 1

    def offsets(self, batch_size: int, device) -> torch.Tensor:
        """The in-cell offset u per sample set, ``[S, 1]`` float64 (0.5 in deterministic evaluation)."""
        shape = (self.num_sets(batch_size), 1)
        if self.stochastic:
            return torch.rand(shape, dtype=torch.float64, device=device)
        return torch.full(shape, 0.5, dtype=torch.float64, device=device)

    def temperature(self) -> torch.Tensor:
        """The current Gumbel temperature (never below the end value); advances the counter in training."""
        c = self.config
        t0, t1 = c.gumbel_init_temp, c.gumbel_end_temp
        if self.anneal_steps is None:
            tau = torch.full((), t0, device=self.step.device)
        else:
            frac = snapshot(self.step).to(torch.float32) / self.anneal_steps
            tau = (t0 - frac * (t0 - t1)).clamp_min(t1)
        if self.training:
            self.step.add_(1)
        return tau

    def extra_repr(self) -> str:
        c = self.config
        return f"group={c.group}, N={c.num_elements}, method={c.method}, eval_mode={self.eval_mode}"


class FullGroupSampler(ElementSampler):
    """The whole group: a stratified grid with one random offset (or the C_n / D_n grid)."""

    def forward(self, batch_size: int, device=None):
        c, g = self.config, self.group
        n = c.num_elements
        if c.method == "deterministic":
            return g.grid(n, device=device), None, None
        rotations = n if g.element_rank == 0 else n // 2
        i = torch.arange(rotations, dtype=torch.float64, device=device)
        angles = TWO_PI * (i + self.offsets(batch_size, device)) / rotations
        if g.element_rank == 0:
            return g.make(angles), None, None
        return g.mirrored(angles), None, None


def check_finite_probs(values: torch.Tensor, name: str) -> None:
    """``ValueError`` naming ``name`` unless every θ / logit in ``values`` is finite (reads them on the host:
    for assignment and loading, never for the forward)."""
    values = values.detach()
    if not bool(torch.isfinite(values).all()):
        bad = [v for v in values.flatten().tolist() if not math.isfinite(v)]
        raise ValueError(f"{name} must be finite numbers (θ, mirror and gate logits), got {bad[0]}")


def _check_loaded_probs(module, state_dict, prefix, *args) -> None:
    key = prefix + "probs"
    if key in state_dict and torch.is_tensor(state_dict[key]) and state_dict[key].is_floating_point():
        check_finite_probs(state_dict[key], key)


class PartialSampler(ElementSampler):
    """A learnable subset of the group (one per partial group conv).

    ``probs`` holds, as in the official code: SE2 random ``[θ]``; E2 random ``[θ, mirror logit]``;
    SE2 deterministic ``[N−1]`` gate logits; E2 deterministic ``[N/2 − 1 rotation gate logits,
    mirror logit]``. All initialised at 1.0.

    θ itself is :attr:`theta` (read and set); the trainable parameter that holds it is ``probs``, the name
    ``state_dict()``, optimizers and ``named_parameters()`` use (``…sampler.probs``).
    """

    def __init__(self, config: SamplingConfig):
        super().__init__(config)
        n = config.num_elements
        e2 = self.group.element_rank == 1
        if config.method == "random":
            size = 2 if e2 else 1
        else:
            size = n // 2 if e2 else n - 1
        self.probs = nn.Parameter(torch.ones(size))
        # a checkpoint's θ / logits are checked as they are loaded (never in forward: no host sync)
        self.register_load_state_dict_pre_hook(_check_loaded_probs)

    # -- checked assignment (the forward never reads θ on the host in static mode) ---------------
    def set_theta(self, value: float) -> "PartialSampler":
        """Set θ of a random partial layer. ``ValueError`` if it is not finite (NaN / ±inf would give
        NaN outputs in static mode and no element count in dynamic mode), the same in both shape modes."""
        if self.config.method != "random":
            raise ValueError("set_theta: this layer has C_n / D_n gates, not θ (method='deterministic'); "
                             "use set_probs")
        largest = torch.finfo(self.probs.dtype).max  # beyond, the parameter would hold ±inf
        value = number(value, "theta", low=-largest, high=largest)
        with torch.no_grad():
            self.probs[0] = value
        return self

    def set_probs(self, values) -> "PartialSampler":
        """Set all of ``probs`` (θ and the mirror logit, or the gate logits; see the class docstring).
        ``ValueError`` unless ``values`` has ``probs``' size and every entry is finite."""
        values = torch.as_tensor(values, dtype=torch.float64).flatten()  # float64 first: an overflow shows as inf
        values = values.to(self.probs.dtype)
        if values.numel() != self.probs.numel():
            raise ValueError(f"probs must have {self.probs.numel()} entries, got {values.numel()}")
        check_finite_probs(values, "probs")
        with torch.no_grad():
            self.probs.copy_(values.to(self.probs.device))
        return self

    # -- public read-outs (for plots and regularisers) --------------------------------------------
    @property
    def theta(self) -> torch.Tensor | None:
        """θ of a random partial layer (None for C_n / D_n gates): ``probs[0]``, a view that keeps its gradient."""
        return self.probs[0] if self.config.method == "random" else None

    @theta.setter
    def theta(self, value: float) -> None:
        """Set θ (``probs[0]``) of a random partial layer, e.g. ``conv.sampler.theta = 0.5``."""
        if self.config.method != "random":
            raise AttributeError("theta: a deterministic (C_n / D_n) partial layer has gate logits, not a θ; "
                                 "set sampler.probs instead")
        with torch.no_grad():
            self.probs[0] = value

    @property
    def mirror_probability(self) -> torch.Tensor | None:
        """Keep probability ``sigmoid(2p)`` of the mirrors (E2 only)."""
        if self.group.element_rank == 0:
            return None
        return torch.sigmoid(2.0 * self.probs[-1])

    # -- sampling ----------------------------------------------------------------------------------
    def forward(self, batch_size: int, device=None):
        if self.config.method == "random":
            return self._random(batch_size, device)
        return self._gated_grid(device)

    @property
    def static(self) -> bool:
        return self.config.shape_mode == "static"

    def _count(self, total: int, theta: torch.Tensor):
        """n: a Python int in dynamic mode (θ read on the host: a sync on GPU), a float64 0-d tensor
        computed on the device in static mode."""
        c = self.config
        if self.static:
            return element_count_tensor(total, theta, self.group.name, c.estimator)
        check_not_exporting()  # dynamic: the count is data dependent
        return element_count(total, float(theta.detach()), self.group.name, c.estimator)

    def _arc(self, theta: torch.Tensor, n, slots: int, jitter_cells, u: torch.Tensor) -> torch.Tensor:
        """``slots`` angles ``[S, slots]``: the first n are the arc's n stratified points (the
        slots beyond n, static mode only, continue the formula and are masked)."""
        i = torch.arange(slots, dtype=torch.float64, device=u.device)
        if self.config.estimator == "clean":
            return theta * (TWO_PI * (i + u) / n - math.pi)
        # official: the spread uses a detached θ; the jitter is one cell of the `jitter_cells` grid.
        return theta.detach() * TWO_PI * i / n - math.pi * theta + u * TWO_PI * theta / jitter_cells

    def _gate(self, logits: torch.Tensor, tau) -> tuple[torch.Tensor, torch.Tensor]:
        """Hard gate b and its relaxed sample y (y = b in deterministic evaluation)."""
        if self.stochastic:
            y = relaxed_bernoulli(logits, tau)
            return (y > 0.5).to(y.dtype), y
        b = (logits > 0).to(logits.dtype)
        return b, b

    def _random(self, batch_size, device):
        g, c = self.group, self.config
        theta = self.probs[0].to(torch.float64)
        u = self.offsets(batch_size, device)
        e2 = g.element_rank == 1
        total = c.num_elements // 2 if e2 else c.num_elements
        n = self._count(total, theta)
        slots = total if self.static else n
        jitter = c.num_elements if (e2 and c.estimator == "reference") else n
        angles = self._arc(theta, n, slots, jitter, u)
        valid = None
        if self.static:  # the first n of the N (E2: R) slots
            valid = (torch.arange(slots, dtype=torch.float64, device=u.device) < n)[None]
        if not e2:
            return g.make(angles), valid, None
        tau = self.temperature()
        b, y = self._gate(2.0 * self.probs[1:2], tau)
        return self._with_mirrors(angles, valid, b, y)

    def _with_mirrors(self, angles, valid, b, y):
        """[rotations with m = +1; the same with m = −1 (straight-through)] if the gate b is open,
        else only m = +1 (dynamic) or the mirrored half masked (static)."""
        g, c = self.group, self.config
        st = straight_through(y, b)
        mirror = -st.to(torch.float64)  # value −1; gradient −b·dy reaches the logit via the flags
        gate = None
        if c.mirror_gradient == "features":
            ones = torch.ones_like(angles[:1], dtype=st.dtype)
            gate = torch.cat([ones, st.expand_as(ones)], 1)
        if self.static:
            # the gate's hard value, detached: it only selects slots, as the dynamic shape does
            mask = torch.cat([valid, valid & (b.detach() > 0)], 1)
            return g.mirrored(angles, mirror), mask, gate
        check_not_exporting()
        if bool(b):  # dynamic: the mirrored half exists only when the gate is open (host sync)
            return g.mirrored(angles, mirror), None, gate
        return g.make(angles), None, None

    def _gated_grid(self, device):
        """The C_n / D_n grid; a gate switches each non-identity rotation (and the mirrors) on or off."""
        g, c = self.group, self.config
        e2 = g.element_rank == 1
        rotations = c.num_elements // 2 if e2 else c.num_elements
        angles = (TWO_PI * torch.arange(rotations, dtype=torch.float64, device=device) / rotations)[None]
        tau = self.temperature()
        n_gates = rotations - 1
        logits = 2.0 * self.probs[:n_gates]
        if not e2 and c.estimator == "reference":
            # official SE2: sigmoid(2p) passed as *logits* (quirk Q5)
            logits = torch.sigmoid(logits)
        b, y = self._gate(logits, tau)
        ones = torch.ones_like(b[:1])
        factor = torch.cat([ones, straight_through(y, b)]).to(torch.float64)
        angles = angles * factor  # value unchanged; kept elements carry d/dlogit
        keep = torch.cat([ones, b]).detach() > 0
        if self.static:
            valid = keep[None]
        else:
            check_not_exporting()
            index = torch.nonzero(keep).flatten()  # host sync: dynamic shapes
            angles = angles[:, index]
            valid = None
        if not e2:
            return g.make(angles), valid, None
        mb, my = self._gate(2.0 * self.probs[n_gates:], tau)
        return self._with_mirrors(angles, valid, mb, my)
