"""Kernel nets: small neural fields mapping kernel coordinates to kernel values (docs/method.md#kernel-nets).

Every net maps points ``[..., dim_in]`` to ``[..., out_features]`` and is split in two so the last
linear layer can be fused into the bank op (:func:`pgcnn_triton.kernels.kernel_bank`):

    net(x) == net.features(x) @ net.output.weight.T + net.output.bias

* :class:`SIREN` — ``sin(ω0·(W x + b))`` hidden layers, then a linear output layer (the paper's init);
* :class:`MAGNet` — multiplicative anisotropic-Gabor filter network;
* :class:`FourierNet` — multiplicative Fourier filter network;
* :class:`GaborNet` — multiplicative isotropic-Gabor filter network;
* :class:`MLP` — linear layers, each hidden one followed by a norm and an activation (options).

``num_layers`` counts the linear maps of a SIREN (3 in every experiment); for the multiplicative
nets it is L: L + 1 filters, L hidden linear maps and the output layer; for the MLP it counts the linear
maps, as for the SIREN.

A kernel net is named by a string wherever one is chosen (the layers' and models' ``kernel_net``, the
presets, ``pgcnn train --kernel-net``): ``"SIREN"``, ``"MAGNet"``, ``"FourierNet"``, ``"GaborNet"`` or
``"MLP"``; the MLP's options go in brackets, e.g. ``"MLP(norm=batch, activation=GELU)"``
(:func:`parse_kernel_net`).

**The SIREN init is an odd function.** With the paper's initialisation every bias is 0, so each
layer ``sin(ω0·W x)`` and the linear output are odd, and so is the whole net: ``K(−p) = −K(p)``.
A rotation by π negates the tap coordinates (``M(φ + π) = −M(φ)``), so at init the lifting
kernels at g and g + π are exact negatives, and so are the lifted features (the responses at
opposite elements cancel). Consequences visible early in training: the mean over the group of the
lifted features is ~1e-8 (a mean pool over G outputs ~0), and the lifting BatchNorm's running mean
stays ~0 until training moves the biases and breaks the symmetry. (Group convs see the relative
angle as well, whose coordinate h/π − 1 is not negated by a π rotation, so their kernels are not
antisymmetric in the same way.) MAGNet, FourierNet, GaborNet and the MLP have random biases and are not odd.
No option changes this, since the paper's results are obtained with it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._checks import number

#: ω0 and the input scale of the multiplicative nets: outside these, the float32 init or the sine
#: arguments overflow (ω0 → 0 scales the init by 1/ω0), and the kernels are no longer finite.
OMEGA0_RANGE, INPUT_SCALE_RANGE = (1e-3, 1e4), (1e-3, 1e6)


class KernelNet(nn.Module):
    """Common interface: ``features(x)`` → last hidden layer, ``output`` → the last linear layer."""

    output: nn.Linear

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.features(x))


def _check(dim_in, out_features, hidden, num_layers, minimum_layers):
    for name, value in (("dim_in", dim_in), ("out_features", out_features), ("hidden", hidden)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < minimum_layers:
        raise ValueError(f"num_layers must be an int >= {minimum_layers}, got {num_layers!r}")


class SIREN(KernelNet):
    """SIREN kernel net (Sitzmann et al. 2020) with the Partial G-CNN init.

    ``num_layers`` linear maps: ``num_layers − 1`` sine layers ``sin(ω0·(W x + b))`` and a plain linear
    output. Init (fan_in = input width): first layer ``U(±1/fan_in)``, later layers including the output
    ``U(±√(6/fan_in)/ω0)``, biases 0. With ``learn_omega0`` each sine layer's ω0 is a learnable scalar.
    ``omega0`` must lie in :data:`OMEGA0_RANGE` (1e-3 to 1e4; ``ValueError`` otherwise).

    With zero biases the net is odd at init, ``net(−x) = −net(x)``: lifted features at g and g + π
    are exact negatives until training moves the biases (module docstring).
    """

    def __init__(self, dim_in, out_features, hidden=32, num_layers=3, omega0=10.0, learn_omega0=False):
        super().__init__()
        _check(dim_in, out_features, hidden, num_layers, 2)
        omega0 = number(omega0, "omega0", low=OMEGA0_RANGE[0], high=OMEGA0_RANGE[1])
        widths = [dim_in] + [hidden] * (num_layers - 1)
        self.hidden_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.output = nn.Linear(hidden, out_features)
        if learn_omega0:
            self.omega0 = nn.Parameter(torch.full((num_layers - 1,), float(omega0)))
        else:
            self.register_buffer("omega0", torch.full((num_layers - 1,), float(omega0)))
        with torch.no_grad():
            for i, layer in enumerate([*self.hidden_layers, self.output]):
                fan_in = layer.in_features
                bound = 1.0 / fan_in if i == 0 else math.sqrt(6.0 / fan_in) / omega0
                layer.weight.uniform_(-bound, bound)
                layer.bias.zero_()

    def features(self, x):
        for i, layer in enumerate(self.hidden_layers):
            x = torch.sin(self.omega0[i] * layer(x))
        return x


class _MultiplicativeFilterNet(KernelNet):
    """``z0 = f0(x)``, ``z_l = f_l(x) ⊙ (U_l z_{l−1} + c_l)``, ``out = V z_L + c`` (Fathony et al. 2021)."""

    def __init__(self, dim_in, out_features, hidden, num_layers, input_scale):
        super().__init__()
        _check(dim_in, out_features, hidden, num_layers, 1)
        input_scale = number(input_scale, "input_scale", low=INPUT_SCALE_RANGE[0], high=INPUT_SCALE_RANGE[1])
        self.filters = nn.ModuleList(nn.Linear(dim_in, hidden) for _ in range(num_layers + 1))
        self.linears = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(num_layers))
        self.output = nn.Linear(hidden, out_features)
        self.weight_scale = input_scale / math.sqrt(num_layers + 1)
        bound = math.sqrt(1.0 / hidden)
        with torch.no_grad():
            for f in self.filters:
                f.bias.uniform_(-math.pi, math.pi)
            for lin in self.linears:
                lin.weight.uniform_(-bound, bound)

    def filter(self, index: int, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def features(self, x):
        z = self.filter(0, x)
        for i, lin in enumerate(self.linears):
            z = self.filter(i + 1, x) * lin(z)
        return z


class FourierNet(_MultiplicativeFilterNet):
    """Multiplicative filter network with Fourier filters ``sin(W_l x + b_l)``.

    Init: ``W_l`` default × ``input_scale/√(L+1)``; ``b_l ~ U(−π, π)``; ``U_l ~ U(±√(1/hidden))``.
    """

    def __init__(self, dim_in, out_features, hidden=32, num_layers=3, input_scale=256.0):
        super().__init__(dim_in, out_features, hidden, num_layers, input_scale)
        with torch.no_grad():
            for f in self.filters:
                f.weight.mul_(self.weight_scale)

    def filter(self, index, x):
        return torch.sin(self.filters[index](x))


class MAGNet(_MultiplicativeFilterNet):
    """Multiplicative Anisotropic Gabor Network (Romero et al. 2022).

    Filter l: ``exp(−½ Σ_d (γ_{l,h,d}(x_d − μ_{l,h,d}))²) · sin(W_l x + b_l)``, with ``γ ~ Gamma(6/(l+1), 1)``
    per hidden unit and input dimension, ``μ ~ U(−1, 1)``, ``W_l`` default × ``(input_scale/√(L+1))·γ_l``,
    ``b_l ~ U(−π, π)``.
    """

    def __init__(self, dim_in, out_features, hidden=32, num_layers=3, input_scale=256.0):
        super().__init__(dim_in, out_features, hidden, num_layers, input_scale)
        gammas, mus = [], []
        for index, f in enumerate(self.filters):
            concentration = torch.full((hidden, dim_in), 6.0 / (index + 1))
            gamma = torch.distributions.Gamma(concentration, torch.ones_like(concentration)).sample()
            gammas.append(nn.Parameter(gamma))
            mus.append(nn.Parameter(torch.rand(hidden, dim_in) * 2.0 - 1.0))
            with torch.no_grad():
                f.weight.mul_(self.weight_scale * gamma)
        self.gammas = nn.ParameterList(gammas)
        self.mus = nn.ParameterList(mus)

    def filter(self, index, x):
        diff = x[..., None, :] - self.mus[index]  # [..., hidden, dim_in]
        envelope = torch.exp(-0.5 * (self.gammas[index] * diff).pow(2).sum(-1))
        return envelope * torch.sin(self.filters[index](x))


class GaborNet(_MultiplicativeFilterNet):
    """Multiplicative Gabor filter network (Fathony et al. 2021) with isotropic windows.

    Filter l: ``exp(−½ γ_{l,h}² ‖x − μ_{l,h}‖²) · sin(W_l x + b_l)``: one scale ``γ_{l,h}`` per hidden
    unit (MAGNet has one per unit and input dimension). Init, as the original's ``Gabor`` kernel:
    ``γ ~ Gamma(α/(L+1), β)`` with ``α = 6, β = 1`` for every filter (mean 1.5 at L = 3),
    ``μ ~ U(−1, 1)``, ``W_l`` PyTorch's default ``U(±1/√dim_in)`` × ``(input_scale/√(L+1))·γ_{l,h}``,
    ``b_l ~ U(−π, π)``, ``U_l ~ U(±√(1/hidden))``, the other biases and the output layer PyTorch's default.
    """

    def __init__(self, dim_in, out_features, hidden=32, num_layers=3, input_scale=256.0, alpha=6.0, beta=1.0):
        super().__init__(dim_in, out_features, hidden, num_layers, input_scale)
        # outside these the Gamma draws (mean alpha/((L+1)·beta)) under- or overflow the filters' weights
        alpha = number(alpha, "alpha", low=1e-3, high=1e3)
        beta = number(beta, "beta", low=1e-3, high=1e3)
        shape = torch.full((hidden, 1), alpha / (num_layers + 1))
        gammas, mus = [], []
        for f in self.filters:
            gamma = torch.distributions.Gamma(shape, torch.full_like(shape, beta)).sample()
            gammas.append(nn.Parameter(gamma))
            mus.append(nn.Parameter(torch.rand(hidden, dim_in) * 2.0 - 1.0))
            with torch.no_grad():
                f.weight.mul_(self.weight_scale * gamma)
        self.gammas = nn.ParameterList(gammas)  # [hidden, 1] each: isotropic
        self.mus = nn.ParameterList(mus)

    def filter(self, index, x):
        diff = x[..., None, :] - self.mus[index]  # [..., hidden, dim_in]
        envelope = torch.exp(-0.5 * (self.gammas[index] * diff).pow(2).sum(-1))
        return envelope * torch.sin(self.filters[index](x))


#: The MLP's norms: the library's names and the original's (``kernel.norm``).
MLP_NORMS = {"none": "none", "identity": "none", "batch": "batch", "batchnorm": "batch", "layer": "layer",
             "layernorm": "layer"}
#: The MLP's activations (``kernel.activation``; the original's ``Swish`` is SiLU).
MLP_ACTIVATIONS = {"ReLU": nn.ReLU, "LeakyReLU": nn.LeakyReLU, "GELU": nn.GELU, "ELU": nn.ELU, "SiLU": nn.SiLU,
                   "Swish": nn.SiLU, "Tanh": nn.Tanh, "Sigmoid": nn.Sigmoid, "Softplus": nn.Softplus}


class _PointBatchNorm(nn.BatchNorm1d):
    """BatchNorm over every kernel point fed at once (the original's BatchNorm on 1×1-conv kernel nets):
    per hidden unit, statistics over all points of the call (a single point: the running statistics)."""

    def forward(self, x):
        flat = x.reshape(-1, x.shape[-1])
        if self.training and flat.shape[0] == 1:
            # one point has no batch variance: the 1×1 shortcut of a T(2) model, or of a partial layer whose
            # subset shrank to one element; it is normalised with the running statistics (left unchanged)
            out = nn.functional.batch_norm(flat, self.running_mean, self.running_var, self.weight, self.bias,
                                           training=False, eps=self.eps)
            return out.reshape(x.shape)
        return super().forward(flat).reshape(x.shape)


class MLP(KernelNet):
    """Plain MLP kernel net: ``num_layers`` linear maps, each but the last followed by a norm and an activation.

    Layers: ``Linear(dim_in, hidden) → norm → activation``, ``num_layers − 2`` times
    ``Linear(hidden, hidden) → norm → activation``, then ``Linear(hidden, out_features)``, every linear with
    a bias. Init: PyTorch's default everywhere, as the original (weights and biases ``U(±1/√fan_in)``).

    Args:
        norm: ``"none"`` (default), ``"batch"`` (BatchNorm per hidden unit over all kernel points of a
            call, running statistics in eval mode and for a call with a single point) or ``"layer"``
            (LayerNorm over the hidden units of each point). The original's names ``"Identity"``,
            ``"BatchNorm"``, ``"LayerNorm"`` are accepted too.
            (The original's ``LayerNorm(hidden)``, applied to its channels-first 1×1-conv layout, acts on the
            last, spatial axis; here it normalises the hidden units, as a LayerNorm of an MLP does.)
        activation: one of :data:`MLP_ACTIVATIONS` (default ``"ReLU"``; ``"Swish"`` is SiLU).
    """

    def __init__(self, dim_in, out_features, hidden=32, num_layers=3, norm="none", activation="ReLU"):
        super().__init__()
        _check(dim_in, out_features, hidden, num_layers, 2)
        norm_key = MLP_NORMS.get(str(norm).lower()) if isinstance(norm, str) else None
        if norm_key is None:
            raise ValueError(f"MLP norm must be one of 'none', 'batch', 'layer', got {norm!r}")
        if activation not in MLP_ACTIVATIONS:
            raise ValueError(f"MLP activation must be one of {sorted(MLP_ACTIVATIONS)}, got {activation!r}")
        self.norm, self.activation = norm_key, activation
        widths = [dim_in] + [hidden] * (num_layers - 1)
        self.hidden_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        make_norm = {"none": lambda: nn.Identity(), "batch": lambda: _PointBatchNorm(hidden),
                     "layer": lambda: nn.LayerNorm(hidden)}[norm_key]
        self.norms = nn.ModuleList(make_norm() for _ in self.hidden_layers)
        self.activations = nn.ModuleList(MLP_ACTIVATIONS[activation]() for _ in self.hidden_layers)
        self.output = nn.Linear(hidden, out_features)

    def features(self, x):
        for layer, norm, act in zip(self.hidden_layers, self.norms, self.activations):
            x = act(norm(layer(x)))
        return x

    def extra_repr(self):
        return f"norm={self.norm!r}, activation={self.activation!r}"


KERNEL_NETS = {"SIREN": SIREN, "MAGNet": MAGNet, "FourierNet": FourierNet, "GaborNet": GaborNet, "MLP": MLP}
_ALIASES = {"siren": "SIREN", "magnet": "MAGNet", "fourier": "FourierNet", "fouriernet": "FourierNet",
            "gabor": "GaborNet", "gabornet": "GaborNet", "mlp": "MLP"}
_MLP_OPTIONS = ("norm", "activation")
_SPEC_HELP = ("expected one of 'SIREN', 'MAGNet', 'FourierNet', 'GaborNet', 'MLP', or 'MLP(norm=none|batch|layer, "
              f"activation={'|'.join(MLP_ACTIVATIONS)})'")


def parse_kernel_net(spec: str) -> tuple[str, dict]:
    """``(name, options)`` of a kernel-net spec: a name (case-insensitive; ``"Fourier"`` and ``"Gabor"``, the
    original's names, are accepted), for the MLP optionally with options in brackets:
    ``parse_kernel_net("mlp(norm=batch, activation=GELU)") == ("MLP", {"norm": "batch", "activation": "GELU"})``.
    Raises ``ValueError`` (one line, naming the accepted forms) on anything else."""
    if not isinstance(spec, str):
        raise TypeError(f"kernel_net must be a str, got {type(spec).__name__}")
    text = spec.strip()
    head, options = text, {}
    if text.endswith(")") and "(" in text:
        head, body = text[:-1].split("(", 1)
        for item in filter(None, (part.strip() for part in body.split(","))):
            key, eq, value = (s.strip() for s in item.partition("="))
            if not eq or key not in _MLP_OPTIONS or not value or key in options:
                raise ValueError(f"kernel_net {spec!r}: bad option {item!r}; {_SPEC_HELP}")
            options[key] = value
    name = _ALIASES.get(head.strip().lower())
    if name is None or (options and name != "MLP"):
        raise ValueError(f"unknown kernel_net {spec!r}: {_SPEC_HELP}")
    if name == "MLP":
        options.setdefault("norm", "none")
        options.setdefault("activation", "ReLU")
        canonical = {a.lower(): a for a in MLP_ACTIVATIONS}
        options["activation"] = canonical.get(options["activation"].lower(), options["activation"])
        if options["norm"].lower() not in MLP_NORMS or options["activation"] not in MLP_ACTIVATIONS:
            raise ValueError(f"kernel_net {spec!r}: unknown norm or activation; {_SPEC_HELP}")
    return name, options


def min_kernel_layers(spec: str) -> int:
    """The fewest ``num_layers`` a kernel net of this spec accepts (2 for SIREN and MLP, else 1)."""
    return 2 if parse_kernel_net(spec)[0] in ("SIREN", "MLP") else 1


def make_kernel_net(name: str, dim_in: int, out_features: int, hidden: int, num_layers: int = 3,
                    omega0: float = 10.0, learn_omega0: bool = False) -> KernelNet:
    """Build a kernel net from a spec (:func:`parse_kernel_net`): ``"SIREN"``, ``"MAGNet"``,
    ``"FourierNet"``/``"Fourier"``, ``"GaborNet"``/``"Gabor"``, ``"MLP"`` or ``"MLP(norm=…, activation=…)"``.
    ``omega0`` and ``learn_omega0`` apply to the SIREN only."""
    key, options = parse_kernel_net(name)
    if key == "SIREN":
        return SIREN(dim_in, out_features, hidden, num_layers, omega0, learn_omega0)
    return KERNEL_NETS[key](dim_in, out_features, hidden, num_layers, **options)
