"""Gradients through the layers: gradcheck to θ, straight-through gradients to the gate logits."""

import pytest
import torch
from torch.func import functional_call

from pgcnn_triton.nn import GroupConv, LiftingConv
from pgcnn_triton.sampling import relaxed_bernoulli


def seeded_layer_output(layer, x, g, name, value, seed=0):
    torch.manual_seed(seed)
    params = dict(layer.named_parameters())
    params[name] = value
    return functional_call(layer, params, (x, g))[0]


@pytest.mark.parametrize("group,n", [("SE2", 8), ("E2", 8)])
def test_gradcheck_theta_through_group_conv(group, n):
    kw = dict(group=group, num_elements=n, kernel_hidden=6)
    lift = LiftingConv(1, 2, 3, **kw).double()
    layer = GroupConv(2, 2, 3, **kw).double()
    x, g = lift(torch.randn(1, 1, 5, 5, dtype=torch.float64))
    x, g = x.detach(), g.detach()
    theta = layer.sampler.probs.detach().clone()
    theta[0] = 0.7  # n = ceil(8·0.7) = 6 (SE2) or ceil(4·0.7) = 3 (E2): away from a step
    if group == "E2":
        theta[1] = 20.0  # mirrors always on: the gate is constant, θ is the only path
    theta.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: seeded_layer_output(layer, x, g, "sampler.probs", p), (theta,))


def test_gradcheck_kernel_net_and_bias_through_lifting():
    lift = LiftingConv(1, 2, 3, group="SE2", num_elements=4, method="deterministic", kernel_hidden=4).double()
    x = torch.randn(1, 1, 5, 5, dtype=torch.float64)
    w = lift.kernel_net.output.weight.detach().clone().requires_grad_(True)
    b = lift.bias.detach().clone().requires_grad_(True)

    def f(w, b):
        return functional_call(lift, {**dict(lift.named_parameters()), "kernel_net.output.weight": w, "bias": b},
                               (x,))[0]

    assert torch.autograd.gradcheck(f, (w, b))


def test_gradcheck_relaxed_bernoulli():
    logits = torch.randn(5, dtype=torch.float64, requires_grad=True)

    def f(lg):
        torch.manual_seed(0)
        return relaxed_bernoulli(lg, torch.tensor(0.7, dtype=torch.float64))

    assert torch.autograd.gradcheck(f, (logits,))


@pytest.mark.parametrize("shape_mode", ["dynamic", "static"])
def test_mirror_logit_receives_gradient_through_layer(shape_mode):
    kw = dict(group="E2", num_elements=8, kernel_hidden=6, shape_mode=shape_mode, gumbel_init_temp=1.0)
    lift = LiftingConv(1, 2, 3, **kw)
    layer = GroupConv(2, 2, 3, **kw)
    x, g = lift(torch.randn(2, 1, 7, 7))[:2]
    grads = []
    for seed in range(12):
        torch.manual_seed(seed)
        y, g_out, *mask = layer(x.detach(), g.detach())
        grad = torch.autograd.grad(y.square().sum(), layer.sampler.probs)[0]
        assert torch.isfinite(grad).all()
        grads.append((grad[1].item(), y.shape[2] == 8 and (shape_mode == "dynamic" or bool(mask[0].all()))))
    opened = [gr for gr, mirrored in grads if mirrored]
    closed = [gr for gr, mirrored in grads if not mirrored]
    assert opened and all(v != 0 for v in opened)
    assert all(v == 0 for v in closed)


def test_static_mode_zeroes_gated_features_and_keeps_shape():
    kw = dict(group="E2", num_elements=8, kernel_hidden=6, shape_mode="static")
    lift = LiftingConv(1, 2, 3, **kw)
    layer = GroupConv(2, 3, 3, **kw).eval()
    with torch.no_grad():
        layer.sampler.probs[1] = -5.0  # mirrors off in deterministic evaluation
    x, g, lift_mask = lift(torch.randn(2, 1, 7, 7))
    assert lift_mask is None  # the lifting layer samples the full group
    y, g_out, mask = layer(x, g, lift_mask)
    assert y.shape == (2, 3, 8, 7, 7) and g_out.shape == (1, 8, 2)
    assert torch.equal(mask, torch.tensor([[True] * 4 + [False] * 4]))
    assert bool((y[:, :, 4:] == 0).all()) and bool((y[:, :, :4] != 0).any())
    # masked inputs contribute nothing, whatever they hold
    x2 = x.clone()
    x2[:, :, 5] = 1e3
    torch.manual_seed(0)
    a = layer(x, g, mask)[0]
    torch.manual_seed(0)
    b = layer(x2, g, mask)[0]
    assert torch.equal(a, b)
