import math

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from pgcnn_triton.sampling import FullGroupSampler, PartialSampler, SamplingConfig, relaxed_bernoulli

TWO_PI = 2 * math.pi


def partial(theta=1.0, mirror_logit=1.0, **kw):
    config = SamplingConfig(**{"group": "SE2", "num_elements": 8, **kw})
    s = PartialSampler(config)
    with torch.no_grad():
        s.probs[0] = theta
        if config.group == "E2" and config.method == "random":
            s.probs[1] = mirror_logit
    return s


def sorted_angles(elements):
    return torch.sort(elements.detach().flatten())[0]


@pytest.mark.parametrize("shape_mode", ["dynamic", "static"])
@pytest.mark.parametrize("estimator", ["clean", "reference"])
def test_theta_one_gives_n_elements_spaced_2pi_over_n(shape_mode, estimator):
    g, mask, gate = partial(1.0, shape_mode=shape_mode, estimator=estimator)(1)
    assert gate is None and g.shape == (1, 8)
    assert mask is None if shape_mode == "dynamic" else torch.equal(mask, torch.ones(1, 8, dtype=torch.bool))
    gaps = torch.diff(sorted_angles(g))
    assert torch.allclose(gaps, torch.full_like(gaps, TWO_PI / 8), atol=1e-12)


def test_theta_half_gives_four_elements_on_half_arc():
    s = partial(0.5)
    for _ in range(20):
        g, _, _ = s(1)
        assert g.shape == (1, 4)
        signed = torch.remainder(g + math.pi, TWO_PI) - math.pi  # back to [−π, π)
        assert bool((signed >= -math.pi / 2 - 1e-12).all() and (signed < math.pi / 2).all())
        gaps = torch.diff(torch.sort(signed.flatten())[0])
        assert torch.allclose(gaps, torch.full_like(gaps, math.pi / 4), atol=1e-12)


@given(theta=st.floats(0.0, 1.0 / 8), seed=st.integers(0, 2**31 - 1))
@example(theta=1.0 / 8, seed=0)
@example(theta=0.1, seed=1)
@example(theta=0.0, seed=2)
@pytest.mark.parametrize("estimator", ["clean", "reference"])
def test_small_theta_gives_one_element(estimator, theta, seed):
    """N·θ ≤ 1: one element g_0 = θ·(2πu − π) ∈ [−πθ, πθ), ∂g_0/∂θ = 2πu − π (docs/method.md#partial-arc; the reference
    gradient −π + 2πu/n is the same at n = 1)."""
    s = partial(theta, estimator=estimator)
    theta32 = s.probs[0].item()  # θ as the float32 parameter holds it
    torch.manual_seed(seed)
    u = torch.rand((1, 1), dtype=torch.float64).item()  # the sampler's draw: ElementSampler.offsets
    torch.manual_seed(seed)
    g, _, _ = s(1)
    assert g.shape == (1, 1)
    signed = (torch.remainder(g + math.pi, TWO_PI) - math.pi).item()
    # float64 wrap-around rounding ≤ 1e-15 rad, tolerance 1e-12
    assert signed == pytest.approx(theta32 * (TWO_PI * u - math.pi), abs=1e-12)
    assert -math.pi * theta32 - 1e-12 <= signed <= math.pi * theta32 + 1e-12
    if theta32 > 1e-9:  # strictly inside the arc's half-open bound (u < 1); below, rounding dominates
        assert signed < math.pi * theta32
    if theta == 0.0:
        assert g.item() == 0.0
    grad = torch.autograd.grad(g.sum(), s.probs)[0][0].item()
    assert grad == pytest.approx(TWO_PI * u - math.pi, abs=1e-6)  # float32 gradient, |·| ≤ π: measured error ≤ 1.2e-7


