"""The Gumbel temperature τ of the relaxed-Bernoulli mirror / C_n gates (docs/method.md#gumbel-temperature).

Expected values are built from the binary Concrete formula, never from ``relaxed_bernoulli`` itself:
a sample with logits ``a`` and temperature τ is ``Y = sigmoid((a + log u − log(1 − u))/τ)``, u ~ U(0, 1),
i.e. ``Y = sigmoid((a + L)/τ)`` with L standard logistic. The E(2) mirror gate uses ``a = 2·p_m``.
"""

import math

import pytest
import torch

from pgcnn_triton.sampling import PartialSampler, SamplingConfig, relaxed_bernoulli

P_MIRROR = 0.5
LOGIT_U = -0.9  # fixed noise: 2·p + logit(u) = 0.1, so the gate is open (y > 0.5) at every τ below
U32 = float(torch.sigmoid(torch.tensor(LOGIT_U, dtype=torch.float64)).float())  # the float32 u handed out


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def _hand_dy_dp(tau):
    """dy/dp for y = sigmoid((2p + log u − log(1 − u))/τ): (2/τ)·y·(1 − y)."""
    y = _sigmoid((2.0 * P_MIRROR + math.log(U32) - math.log1p(-U32)) / tau)
    assert y > 0.5  # the gate is open: the straight-through factor passes the gradient
    return 2.0 / tau * y * (1.0 - y)


def _fixed_noise(monkeypatch):
    calls = []

    def rand_like(x, *args, **kwargs):
        calls.append(x.shape)
        return torch.full_like(x, U32)

    monkeypatch.setattr(torch, "rand_like", rand_like)
    return calls


def _mirror_sampler(method, shape_mode, tau, anneal_steps=None, mirror_gradient="flag"):
    config = SamplingConfig(group="E2", num_elements=8, method=method, shape_mode=shape_mode,
                            gumbel_init_temp=tau, gumbel_anneal_steps=anneal_steps, mirror_gradient=mirror_gradient)
    s = PartialSampler(config)
    with torch.no_grad():
        s.probs.fill_(1.0)  # θ = 1 (random) or rotation-gate logits 2 (deterministic): 4 rotations kept
        s.probs[-1] = P_MIRROR
    return s


@pytest.mark.parametrize("method", ["random", "deterministic"])
@pytest.mark.parametrize("shape_mode,mirror_gradient", [("dynamic", "flag"), ("static", "flag"),
                                                        ("dynamic", "features"), ("static", "features")])
@pytest.mark.parametrize("tau", [0.05, 0.5])
def test_mirror_logit_gradient_matches_hand_computed_concrete_gradient(monkeypatch, method, shape_mode,
                                                                       mirror_gradient, tau):
    calls = _fixed_noise(monkeypatch)
    s = _mirror_sampler(method, shape_mode, tau, mirror_gradient=mirror_gradient)
    g, mask, gate = s(1)
    assert calls, "the mirror gate must draw its noise with torch.rand_like"
    n = 4  # rotations (θ = 1, N = 8; or every C_4 gate open), each mirrored once
    assert g.shape == (1, 2 * n, 2)
    assert torch.equal(g[0, n:, 1].detach(), -torch.ones(n, dtype=torch.float64))  # value exactly −1
    want = _hand_dy_dp(tau)
    # mirror flags of the mirrored half: −(1 + b·(y − y.detach())) → d(sum)/dp = −n·dy/dp
    grad = torch.autograd.grad(g[..., 1].sum(), s.probs, retain_graph=gate is not None)[0][-1].item()
    # float32 y: measured relative error 1.1e-6 at τ = 0.05 (1/τ amplifies the float32 logit error), 8e-9 at
    # τ = 0.5; tolerance 1e-4 (~90× margin). Wrong τ handling is off by factors ≥ 4.
    assert grad == pytest.approx(-n * want, rel=1e-4)
    assert mask is None if shape_mode == "dynamic" else bool(mask.all())
    if mirror_gradient == "features":
        # the gate tensor: [1]·n for m = +1, 1 + b·(y − y.detach()) for m = −1 → d(sum)/dp = +n·dy/dp
        assert torch.equal(gate.detach(), torch.ones(1, 2 * n))
        grad_gate = torch.autograd.grad(gate.sum(), s.probs)[0][-1].item()
        assert grad_gate == pytest.approx(n * want, rel=1e-4)
    else:
        assert gate is None


