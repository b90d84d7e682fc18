import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pgcnn_triton.groups import E2, SE2, get_group
from tests.helpers import angular_distance


def random_elements(group, n, seed):
    gen = torch.Generator().manual_seed(seed)
    angle = torch.rand(1, n, generator=gen, dtype=torch.float64) * 2 * math.pi
    if group is SE2:
        return angle
    mirror = torch.where(torch.rand(1, n, generator=gen) < 0.5, -1.0, 1.0).to(torch.float64)
    return group.make(angle, mirror)


def same_elements(group, a, b, atol=1e-9):
    ok = angular_distance(group.angle(a), group.angle(b)) < atol
    if group.element_rank:
        ok &= group.mirror(a) == group.mirror(b)
    return bool(ok.all())


@pytest.mark.parametrize("group", [SE2, E2])
@given(seed=st.integers(0, 10_000))
def test_group_axioms(group, seed):
    a, b, c = (random_elements(group, 6, seed + i) for i in range(3))
    assert same_elements(group, group.multiply(group.multiply(a, b), c), group.multiply(a, group.multiply(b, c)))
    identity = group.make(torch.zeros(1, 6, dtype=torch.float64))
    assert same_elements(group, group.multiply(a, group.inverse(a)), identity)
    assert same_elements(group, group.multiply(group.inverse(a), a), identity)
    assert same_elements(group, group.multiply(identity, a), a)


@pytest.mark.parametrize("group", [SE2, E2])
@given(seed=st.integers(0, 10_000))
def test_matrix_is_a_homomorphism(group, seed):
    a, b = random_elements(group, 5, seed), random_elements(group, 5, seed + 1)
    lhs = group.matrix(group.multiply(a, b))
    assert torch.allclose(lhs, group.matrix(a) @ group.matrix(b), atol=1e-12)
    assert torch.allclose(group.matrix(group.inverse(a)), torch.linalg.inv(group.matrix(a)), atol=1e-12)


def test_conventions_of_method_section_2_2():
    # O(2) product is (φ2 + m2·φ1, m1·m2), not the docstring's φ1 + m1·φ2
    a = E2.make(torch.tensor([[0.3]], dtype=torch.float64), torch.tensor([[-1.0]], dtype=torch.float64))
    b = E2.make(torch.tensor([[1.0]], dtype=torch.float64), torch.tensor([[-1.0]], dtype=torch.float64))
    ab = E2.multiply(a, b)
    assert ab[0, 0, 0].item() == pytest.approx(1.0 - 0.3)
    assert ab[0, 0, 1].item() == 1.0
    assert E2.inverse(a)[0, 0, 0].item() == pytest.approx(0.3)  # (−m·φ, m) with m = −1
    # transposed rotation matrix on (y, x)
    m = SE2.matrix(torch.tensor([[math.pi / 2]], dtype=torch.float64))[0, 0]
    assert torch.allclose(m, torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64), atol=1e-15)
    mm = E2.matrix(E2.make(torch.tensor([[0.0]], dtype=torch.float64), torch.tensor([[-1.0]], dtype=torch.float64)))
    assert torch.allclose(mm[0, 0], torch.tensor([[1.0, 0.0], [0.0, -1.0]], dtype=torch.float64))


def test_relative_coordinates_identity_maps_to_minus_one():
    g = SE2.grid(4)
    h = SE2.relative(g, g)  # [1, 4, 4]
    coords = SE2.relative_coordinates(h)
    assert coords.shape == (1, 4, 4, 1)
    assert torch.all(torch.diagonal(coords[0, :, :, 0]) == -1.0)
    assert coords.min() >= -1.0 and coords.max() < 1.0
    # E2: the mirror product follows the angle
    ge = E2.grid(8)
    ce = E2.relative_coordinates(E2.relative(ge, ge))
    assert ce.shape == (1, 8, 8, 2)
    assert torch.equal(ce[0, :4, 4:, 1], -torch.ones(4, 4, dtype=torch.float64))
    periodic = SE2.relative_coordinates(h, "periodic")
    assert periodic.shape == (1, 4, 4, 2)


def test_grids_and_e2_ordering():
    assert torch.allclose(SE2.grid(4), torch.tensor([[0, math.pi / 2, math.pi, 3 * math.pi / 2]], dtype=torch.float64))
    g = E2.grid(8)
    assert g.shape == (1, 8, 2)
    assert torch.equal(g[0, :4, 1], torch.ones(4, dtype=torch.float64))
    assert torch.equal(g[0, 4:, 1], -torch.ones(4, dtype=torch.float64))
    assert torch.equal(g[0, :4, 0], g[0, 4:, 0])
    with pytest.raises(ValueError, match="even"):
        E2.grid(5)


def test_get_group():
    assert get_group("se2") is SE2 and get_group("E2") is E2
    with pytest.raises(ValueError, match="unknown group"):
        get_group("SO3")
    with pytest.raises(TypeError):
        get_group(3)


def test_kernel_inputs_layouts():
    from pgcnn_triton.kernels import disk_taps

    pts = disk_taps(5).points
    g_out, g_in = SE2.grid(4), SE2.grid(4)
    assert SE2.kernel_inputs(g_out, None, pts).shape == (1, 4, 1, 13, 2)
    assert SE2.kernel_inputs(g_out, g_in[:, :3], pts).shape == (1, 4, 3, 13, 3)
    assert SE2.kernel_inputs(g_out, g_in, None).shape == (1, 4, 4, 1, 1)
    e_out = E2.grid(8).expand(2, -1, -1)
    assert E2.kernel_inputs(e_out, E2.grid(8), pts).shape == (2, 8, 8, 13, 4)
    # spatial part: taps acted on by g_out⁻¹ (norm preserved)
    sp = SE2.kernel_inputs(g_out, None, pts)[..., :2]
    assert torch.allclose(sp.norm(dim=-1), pts.norm(dim=-1).expand_as(sp[..., 0]))


@pytest.mark.parametrize("group", [SE2, E2])
def test_unreduced_inverse_agrees_mod_2pi_and_keeps_the_raw_angle(group):
    torch.manual_seed(1)
    angles = torch.rand(1, 6, dtype=torch.float64) * 2 * math.pi
    g = group.make(angles, torch.tensor([[1.0, -1, 1, -1, 1, -1]], dtype=torch.float64)) \
        if group is E2 else group.make(angles)
    reduced, raw = group.inverse(g), group.inverse(g, reduce=False)
    m = group.mirror(g)
    assert torch.equal(group.angle(raw), -m * group.angle(g))  # (−m·φ, m), not reduced
    assert torch.allclose(torch.remainder(group.angle(raw), 2 * math.pi), group.angle(reduced), atol=1e-12)
    h, h_raw = group.relative(g, g), group.relative(g, g, reduce=False)
    assert torch.allclose(h, h_raw, atol=1e-12)