@pytest.mark.parametrize("group,rotations", [("SE2", 8), ("E2", 4)])
@pytest.mark.parametrize("estimator", ["clean", "reference"])
@pytest.mark.parametrize("theta", [0.5, 0.3, 0.05, 1.4, -0.6])
def test_static_slots_hold_the_dynamic_elements_then_masked_slots(group, rotations, estimator, theta):
    """Static: N slots (E2: R rotations × 2 mirrors); n = clamp(ceil(N·|θ|), 1, N) computed on the
    device (E2 reference: |ceil(R·θ)|); the first n hold exactly the elements dynamic mode draws from
    the same uniforms, with the same θ and mirror-logit gradients; the other slots are masked."""
    dyn = partial(theta, mirror_logit=20.0, group=group, estimator=estimator)
    sta = partial(theta, mirror_logit=20.0, group=group, estimator=estimator, shape_mode="static")
    for seed in range(3):
        torch.manual_seed(seed)
        g_d, mask_d, _ = dyn(3)
        torch.manual_seed(seed)
        g_s, mask, _ = sta(3)
        n = g_d.shape[1] // (1 if group == "SE2" else 2)
        assert mask_d is None and mask.dtype == torch.bool and mask.shape == (1, 8)
        assert g_s.shape[:2] == (1, 8)
        if group == "SE2":
            slots = torch.arange(8)
        else:  # [R rotation slots with m = +1; the same with m = −1], the first n of each valid
            slots = torch.cat([torch.arange(rotations), torch.arange(rotations)])
        assert torch.equal(mask[0], slots < n)
        assert torch.equal(g_s[:, mask[0]].detach(), g_d.detach())
        for i in range(g_d.shape[1]):
            want = torch.autograd.grad(g_d[0, i].sum(), dyn.probs, retain_graph=True)[0]
            got = torch.autograd.grad(g_s[:, mask[0]][0, i].sum(), sta.probs, retain_graph=True)[0]
            assert torch.equal(got, want)


@pytest.mark.parametrize("n_expected,theta", [(6, 0.7), (3, 0.3)])
def test_theta_gradients_clean_vs_reference(n_expected, theta):
    for estimator in ("clean", "reference"):
        s = partial(theta, estimator=estimator)
        torch.manual_seed(1)
        g, _, _ = s(1)
        assert g.shape[1] == n_expected
        grads = torch.stack([torch.autograd.grad(g[0, i], s.probs, retain_graph=True)[0][0] for i in range(n_expected)])
        assert torch.isfinite(grads).all() and (grads != 0).all()
        # recover u from the first element: g_0 = θ(2πu/n − π)
        u = ((torch.remainder(g[0, 0].detach() + math.pi * theta, TWO_PI)) * n_expected / (TWO_PI * theta)).item()
        if estimator == "reference":
            assert torch.allclose(grads, grads[0].expand_as(grads))
            assert grads[0].item() == pytest.approx(-math.pi + TWO_PI * u / n_expected, abs=1e-5)
        else:
            want = torch.tensor([TWO_PI * (i + u) / n_expected - math.pi for i in range(n_expected)])
            assert torch.allclose(grads.double(), want.double(), atol=1e-5)
            assert len(set(grads.tolist())) == n_expected


def test_e2_ordering_and_mirror_gate():
    s = partial(1.0, mirror_logit=20.0, group="E2")  # mirror always sampled
    g, mask, gate = s(1)
    assert g.shape == (1, 8, 2) and gate is None and mask is None
    assert torch.equal(g[0, :4, 1].detach(), torch.ones(4, dtype=torch.float64))
    assert torch.equal(g[0, 4:, 1].detach(), -torch.ones(4, dtype=torch.float64))
    assert torch.equal(g[0, :4, 0], g[0, 4:, 0])
    s_off = partial(1.0, mirror_logit=-20.0, group="E2")
    g_off, _, _ = s_off(1)
    assert g_off.shape == (1, 4, 2) and bool((g_off[..., 1] == 1).all())
    # static: always 2R slots, the mirrored half masked
    g_st, mask_st, gate_st = partial(1.0, mirror_logit=-20.0, group="E2", shape_mode="static")(1)
    assert g_st.shape == (1, 8, 2) and gate_st is None
    assert torch.equal(mask_st, torch.tensor([[True] * 4 + [False] * 4]))


def test_e2_theta_half_mirror_on_gives_four_elements():
    g, _, _ = partial(0.5, mirror_logit=20.0, group="E2")(1)
    assert g.shape == (1, 4, 2)


def test_mirror_logit_gradient_only_when_mirrors_sampled():
    s = partial(1.0, mirror_logit=0.0, group="E2")
    seen = {True: 0, False: 0}
    for seed in range(40):
        torch.manual_seed(seed)
        g, _, _ = s(1)
        mirrored = g.shape[1] == 8
        seen[mirrored] += 1
        grad = torch.autograd.grad(g[..., 1].sum(), s.probs, allow_unused=True)[0]
        mirror_grad = 0.0 if grad is None else grad[1].item()
        assert (mirror_grad != 0.0) == mirrored and math.isfinite(mirror_grad)
    assert seen[True] and seen[False]


