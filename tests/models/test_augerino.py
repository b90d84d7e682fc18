"""Augerino baselines (issue 34): the model against an independent re-implementation of the original's
description (float64, forward and backward), its two quirks and their corrected options, the presets'
parameter counts, the learned range read out like a partial layer's, and freezing."""

import math

import pytest
import torch
import torch.nn.functional as F

from pgcnn_triton import freeze, learned_equivariance
from pgcnn_triton.models import (
    AUGERINO_CKRESNET_PRESETS,
    AUGERINO_GCNN_PRESETS,
    T2_SAMPLING,
    AugerinoCKResNet,
    AugerinoGCNN,
    PartialGCNN,
)
from pgcnn_triton.training.plots import plot_learned_equivariance

NET = dict(in_channels=1, num_classes=3, hidden=3, num_blocks=1, block_width_factors=None, pool_blocks=(1,),
           kernel_size=3, kernel_hidden=4)


def tiny(**options):
    return AugerinoCKResNet(**NET, num_elements=4, **options)


# -- an independent re-implementation of the description ----------------------------------------------


def reference_grid(angle, size):
    """The original's sampling grid, by hand: ``affine_grid`` with align_corners=True of
    [[cos, −sin, 0], [sin, cos, 0]] (normalised output (x, y) ↦ input (x', y'))."""
    b, _, h, w = size
    ys = torch.linspace(-1.0, 1.0, h, dtype=torch.float64)
    xs = torch.linspace(-1.0, 1.0, w, dtype=torch.float64)
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    cos, sin = torch.cos(angle), torch.sin(angle)
    grid = torch.stack([cos * x - sin * y, sin * x + cos * y], -1)
    return grid.expand(b, h, w, 2)


def reference_forward(x, theta, u, num_elements, network, mirror_logit=None):
    """Augerino as described: n = ceil(N|θ|) angles θ·(2π(i + u)/n − π) (E(2): over N/2 rotations, each
    also mirrored when the mirror logit is > 0 in deterministic evaluation); every image rotated by each
    angle (bilinear, zeros, sampled with align_corners=False) and flipped along W when mirrored; the network
    on all copies in one batch; the mean of the logits over the elements."""
    total = num_elements if mirror_logit is None else num_elements // 2
    n = min(max(math.ceil(total * abs(float(theta.detach()))), 1), total)
    angles = [theta * (2 * math.pi * (i + u) / n - math.pi) for i in range(n)]
    elements = [(a, False) for a in angles]
    if mirror_logit is not None and float(mirror_logit) > 0:
        elements += [(a, True) for a in angles]
    copies = []
    for angle, mirrored in elements:
        rotated = F.grid_sample(x, reference_grid(angle, x.shape), mode="bilinear", padding_mode="zeros",
                                align_corners=False)
        copies.append(rotated.flip(-1) if mirrored else rotated)
    logits = network(torch.cat(copies))
    return logits.reshape(len(elements), x.shape[0], -1).mean(0)


def fixed_offsets(model, u):
    """Fix the sampler's in-cell offset u (the random part of a draw) for a training forward."""
    model.augment.sampler.offsets = lambda batch, device: torch.full((1, 1), u, dtype=torch.float64, device=device)


@pytest.mark.parametrize("group,theta,mirror", [("SE2", 0.6, None), ("E2", -0.7, 0.8), ("E2", 0.9, -0.5)])
def test_matches_an_independent_reimplementation_forward_and_backward_float64(group, theta, mirror):
    torch.manual_seed(1)
    model = tiny(group=group).double()
    model.augment.sampler.set_probs([theta] if mirror is None else [theta, mirror])
    network = PartialGCNN(**NET, **T2_SAMPLING).double()
    network.load_state_dict(model.network.state_dict())
    x = torch.randn(3, 1, 11, 11, dtype=torch.float64)
    weights = torch.randn(3, 3, dtype=torch.float64)
    u = 0.3
    # training forward (batch statistics over all copies) at a fixed offset; E(2): deterministic mirror gate
    model.train()
    network.train()
    fixed_offsets(model, u)
    if group == "E2":
        model.augment.sampler.train(False)  # the mirror gate decides by its logit: no Gumbel noise
        model.augment.sampler.eval_mode = "stochastic"
        model.augment.sampler._gate = lambda logits, tau: ((logits > 0).double(), (logits > 0).double())
    out = model(x)
    (out * weights).sum().backward()

    theta_ref = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
    mirror_ref = None if mirror is None else torch.tensor(mirror, dtype=torch.float64)
    ref = reference_forward(x, theta_ref, u, 4, network, mirror_ref)
    (ref * weights).sum().backward()

    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    grad = model.augment.sampler.probs.grad
    torch.testing.assert_close(grad[0], theta_ref.grad, rtol=1e-9, atol=1e-10)
    assert float(theta_ref.grad.abs()) > 1e-6  # θ really learns through the rotations
    if group == "E2":
        assert float(grad[1]) == 0.0  # the original's hard flip: no gradient to the mirror logit
    for (name, p), q in zip(model.network.named_parameters(), network.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-9, atol=1e-10, msg=name)


