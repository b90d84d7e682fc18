"""GaborNet and MLP kernel nets: the original's initialisation (measured statistics), their formulas, the
MLP's norm / activation options, the spec strings that select them everywhere, and exact equivariance of
models built with them."""

import argparse
import math

import pytest
import torch

from pgcnn_triton import GCNN, PartialGCNN
from pgcnn_triton.equivariance import flip_w, rot90
from pgcnn_triton.kernelnets import MLP, GaborNet, MAGNet, make_kernel_net, parse_kernel_net
from pgcnn_triton.nn import GroupConv, LiftingConv
from pgcnn_triton.testing import assert_invariant
from pgcnn_triton.training.args import add_train_arguments


def uniform_var(bound):
    return bound**2 / 3


def test_gabor_init_statistics():
    # GaborNet(L = 3): γ ~ Gamma(6/4, 1) for every filter (mean 1.5, variance 1.5), one per hidden unit;
    # μ ~ U(−1, 1); W = U(±1/√dim_in)·(256/√4)·γ; b ~ U(−π, π); U_l ~ U(±√(1/hidden)).
    # 2,048 γ draws: the standard error of their mean is 0.027, the margins are ≥ 9 of them.
    torch.manual_seed(0)
    hidden, dim = 512, 3
    net = GaborNet(dim, 8, hidden=hidden, num_layers=3)
    gammas = torch.cat([g.detach() for g in net.gammas])
    assert all(g.shape == (hidden, 1) for g in net.gammas)  # isotropic: one scale per hidden unit
    assert bool((gammas > 0).all())
    assert abs(gammas.mean().item() - 1.5) < 0.25 and abs(gammas.var().item() - 1.5) < 0.5
    # every filter has the same law (MAGNet's first filter has mean 6, its last 1.5)
    for g in net.gammas:
        assert abs(g.mean().item() - 1.5) < 0.4
    unit = torch.cat([(f.weight.detach() / (128.0 * g.detach())).flatten() for f, g in zip(net.filters, net.gammas)])
    assert unit.abs().max() <= 1 / math.sqrt(dim) * (1 + 1e-5)
    assert abs(unit.var().item() / uniform_var(1 / math.sqrt(dim)) - 1) < 0.1  # 6,144 draws: sd 1.1 %
    mus = torch.cat([m.detach().flatten() for m in net.mus])
    assert mus.abs().max() <= 1 and abs(mus.var().item() / uniform_var(1.0) - 1) < 0.1
    biases = torch.cat([f.bias.detach() for f in net.filters])
    assert biases.abs().max() <= math.pi and abs(biases.var().item() / uniform_var(math.pi) - 1) < 0.15
    lin = torch.cat([lin.weight.detach().flatten() for lin in net.linears])
    assert lin.abs().max() <= math.sqrt(1 / hidden) and abs(lin.var().item() / uniform_var(math.sqrt(1 / hidden)) - 1) < 0.05
    # MAGNet's γ law differs per filter, so the two nets are not the same init under two names
    mag = MAGNet(dim, 8, hidden=hidden, num_layers=3)
    assert mag.gammas[0].mean().item() > 5 > 2 > net.gammas[0].mean().item()


def test_gabor_matches_the_isotropic_gabor_formula():
    net = GaborNet(3, 5, hidden=6, num_layers=2).double()
    x = torch.rand(40, 3, dtype=torch.float64) * 2 - 1

    def lin(layer, v):
        return v @ layer.weight.detach().t() + layer.bias.detach()

    def gabor(i, v):
        gamma, mu = net.gammas[i].detach()[:, 0], net.mus[i].detach()  # [hidden], [hidden, dim]
        dist2 = ((v[:, None, :] - mu[None]) ** 2).sum(-1)
        return torch.exp(-0.5 * gamma**2 * dist2) * torch.sin(lin(net.filters[i], v))

    z = gabor(0, x)
    for i, layer in enumerate(net.linears):
        z = gabor(i + 1, x) * lin(layer, z)
    want = lin(net.output, z)
    assert (net(x) - want).abs().max() <= 1e-12 * want.abs().max()
    assert sum(p.numel() for p in net.parameters()) == 3 * (3 * 6 + 6 + 6 + 6 * 3) + 2 * (36 + 6) + (6 * 5 + 5)


@pytest.mark.parametrize("norm", ["none", "batch", "layer"])
def test_mlp_init_is_pytorch_default_and_norms_normalise(norm):
    # the original's MLP keeps PyTorch's default init: weights and biases U(±1/√fan_in)
    torch.manual_seed(0)
    hidden = 512
    net = MLP(3, 64, hidden=hidden, num_layers=3, norm=norm, activation="GELU")
    for layer in [*net.hidden_layers, net.output]:
        bound = 1 / math.sqrt(layer.in_features)
        w = layer.weight.detach()
        assert w.abs().max() <= bound and layer.bias.detach().abs().max() <= bound
        if w.numel() > 10_000:
            assert abs(w.var().item() / uniform_var(bound) - 1) < 0.05
    # what each hidden norm hands the activation: per unit over points (batch), per point over units (layer)
    seen = []
    hooks = [n.register_forward_hook(lambda m, i, o: seen.append(o.detach())) for n in net.norms]
    net.train()
    net(torch.rand(7, 100, 3) * 2 - 1)
    for h in hooks:
        h.remove()
    for out in seen:
        flat = out.reshape(-1, hidden)
        if norm == "batch":
            # variance 1 − ε/σ² (ε = 1e-5; the measured worst is 0.9995)
            assert flat.mean(0).abs().max() < 1e-4 and (flat.var(0, unbiased=False) - 1).abs().max() < 1e-2
        elif norm == "layer":
            assert flat.mean(1).abs().max() < 1e-4 and (flat.var(1, unbiased=False) - 1).abs().max() < 1e-2
        else:
            assert flat.var(0).mean() < 0.5  # no norm: a U(±1/√fan_in) layer shrinks the variance
    # the net is the stated composition
    x = torch.rand(5, 3)
    h = x
    for layer, n in zip(net.hidden_layers, net.norms):
        h = torch.nn.functional.gelu(n(layer(h)))
    assert torch.allclose(net(x), net.output(h), atol=1e-6)