@pytest.mark.parametrize("estimator,width", [
    ("reference", TWO_PI / 8),  # official δ = u·2πθ/N: half a cell at θ = 1, N = 8, R = 4 (quirk Q3)
    ("clean", TWO_PI / 4),      # docs/method.md#partial-arc: δ = u·2πθ/n, one cell of the n = R = 4 rotations
])
def test_e2_jitter_covers_exactly_its_cell(estimator, width):
    s = partial(1.0, mirror_logit=20.0, group="E2", estimator=estimator)
    first = torch.stack([s(1)[0][0, 0, 0].detach() for _ in range(200)])
    offsets = torch.remainder(first + math.pi, TWO_PI)  # g_0 + πθ = δ ∈ [0, width)
    # 200 uniform draws: P(max ≤ 0.9·width) = P(min ≥ 0.1·width) = 0.9^200 ≈ 7e-10 each, so a correct
    # sampler fails with probability ≈ 1.4e-9 (seeded run: max 0.9987·width, min 0.0064·width); a jitter
    # of half, an eighth or twice the cell, or none, fails.
    assert offsets.max() > 0.9 * width and offsets.max() < width
    assert offsets.min() >= 0 and offsets.min() < 0.1 * width


def test_eval_deterministic_vs_stochastic():
    s = partial(0.7).eval()
    assert torch.equal(s(1)[0], s(1)[0])
    s.eval_mode = "stochastic"
    assert not torch.equal(s(1)[0], s(1)[0])
    full = FullGroupSampler(SamplingConfig(num_elements=4)).eval()
    g, _, _ = full(2)
    assert torch.allclose(g, torch.tensor([[0.25, 0.75, 1.25, 1.75]], dtype=torch.float64) * math.pi)


def test_full_sampler_stratified_and_per_batch():
    s = FullGroupSampler(SamplingConfig(group="SE2", num_elements=6, per_batch_element=True))
    g, _, _ = s(5)
    assert g.shape == (5, 6)
    gaps = torch.diff(torch.sort(g, dim=1)[0], dim=1)
    assert torch.allclose(gaps, torch.full_like(gaps, TWO_PI / 6), atol=1e-12)
    assert len(set(g[:, 0].tolist())) == 5  # independent offsets
    e, _, _ = FullGroupSampler(SamplingConfig(group="E2", num_elements=8))(3)
    assert e.shape == (1, 8, 2) and torch.equal(e[0, :4, 0], e[0, 4:, 0])


def test_temperature_anneals_and_is_clamped():
    s = partial(1.0, group="E2", gumbel_anneal_steps=10)
    taus = [s.temperature().item() for _ in range(25)]
    assert taus[0] == pytest.approx(0.5)
    assert taus[5] == pytest.approx(0.5 - 0.5 * (0.5 - 1e-4))
    end = torch.tensor(1e-4).item()  # float32 value of the end temperature
    assert min(taus) == end and all(t >= end for t in taus)
    assert s.step.item() == 25
    s.eval()
    s.temperature()
    assert s.step.item() == 25  # frozen in eval
    # one advance per training forward, E2 deterministic partial included (quirk Q6 fixed)
    d = partial(1.0, group="E2", method="deterministic")
    before = d.step.item()
    d(1)
    assert d.step.item() == before + 1


def test_cn_gates_clean_vs_reference_keep_probability():
    kept = {}
    for estimator in ("clean", "reference"):
        s = PartialSampler(SamplingConfig(group="SE2", num_elements=8, method="deterministic", estimator=estimator))
        with torch.no_grad():
            s.probs.fill_(-3.0)
        torch.manual_seed(0)
        kept[estimator] = sum(s(1)[0].shape[1] - 1 for _ in range(50)) / (50 * 7)
    assert kept["clean"] < 0.05  # sigmoid(−6) ≈ 0.0025
    assert 0.35 < kept["reference"] < 0.65  # official: sigmoid(sigmoid(−6)) ≈ 0.5


