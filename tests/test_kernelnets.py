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