def test_mirror_logit_gradient_uses_the_annealed_temperature(monkeypatch):
    """τ_t = τ0 − (t/T)(τ0 − τ_end): the third forward (t = 2, T = 4) samples at τ = 0.5 − 0.5·0.4999."""
    _fixed_noise(monkeypatch)
    s = _mirror_sampler("random", "dynamic", 0.5, anneal_steps=4)
    s(1)
    s(1)
    g, _, _ = s(1)
    tau = 0.5 - 0.5 * (0.5 - 1e-4)  # 0.25005
    grad = torch.autograd.grad(g[..., 1].sum(), s.probs)[0][-1].item()
    assert grad == pytest.approx(-4 * _hand_dy_dp(tau), rel=1e-4)  # float32 τ: rel. error ~1e-7


def _concrete_cdf(y, a, tau):
    """P(Y ≤ y) for Y = sigmoid((a + L)/τ): P(L ≤ τ·logit(y) − a) = sigmoid(τ·logit(y) − a)."""
    return torch.sigmoid(tau * torch.logit(y) - a)


N_SAMPLES = 20000
# Kolmogorov–Smirnov: P(sup_y |F_n(y) − F(y)| > 1.63/√n) ≈ 0.01 (α = 0.01 asymptotic critical value);
# a sup over a grid of y is at most the full sup, so the grid test rejects a correct sampler with
# probability ≤ 0.01 (and the seed is fixed: the measured statistics are listed below).
KS_BOUND = 1.63 / math.sqrt(N_SAMPLES)  # ≈ 0.0115
Y_GRID = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)


def _ks_statistic(sample_fn, a, tau, seed):
    torch.manual_seed(seed)
    y = sample_fn(torch.full((N_SAMPLES,), a), torch.tensor(tau)).double()
    empirical = (y[None, :] <= Y_GRID[:, None]).double().mean(1)
    return (empirical - _concrete_cdf(Y_GRID, a, tau)).abs().max().item()


CASES = [(2.0, 0.3, 1), (-1.0, 2.0, 2), (2.0, 0.5, 3)]  # (logits a, τ, seed); τ ≠ 1 so 1/τ ≠ τ ≠ 1


@pytest.mark.parametrize("a,tau,seed", CASES)
def test_relaxed_bernoulli_matches_the_binary_concrete_cdf(a, tau, seed):
    d = _ks_statistic(relaxed_bernoulli, a, tau, seed)
    # measured D: 0.0030 (a=2, τ=0.3), 0.0050 (a=−1, τ=2), 0.0057 (a=2, τ=0.5) vs bound 0.0115
    assert d < KS_BOUND


def _tau_times_two(logits, temperature):
    u = torch.rand_like(logits).clamp(1e-6, 1.0 - 1e-6)
    return torch.sigmoid((logits + torch.log(u) - torch.log1p(-u)) / (2.0 * temperature))


def _tau_multiplied(logits, temperature):
    u = torch.rand_like(logits).clamp(1e-6, 1.0 - 1e-6)
    return torch.sigmoid((logits + torch.log(u) - torch.log1p(-u)) * temperature)


def _tau_ignored(logits, temperature):
    u = torch.rand_like(logits).clamp(1e-6, 1.0 - 1e-6)
    return torch.sigmoid(logits + torch.log(u) - torch.log1p(-u))


@pytest.mark.parametrize("wrong", [_tau_times_two, _tau_multiplied, _tau_ignored])
@pytest.mark.parametrize("a,tau,seed", CASES)
def test_concrete_cdf_check_rejects_a_wrong_temperature(wrong, a, tau, seed):
    """The KS check above is sharp enough: each mis-tempered sampler is far outside the bound."""
    # measured D ≥ 0.256 for every (mutation, case) vs 3·bound = 0.035
    assert _ks_statistic(wrong, a, tau, seed) > 3 * KS_BOUND