def test_cn_gates_deterministic_eval_and_static():
    s = PartialSampler(SamplingConfig(group="SE2", num_elements=4, method="deterministic")).eval()
    with torch.no_grad():
        s.probs.copy_(torch.tensor([1.0, -1.0, 2.0]))
    g, mask, gate = s(1)
    assert torch.allclose(g, torch.tensor([[0.0, math.pi / 2, 3 * math.pi / 2]], dtype=torch.float64))  # element 2 gated off
    assert gate is None and mask is None
    s_static = PartialSampler(SamplingConfig(group="E2", num_elements=8, method="deterministic", shape_mode="static")).eval()
    with torch.no_grad():
        s_static.probs.copy_(torch.tensor([1.0, -1.0, 1.0, -1.0]))  # rotation 2 off, mirror off
    g, mask, gate = s_static(1)
    assert g.shape == (1, 8, 2) and gate is None
    assert torch.equal(mask, torch.tensor([[True, True, False, True, False, False, False, False]]))


def test_cn_gate_gradient_reaches_logits():
    s = PartialSampler(SamplingConfig(group="SE2", num_elements=4, method="deterministic", gumbel_init_temp=2.0))
    torch.manual_seed(3)
    g, _, _ = s(1)
    grad = torch.autograd.grad(g.sum(), s.probs)[0]
    assert torch.isfinite(grad).all() and (grad != 0).any()


def test_relaxed_bernoulli_frequency():
    torch.manual_seed(0)
    y = relaxed_bernoulli(torch.full((20000,), 2.0), torch.tensor(0.5))
    assert abs((y > 0.5).float().mean().item() - torch.sigmoid(torch.tensor(2.0)).item()) < 0.02


def test_config_validation():
    with pytest.raises(ValueError, match="num_elements"):
        SamplingConfig(num_elements=0)
    with pytest.raises(TypeError, match="num_elements"):
        SamplingConfig(num_elements=2.0)
    with pytest.raises(ValueError, match="even"):
        SamplingConfig(group="E2", num_elements=5)
    for field, bad in (("method", "grid"), ("shape_mode", "fixed"), ("eval_mode", "avg"), ("estimator", "x"),
                       ("group", "SO3"), ("coordinate", "angle")):
        with pytest.raises(ValueError, match=field if field != "group" else "group"):
            SamplingConfig(**{field: bad})
    with pytest.raises(ValueError, match="per_batch_element"):
        SamplingConfig(method="deterministic", per_batch_element=True)
    assert SamplingConfig(method="random", partial=True, per_layer=False).per_layer is True


def test_clean_and_reference_draw_the_same_se2_elements():
    for theta in (1.0, 0.7, 0.3):
        draws = []
        for estimator in ("clean", "reference"):
            torch.manual_seed(11)
            draws.append(partial(theta, estimator=estimator)(1)[0].detach())
        assert torch.allclose(draws[0], draws[1], atol=1e-12)


@pytest.mark.parametrize("theta,estimator,expected", [
    (-0.6, "reference", 2),   # the original's E(2) rule: |ceil(4·(−0.6))| = |−2| = 2
    (-0.6, "clean", 3),       # ceil(4·0.6) = 3, as for θ = +0.6
    (0.6, "reference", 3), (0.6, "clean", 3),
    (-0.1, "reference", 1),   # |ceil(−0.4)| = 0 → at least 1
    (-0.1, "clean", 1),
    (-0.25, "reference", 1), (-0.25, "clean", 1),
    (-0.26, "reference", 1), (-0.26, "clean", 2),
    (-1.7, "reference", 4), (-1.7, "clean", 4),   # clamped to R
    (0.0, "reference", 1), (0.0, "clean", 1),
])
def test_e2_rotation_count_for_negative_theta(theta, estimator, expected):
    s = partial(theta, mirror_logit=-20.0, group="E2", estimator=estimator)  # mirrors off: n rotations
    g, _, _ = s(1)
    assert g.shape == (1, expected, 2)


@pytest.mark.parametrize("theta", [-0.6, -0.3, -0.1, 0.3, 0.6])
@pytest.mark.parametrize("estimator", ["clean", "reference"])
def test_se2_count_uses_abs_theta_in_both_estimators(theta, estimator):
    g, _, _ = partial(theta, estimator=estimator)(1)
    assert g.shape == (1, min(max(math.ceil(8 * abs(theta)), 1), 8))