def test_deterministic_evaluation_uses_the_centred_offset_and_matches_the_reference():
    model = tiny(group="SE2").double().eval()
    model.augment.sampler.set_theta(0.3)
    network = PartialGCNN(**NET, **T2_SAMPLING).double().eval()
    network.load_state_dict(model.network.state_dict())
    x = torch.randn(2, 1, 9, 9, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference_forward(x, torch.tensor(0.3, dtype=torch.float64), 0.5, 4,
                                                               network), rtol=1e-10, atol=1e-10)
    angles = model.evaluation_elements()
    # ceil(4·0.3) = 2 angles θ·(2π(i + ½)/2 − π) = ∓0.3·π/2
    expected = torch.tensor([[-0.3 * math.pi / 2, 0.3 * math.pi / 2]], dtype=torch.float64)
    torch.testing.assert_close(angles, torch.remainder(expected, 2 * math.pi))


# -- the quirks and their corrected options -------------------------------------------------------------


def test_original_resampling_shrinks_the_image_and_consistent_is_the_identity():
    x = torch.rand(2, 1, 8, 8)
    zero = torch.zeros(1, 1, dtype=torch.float64)
    original = tiny().augment.transform(x, zero)
    consistent = tiny(resampling="consistent").augment.transform(x, zero)
    torch.testing.assert_close(consistent, x)
    # the original's identity scales about the centre by (W − 1)/W: sample positions j·W/(W − 1) − ½
    assert float((original - x).abs().max()) > 0.05
    coords = torch.arange(8, dtype=torch.float64) * 8 / 7 - 0.5
    weights = F.relu(1 - (coords[:, None] - torch.arange(8, dtype=torch.float64)[None]).abs())
    expected = torch.einsum("ik,jl,bckl->bcij", weights, weights, x.double())
    torch.testing.assert_close(original.double(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mirror_gradient", ["none", "flag", "features"])
def test_mirror_logit_learns_only_with_a_corrected_option(mirror_gradient):
    torch.manual_seed(0)
    model = tiny(group="E2", mirror_gradient=mirror_gradient, gumbel_init_temp=0.5).train()
    model.augment.sampler.set_probs([0.8, 1.0])  # mirrors drawn with probability sigmoid(2) = 0.88 per step
    x = torch.randn(2, 1, 9, 9)
    for _ in range(5):  # gradients accumulate over 5 draws: mirrors drawn on some (all but 1e-4 of the time)
        model(x).square().sum().backward()
    grad = float(model.augment.sampler.probs.grad[1])
    if mirror_gradient == "none":
        assert grad == 0.0
    else:
        assert grad != 0.0


def test_flag_mirroring_is_the_hard_flip_in_value():
    x = torch.randn(2, 1, 9, 9)
    angles = torch.tensor([[0.4, 1.3]], dtype=torch.float64)
    mirrors = torch.tensor([[-1.0, -1.0]], dtype=torch.float64)
    hard = tiny(group="E2").augment.transform(x, angles, mirrors)
    flag = tiny(group="E2", mirror_gradient="flag").augment.transform(x, angles, mirrors)
    torch.testing.assert_close(flag, hard, rtol=1e-5, atol=1e-5)


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="resampling must be one of"):
        tiny(resampling="bilinear")
    with pytest.raises(ValueError, match="needs group='E2'"):
        tiny(mirror_gradient="flag")
    with pytest.raises(ValueError, match="last_conv_t2=True does not apply"):
        tiny(last_conv_t2=True)
    with pytest.raises(ValueError, match="method='random'"):
        tiny(method="deterministic")


# -- presets, read-out, freezing ------------------------------------------------------------------------

#: docs/method.md#parameter-counts' T(2) counts of the same widths (rotated MNIST CKResNet 450,074; CIFAR-10 452,186; CIFAR-100
#: 458,036; GCNN 3,992,106 / 3,994,410 / 4,017,540) plus θ (SE(2)) or θ and the mirror logit (E(2)).
PRESET_COUNTS = {
    (AugerinoCKResNet, "rotmnist-se2-partial"): 450_075, (AugerinoCKResNet, "rotmnist-e2-partial"): 450_076,
    (AugerinoCKResNet, "cifar10-se2-partial"): 452_187, (AugerinoCKResNet, "cifar10-e2-partial"): 452_188,
    (AugerinoCKResNet, "cifar100-se2-partial"): 458_037, (AugerinoCKResNet, "cifar100-e2-partial"): 458_038,
    (AugerinoGCNN, "rotmnist-se2-partial"): 3_992_107, (AugerinoGCNN, "cifar10-se2-partial"): 3_994_411,
    (AugerinoGCNN, "cifar100-se2-partial"): 4_017_541,
}


def test_presets_parameter_counts_are_the_t2_network_plus_the_learned_variables():
    assert {name for cls, name in PRESET_COUNTS if cls is AugerinoGCNN} == set(AUGERINO_GCNN_PRESETS)
    assert {name for cls, name in PRESET_COUNTS if cls is AugerinoCKResNet} <= set(AUGERINO_CKRESNET_PRESETS)
    for (cls, name), count in PRESET_COUNTS.items():
        model = cls.from_preset(name)
        learned = 1 if model.sampling.group == "SE2" else 2
        network = sum(p.numel() for p in model.network.parameters())
        assert sum(p.numel() for p in model.parameters()) == count == network + learned, name
        assert model.augment.sampler.probs.numel() == learned
        # the wrapped network is translation-only: one identity element per layer
        assert all(row["group"] is None for row in learned_equivariance(model.network)), name
    # the original's CIFAR-10 "E2" command runs SE2: the preset's group override reproduces it
    assert AugerinoCKResNet.from_preset("cifar10-e2-partial", group="SE2").sampling.group == "SE2"


def test_learned_range_reads_out_like_a_partial_layer(tmp_path):
    model = tiny(group="E2")
    model.augment.sampler.set_probs([-0.4, -1.0])
    rows = model.learned_equivariance()
    assert len(rows) == 1 and rows[0]["layer"] == "augment" and rows[0]["group"] == "E2"
    assert rows[0]["theta"] == pytest.approx(0.4)
    assert rows[0]["mirror_probability"] == pytest.approx(1 / (1 + math.exp(2.0)))
    # the library-wide read-out sees the augmentation among the network's T(2) layers
    assert learned_equivariance(model)[0] == rows[0]
    full = tiny(group="SE2", partial=False)
    assert full.learned_equivariance()[0]["theta"] == 1.0 and sum(p.numel() for p in full.augment.parameters()) == 0
    assert plot_learned_equivariance({"augerino": rows}, tmp_path / "le.png").stat().st_size > 1000


@pytest.mark.parametrize("shape_mode", ["dynamic", "static"])
def test_freeze_fixes_the_evaluation_elements(shape_mode):
    model = tiny(group="E2", shape_mode=shape_mode).eval()
    model.augment.sampler.set_probs([0.55, 0.3])
    x = torch.randn(2, 1, 9, 9)
    frozen = model.freeze(example_input=x)
    assert frozen.augment.sampler is None and frozen.learned_equivariance() == []
    assert frozen.augment.frozen_elements.shape == (1, 2 * 2, 2)  # ceil(2·0.55) = 2 rotations, both mirrored
    with torch.no_grad():
        torch.testing.assert_close(frozen(x), model(x), rtol=1e-5, atol=1e-5)
    # a checkpoint of a frozen model loads into the frozen skeleton of a fresh one (other θ, other count)
    skeleton = freeze(tiny(group="E2", shape_mode=shape_mode), example_input=x)
    skeleton.load_state_dict(frozen.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(skeleton(x), frozen(x))
