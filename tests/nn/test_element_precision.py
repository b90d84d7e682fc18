"""Group elements of another precision, or rounded to the other side of 2π, give the same layer output.

The official coordinate h/π − 1 jumps from +1 to −1 where the relative angle wraps at 2π, so before the
fix float32 elements changed a GroupConv's output by ~30 %, elements shifted by −1e-9 rad by ~60 %,
and integer elements silently truncated the angles (issue 15).
"""

import math

import pytest
import torch

from pgcnn_triton import E2, SE2, GroupConv, PointwiseGroupConv
from pgcnn_triton.groups import ANGLE_TOLERANCE, TWO_PI
from tests.helpers import rel_err


def lifted_elements(group, n):
    """What a lifting layer gives in deterministic evaluation (u = 0.5): relative angles hit 0 ↔ 2π
    against a partial layer's output elements θ·(2π(i + ½)/n − π) mod 2π."""
    angles = (TWO_PI * (torch.arange(n if group is SE2 else n // 2, dtype=torch.float64) + 0.5)
              / (n if group is SE2 else n // 2))[None]
    return angles if group is SE2 else group.mirrored(angles)


def shifted(group, g, delta):
    if group is SE2:
        return g + delta
    return torch.stack([g[..., 0] + delta, g[..., 1]], -1)


LAYERS = {
    "SE2 partial": dict(group="SE2"),
    "SE2 full, elements reused": dict(group="SE2", partial=False, per_layer=False),
    "E2 partial": dict(group="E2"),
}


@pytest.mark.parametrize("name", LAYERS)
def test_float32_and_shifted_elements_give_the_float64_output(name):
    torch.manual_seed(0)
    opts = LAYERS[name]
    group = SE2 if opts["group"] == "SE2" else E2
    conv = GroupConv(3, 4, kernel_size=5, num_elements=8, **opts).eval()
    g = lifted_elements(group, 8)
    x = torch.randn(2, 3, 8, 9, 9)
    with torch.no_grad():
        exact = conv(x, g)[0]
        assert rel_err(conv(x, g.float())[0], exact) <= 1e-5       # float32 rounding of the angles only
        for delta in (-1e-9, 1e-9):                                  # the identity may not flip sides
            assert rel_err(conv(x, shifted(group, g, delta))[0], exact) <= 1e-6, delta


def test_pointwise_conv_accepts_any_floating_elements():
    torch.manual_seed(0)
    conv = PointwiseGroupConv(3, 2, group="SE2", num_elements=8)
    g = lifted_elements(SE2, 8)
    x = torch.randn(1, 3, 8, 4, 4)
    with torch.no_grad():
        exact = conv(x, g, g)[0]
        assert rel_err(conv(x, g.float(), g)[0], exact) <= 1e-5
        assert rel_err(conv(x, g - 1e-9, g)[0], exact) <= 1e-6
        # fp16 angles are off by up to 2e-3 rad, more than the tolerance: accepted, converted exactly
        h = g.half()
        assert torch.equal(conv(x, h, h)[0], conv(x, h.double(), h.double())[0])


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_integer_elements_are_rejected(dtype):
    conv = GroupConv(2, 2, kernel_size=3, num_elements=4)
    pointwise = PointwiseGroupConv(2, 2, num_elements=4)
    x = torch.randn(1, 2, 4, 5, 5)
    g = lifted_elements(SE2, 4)
    with pytest.raises(TypeError, match=r"elements must be a floating-point tensor.*" + str(dtype)):
        conv(x, g.to(dtype))
    with pytest.raises(TypeError, match="elements_out must be a floating-point"):
        pointwise(x, g, g.to(dtype))


def test_angles_within_the_tolerance_of_two_pi_are_the_identity():
    phi = torch.tensor([0.0, TWO_PI - 0.5 * ANGLE_TOLERANCE, TWO_PI - 1e-12, TWO_PI - 2 * ANGLE_TOLERANCE])
    coords = SE2.relative_coordinates(phi.to(torch.float64))[..., 0]
    assert torch.allclose(coords[:3], torch.full((3,), -1.0, dtype=torch.float64), atol=1e-6)
    assert coords[3] == pytest.approx(1.0 - 2 * ANGLE_TOLERANCE / math.pi)   # just outside: still the far end
    e2 = E2.make(phi.to(torch.float64), -torch.ones(4, dtype=torch.float64))
    assert torch.allclose(E2.relative_coordinates(e2)[:3, 0], coords[:3])
    assert (E2.relative_coordinates(e2)[:, 1] == -1).all()
