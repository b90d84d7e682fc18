"""Kernel nets: small neural fields mapping kernel coordinates to kernel values (docs/method.md#kernel-nets).

Every net maps points ``[..., dim_in]`` to ``[..., out_features]`` and is split in two so the last
linear layer can be fused into the bank op (:func:`pgcnn_triton.kernels.kernel_bank`):

    net(x) == net.features(x) @ net.output.weight.T + net.output.bias

* :class:`SIREN` — ``sin(ω0·(W x + b))`` hidden layers, then a linear output layer (the paper's init);
* :class:`MAGNet` — multiplicative anisotropic-Gabor filter network;
* :class:`FourierNet` — multiplicative Fourier filter network.

``num_layers`` counts the linear maps of a SIREN (3 in every experiment); for the multiplicative
nets it is L: L + 1 filters, L hidden linear maps and the output layer.

**The SIREN init is an odd function.** With the paper's initialisation every bias is 0, so each
layer ``sin(ω0·W x)`` and the linear output are odd, and so is the whole net: ``K(−p) = −K(p)``.
A rotation by π negates the tap coordinates (``M(φ + π) = −M(φ)``), so at init the lifting
kernels at g and g + π are exact negatives, and so are the lifted features (the responses at
opposite elements cancel). Consequences visible early in training: the mean over the group of the
lifted features is ~1e-8 (a mean pool over G outputs ~0), and the lifting BatchNorm's running mean
stays ~0 until training moves the biases and breaks the symmetry. (Group convs see the relative
angle as well, whose coordinate h/π − 1 is not negated by a π rotation, so their kernels are not
antisymmetric in the same way.) MAGNet and FourierNet have random filter biases and are not odd.
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


KERNEL_NETS = {"SIREN": SIREN, "MAGNet": MAGNet, "FourierNet": FourierNet}
_ALIASES = {"siren": "SIREN", "magnet": "MAGNet", "fourier": "FourierNet", "fouriernet": "FourierNet"}


def make_kernel_net(name: str, dim_in: int, out_features: int, hidden: int, num_layers: int = 3,
                    omega0: float = 10.0, learn_omega0: bool = False) -> KernelNet:
    """Build a kernel net by name (``"SIREN"``, ``"MAGNet"`` or ``"FourierNet"``/``"Fourier"``)."""
    if not isinstance(name, str):
        raise TypeError(f"kernel_net must be a str, got {type(name).__name__}")
    key = _ALIASES.get(name.lower())
    if key is None:
        raise ValueError(f"unknown kernel_net {name!r}: expected one of {sorted(KERNEL_NETS)}")
    if key == "SIREN":
        return SIREN(dim_in, out_features, hidden, num_layers, omega0, learn_omega0)
    return KERNEL_NETS[key](dim_in, out_features, hidden, num_layers)
