"""E(2) mirror-logit gradients: ``reference`` = the original's unreduced inverse, ``clean`` = reduced.

A partial E(2) layer A emits elements whose mirror flags carry the straight-through gradient of its
mirror logit. A second layer B consumes them. The flag's gradient flows through B's relative angle
``φ_in + m_in·(−m_out·φ_out)``, so it depends on whether the inverse's angle ``−m_out·φ_out`` is
reduced mod 2π (groups.py). The hand-written B below is built from docs/method.md#group-law, #group-convolution alone:
coordinates (y', x', h_φ/π − 1, m_out·m_in) at the in-disk taps, the kernel net, a dense masked conv.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from pgcnn_triton.kernels import disk_taps

from pgcnn_triton.nn import GroupConv, LiftingConv
from tests.helpers import rel_err

TWO_PI = 2 * math.pi


def hand_written_group_conv(layer, x, g_in, g_out, reduce):
    """docs/method.md#group-convolution for one shared sample set, float64, with the inverse reduced or not."""
    phi_o, m_o = g_out[0, :, 0], g_out[0, :, 1]            # [No]
    phi_i, m_i = g_in[0, :, 0], g_in[0, :, 1]              # [Ni]
    inv = -m_o * phi_o                                      # (φ, m)⁻¹ = (−m·φ, m)
    if reduce:
        inv = torch.remainder(inv, TWO_PI)
    rel = torch.remainder(phi_i[None, :] + m_i[None, :] * inv[:, None], TWO_PI)  # (φ2 + m2·φ1) mod 2π
    mirror = m_o[:, None] * m_i[None, :]
    taps = disk_taps(layer.kernel_size)
    y, xx = taps.points[:, 0], taps.points[:, 1]           # [T]
    c, s = torch.cos(inv)[:, None], torch.sin(inv)[:, None]
    # M(φ, m) = [[cos φ, sin φ], [−m sin φ, m cos φ]] applied to (y, x), at g_out⁻¹ = (inv, m_o)
    ry = c * y + s * xx                                     # [No, T]
    rx = m_o[:, None] * (-s * y + c * xx)
    no, ni, t = phi_o.numel(), phi_i.numel(), y.numel()
    coords = torch.stack([
        ry[:, None, :].expand(no, ni, t), rx[:, None, :].expand(no, ni, t),
        (rel / math.pi - 1.0)[:, :, None].expand(no, ni, t), mirror[:, :, None].expand(no, ni, t),
    ], -1)
    values = layer.kernel_net(coords)                       # [No, Ni, T, Cout·Cin], (o c) order
    c_out, c_in, k = layer.out_channels, layer.in_channels, layer.kernel_size
    values = values.reshape(no, ni, t, c_out, c_in)
    dense = values.new_zeros(c_out, no, c_in, ni, k * k)
    cells = (taps.offsets[:, 0] + k // 2) * k + taps.offsets[:, 1] + k // 2
    dense[..., cells] = values.permute(3, 0, 4, 1, 2)       # [o, n, c, i, t]
    weight = dense.reshape(c_out * no, c_in * ni, k, k)
    out = F.conv2d(x.reshape(x.shape[0], c_in * ni, *x.shape[-2:]), weight, padding=k // 2)
    return out.reshape(x.shape[0], c_out, no, *out.shape[-2:]) + layer.bias[None, :, None, None, None]


def make_layers(estimator):
    # τ = 10 keeps the relaxed sample y = sigmoid((2p + noise)/τ) off saturation (dy/dp ≠ 0) while
    # p = 10 opens the gate (y > 0.5) unless the logistic noise is below −20 (probability e⁻²⁰)
    opts = dict(group="E2", num_elements=8, partial=True, estimator=estimator, gumbel_init_temp=10.0)
    torch.manual_seed(3)
    lift = LiftingConv(2, 3, 5, **opts).double()
    a = GroupConv(3, 3, 5, **opts).double()
    b = GroupConv(3, 2, 5, **opts).double()
    with torch.no_grad():
        a.sampler.probs.copy_(torch.tensor([0.7, 10.0]))
        b.sampler.probs.copy_(torch.tensor([0.8, 10.0]))
    return lift, a, b


def mirror_logit_grad(estimator, hand=None, seed=11):
    """Gradient of A's probs with B by the library (hand=None) or by hand (hand = reduce flag)."""
    lift, a, b = make_layers(estimator)
    torch.manual_seed(seed)
    x = torch.randn(2, 2, 9, 9, dtype=torch.float64)
    h, g0 = lift(x)
    h, g1 = a(h, g0)
    assert g1.shape[1] == 6 and bool((g1[0, 3:, 1] == -1).all())  # 3 rotations, mirrors sampled
    y, g2 = b(h, g1)
    if hand is not None:
        y = hand_written_group_conv(b, h, g1, g2.detach(), reduce=hand)
    weights = torch.randn(y.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    (y * weights).sum().backward()
    return a.sampler.probs.grad.clone()


def test_hand_written_layer_matches_the_library_forward():
    lift, a, b = make_layers("reference")
    x = torch.randn(2, 2, 9, 9, dtype=torch.float64)
    h, g0 = lift(x)
    h, g1 = a(h, g0)
    y, g2 = b(h, g1)
    for reduce in (False, True):
        assert rel_err(hand_written_group_conv(b, h, g1, g2, reduce), y) < 1e-12


def test_reference_mirror_logit_gradient_is_the_originals_unreduced_inverse():
    library = mirror_logit_grad("reference")
    unreduced = mirror_logit_grad("reference", hand=False)
    reduced = mirror_logit_grad("reference", hand=True)
    assert library[1] != 0
    assert rel_err(library, unreduced) < 1e-10
    # the check can fail: the reduced inverse gives a different mirror-logit gradient
    assert abs(float(reduced[1] - unreduced[1])) > 1e-3 * abs(float(unreduced[1]))


def test_clean_mirror_logit_gradient_uses_the_reduced_inverse():
    library = mirror_logit_grad("clean")
    reduced = mirror_logit_grad("clean", hand=True)
    unreduced = mirror_logit_grad("clean", hand=False)
    assert rel_err(library, reduced) < 1e-10
    assert abs(float(reduced[1] - unreduced[1])) > 1e-3 * abs(float(unreduced[1]))


@pytest.mark.parametrize("estimator", ["clean", "reference"])
def test_theta_gradient_does_not_depend_on_the_inverse_convention(estimator):
    # only input mirror flags see the 2π terms: A's θ gradient is the same either way
    reduced = mirror_logit_grad(estimator, hand=True)
    unreduced = mirror_logit_grad(estimator, hand=False)
    assert abs(float(reduced[0] - unreduced[0])) <= 1e-10 * abs(float(unreduced[0]))
