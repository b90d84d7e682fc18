import math

import pytest
import torch

from pgcnn_triton.kernelnets import SIREN, FourierNet, MAGNet, make_kernel_net


def count(m):
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("net", [SIREN(3, 12, 8), MAGNet(3, 12, 8), FourierNet(3, 12, 8)])
def test_output_is_features_through_last_linear(net):
    x = torch.rand(2, 5, 7, 3) * 2 - 1
    assert net(x).shape == (2, 5, 7, 12)
    assert torch.allclose(net(x), net.features(x) @ net.output.weight.t() + net.output.bias)


def test_siren_init_and_omega0():
    torch.manual_seed(0)
    net = SIREN(3, 40, hidden=32, num_layers=3, omega0=10.0)
    first, second = net.hidden_layers
    assert first.weight.abs().max() <= 1 / 3
    assert second.weight.abs().max() <= math.sqrt(6 / 32) / 10
    assert net.output.weight.abs().max() <= math.sqrt(6 / 32) / 10
    assert all(not layer.bias.detach().any() for layer in (first, second, net.output))
    assert count(net) == (3 * 32 + 32) + (32 * 32 + 32) + (32 * 40 + 40)
    x = torch.rand(10, 3)
    assert torch.allclose(net.features(x), torch.sin(10 * second(torch.sin(10 * first(x)))))
    learned = SIREN(3, 40, hidden=32, omega0=10.0, learn_omega0=True)
    assert count(learned) == count(net) + 2


def test_multiplicative_nets_structure():
    mag = MAGNet(2, 10, hidden=32, num_layers=3)
    # 4 filters (linear + γ + μ), 3 hidden linears, the output layer
    assert count(mag) == 4 * (2 * 32 + 32 + 2 * 32 * 2) + 3 * (32 * 32 + 32) + (32 * 10 + 10)
    assert bool((torch.stack(list(mag.gammas)) > 0).all())
    four = FourierNet(2, 10, hidden=32, num_layers=3)
    assert count(four) == 4 * (2 * 32 + 32) + 3 * (32 * 32 + 32) + (32 * 10 + 10)
    assert four.filters[0].bias.detach().abs().max() <= math.pi


@pytest.mark.parametrize("cls", [SIREN, MAGNet, FourierNet])
def test_gradcheck(cls):
    net = cls(2, 3, hidden=4, num_layers=2).double()
    x = torch.rand(5, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(net, (x,))


def test_make_kernel_net_names():
    assert isinstance(make_kernel_net("siren", 2, 4, 8), SIREN)
    assert isinstance(make_kernel_net("MAGNet", 2, 4, 8), MAGNet)
    assert isinstance(make_kernel_net("Fourier", 2, 4, 8), FourierNet)
    with pytest.raises(ValueError, match="num_layers"):
        SIREN(2, 4, 8, num_layers=1)
    with pytest.raises(ValueError, match="omega0"):
        SIREN(2, 4, 8, omega0=0)
    with pytest.raises(ValueError, match="hidden"):
        MAGNet(2, 4, 0)


def hand_linear(layer, x):
    return x @ layer.weight.detach().t() + layer.bias.detach()


def hand_mfn(net, x, filt):
    """docs/method.md#multiplicative-filter-networks: z0 = f0(x), z_l = f_l(x) ⊙ (U_l z_{l−1} + c_l), out = V z_L + c."""
    z = filt(0, x)
    for index, lin in enumerate(net.linears):
        z = filt(index + 1, x) * hand_linear(lin, z)
    return hand_linear(net.output, z)


def test_magnet_matches_the_anisotropic_gabor_formula():
    # f_l(x) = exp(−½ Σ_d (γ_{l,h,d}(x_d − μ_{l,h,d}))²) · sin(W_l x + b_l), from the module's parameters
    net = MAGNet(3, 5, hidden=6, num_layers=2).double()
    x = torch.rand(40, 3, dtype=torch.float64) * 2 - 1

    def gabor(index, x):
        gamma, mu = net.gammas[index].detach(), net.mus[index].detach()  # [hidden, dim_in]
        quad = ((gamma[None] * (x[:, None, :] - mu[None])) ** 2).sum(-1)  # [P, hidden]
        return torch.exp(-0.5 * quad) * torch.sin(hand_linear(net.filters[index], x))

    want = hand_mfn(net, x, gabor)
    # float64, same ops in a different order (measured 0.0; rounding would be ~1e-16 relative)
    assert (net(x) - want).abs().max() <= 1e-12 * want.abs().max()
    # the envelope matters at these points: without it the output is far off (measured 0.93 of max |out|)
    sine_only = hand_mfn(net, x, lambda i, x: torch.sin(hand_linear(net.filters[i], x)))
    assert (sine_only - want).abs().max() > 0.1 * want.abs().max()


def test_fourier_net_matches_the_formula():
    net = FourierNet(3, 5, hidden=6, num_layers=2).double()
    x = torch.rand(40, 3, dtype=torch.float64) * 2 - 1
    want = hand_mfn(net, x, lambda i, x: torch.sin(hand_linear(net.filters[i], x)))
    assert (net(x) - want).abs().max() <= 1e-12 * want.abs().max()


def test_siren_init_is_odd_so_lifted_features_at_opposite_elements_cancel():
    """The documented init symmetry (kernelnets module docstring): zero biases make the net odd."""
    from pgcnn_triton import LiftingConv

    torch.manual_seed(0)
    x = torch.rand(6, 3) * 2 - 1
    net = SIREN(3, 5)
    assert torch.allclose(net(-x), -net(x), atol=1e-7)
    lift = LiftingConv(1, 4, 5, num_elements=8, method="deterministic")
    y, _ = lift(torch.rand(2, 1, 9, 9))
    assert torch.allclose(y[:, :, :4], -y[:, :, 4:], atol=1e-6)       # g and g + π
    assert y.mean(2).abs().max() < 1e-6 < y.abs().max()