def test_specs_select_the_nets_and_reject_mistakes():
    assert parse_kernel_net("Gabor") == ("GaborNet", {})
    assert parse_kernel_net("mlp(norm=BatchNorm, activation=swish)") == ("MLP", {"norm": "BatchNorm",
                                                                                 "activation": "Swish"})
    assert parse_kernel_net("MLP") == ("MLP", {"norm": "none", "activation": "ReLU"})
    net = make_kernel_net("MLP(norm=layer, activation=Tanh)", 2, 4, 8)
    assert isinstance(net, MLP) and net.norm == "layer" and isinstance(net.activations[0], torch.nn.Tanh)
    assert isinstance(make_kernel_net("GaborNet", 2, 4, 8), GaborNet)
    for bad in ("MLP(norm=group)", "MLP(activation=Foo)", "SIREN(norm=batch)", "MLP(depth=3)", "Gabbor"):
        with pytest.raises(ValueError, match="expected one of 'SIREN'") as info:
            parse_kernel_net(bad)
        assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="kernel_layers must be >= 2 for a MLP"):
        LiftingConv(1, 2, 3, kernel_net="MLP", kernel_layers=1)
    # the command line takes the same specs; a wrong one is a usage error naming the flag
    parser = add_train_arguments(argparse.ArgumentParser())
    assert parser.parse_args(["--kernel-net", "MLP(norm=batch, activation=GELU)"]).kernel_net == \
        "MLP(norm=batch,activation=GELU)"  # no spaces: it names the run directory
    with pytest.raises(SystemExit):
        parser.parse_args(["--kernel-net", "MLP(norm=group)"])


def test_presets_take_the_new_nets():
    model = PartialGCNN.from_preset("mnist6-180-se2-partial", kernel_net="GaborNet")
    convs = [m for m in model.modules() if isinstance(m, (LiftingConv, GroupConv))]
    assert convs and all(isinstance(m.kernel_net, GaborNet) for m in convs)
    gcnn = GCNN.from_preset("rotmnist-se2-partial", kernel_net="MLP(norm=batch, activation=GELU)",
                            hidden=8, num_blocks=1, block_width_factors=(1, 1), pool_blocks=(), dropout_blocks=())
    nets = [m.kernel_net for m in gcnn.modules() if isinstance(m, (LiftingConv, GroupConv))]
    assert nets and all(isinstance(n, MLP) and n.norm == "batch" and n.activation == "GELU" for n in nets)


SMALL = dict(in_channels=2, num_classes=5, hidden=4, block_width_factors=(1, 1, 2, 1), pool_blocks=(),
             kernel_size=3, kernel_hidden=8, method="deterministic")


def warmed(model, x):
    model.train()  # BatchNorm running statistics (the model's and a batch-norm MLP's) away from their init
    with torch.no_grad():
        for _ in range(3):
            model(x)
    return model.eval()


@pytest.mark.parametrize("kernel_net", ["GaborNet", "MLP(norm=batch, activation=GELU)", "MLP(norm=layer)"])
def test_exact_invariance_with_the_new_nets(kernel_net):
    torch.manual_seed(0)
    x = torch.randn(2, 2, 9, 9)
    se2 = warmed(PartialGCNN(**SMALL, num_elements=4, kernel_net=kernel_net), x)
    for t in (rot90(1), rot90(2)):
        assert_invariant(se2, x, t, rtol=1e-5)
    e2 = warmed(PartialGCNN(**SMALL, group="E2", num_elements=8, kernel_net=kernel_net), x)
    for t in (rot90(1), flip_w()):
        assert_invariant(e2, x, t, rtol=1e-5)
    # the check can fail with these kernels: a C_2 model built with them is not invariant to 90° turns
    c2 = warmed(PartialGCNN(**SMALL, num_elements=2, partial=False, kernel_net=kernel_net), x)
    with pytest.warns(UserWarning, match="not an exact symmetry"), pytest.raises(AssertionError):
        assert_invariant(c2, x, rot90(1), rtol=1e-5)


def test_batch_norm_mlp_normalises_a_single_kernel_point_with_its_running_statistics():
    # one point has no batch variance (a T(2) model's 1×1 shortcut, a partial layer shrunk to one element)
    torch.manual_seed(0)
    net = MLP(2, 3, hidden=4, norm="batch")
    net(torch.rand(50, 2))  # running statistics away from their init
    stats = [n.running_mean.clone() for n in net.norms]
    one = torch.rand(1, 1, 2)
    trained = net(one)
    assert all(torch.equal(a, n.running_mean) for a, n in zip(stats, net.norms))  # left unchanged
    assert torch.allclose(trained, net.eval()(one))
    model = PartialGCNN(**SMALL, num_elements=1, partial=False, kernel_net="MLP(norm=batch)")
    model(torch.randn(2, 2, 9, 9)).sum().backward()  # trains
