"""Static shape mode computes exactly the dynamic (paper's) function.

Same seed, same uniforms, same parameters: static and dynamic models give the same logits, the same
kernel norms, the same gradients of every parameter (θ and mirror / C_n gate logits included) and the
same running statistics, over SE(2) / E(2), C_n / D_n, CKResNet / GCNN, θ across (0, 1.5] (below 1/N
and above 1), training and evaluation (deterministic and stochastic). Tolerances: float rounding only
(the two modes sum the same terms in different orders): 1e-10 relative in float64, 1e-5 in float32.
"""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from pgcnn_triton import GCNN, PartialGCNN, freeze
from pgcnn_triton.nn import collect_kernel_norms

TOL = {torch.float64: 1e-10, torch.float32: 1e-5}
# A bias that feeds a norm has a gradient that is 0 up to rounding (measured: ~5e-16 / 3e-7 of the total
# gradient in float64 / float32), so each parameter's error is measured against max(its norm, FLOOR·total
# norm); the whole gradient vector must meet TOL as it is.
FLOOR = {torch.float64: 1e-4, torch.float32: 1e-1}
N = 8


def build(kind, shape_mode, dtype, num_blocks=None, **sampling):
    """A small CKResNet (2 blocks) or GCNN (3 group convs, dropout after the second): one block of width 4,
    the rest of width 8."""
    torch.manual_seed(0)
    num_blocks = num_blocks or (2 if kind == "ckresnet" else 3)
    widths = (1, 1, 2, num_blocks - 1)
    if kind == "ckresnet":
        model = PartialGCNN(in_channels=1, num_classes=3, hidden=4, num_blocks=num_blocks, block_width_factors=widths,
                            pool_blocks=(1,), kernel_size=3, kernel_hidden=6, num_elements=N, shape_mode=shape_mode,
                            **sampling)
    else:
        model = GCNN(in_channels=1, num_classes=3, hidden=4, num_blocks=num_blocks, block_width_factors=widths,
                     pool_blocks=(1,), dropout=0.3, dropout_blocks=(2,), kernel_hidden=4, num_elements=N,
                     shape_mode=shape_mode, **sampling)
    return model.to(dtype)


def set_partial(model, thetas, mirror):
    """θ of every random partial layer (cycling through ``thetas``), the mirror logits, or C_n gate logits."""
    with torch.no_grad():
        for i, s in enumerate(s for s in model.samplers() if hasattr(s, "probs")):
            if s.config.method == "random":
                s.probs[0] = thetas[i % len(thetas)]
                if s.probs.numel() > 1:
                    s.probs[1] = mirror
            else:  # C_n / D_n gate logits in [−2, 2] (some gates mostly closed, some open), D_n: mirror last
                k = s.probs.numel()
                s.probs.copy_(torch.tensor([4 * thetas[j % len(thetas)] - 2 for j in range(k)]))
                if s.group.name == "E2":
                    s.probs[-1] = mirror


def forward(model, x, y):
    """Logits, kernel norms and the loss with the kernel-norm regulariser."""
    with collect_kernel_norms() as norms:
        logits = model(x)
    norms = torch.stack(norms)
    return logits, norms, F.cross_entropy(logits, y) + 1e-2 * norms.sum()


def step(model, x, y, seed, run=forward):
    """Logits, kernel norms and gradients of one forward/backward from the RNG state ``seed``."""
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    logits, norms, loss = run(model, x, y)
    if model.training:
        loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return logits.detach(), norms.detach(), grads


def rel(a, b):
    return float((a - b).detach().norm() / b.detach().norm())


def assert_same(dyn, sta, x, y, seed, tol, errors):
    logits_d, norms_d, grads_d = step(dyn, x, y, seed)
    logits_s, norms_s, grads_s = step(sta, x, y, seed)
    errors.append(rel(logits_s, logits_d))
    assert errors[-1] <= tol, f"logits differ by {errors[-1]:.2e}"
    assert rel(norms_s, norms_d) <= tol
    assert grads_s.keys() == grads_d.keys()
    if not grads_d:
        return
    flat_d = torch.cat([g.flatten() for g in grads_d.values()])
    flat_s = torch.cat([grads_s[n].flatten() for n in grads_d])
    errors.append(rel(flat_s, flat_d))
    assert errors[-1] <= tol, f"gradients differ by {errors[-1]:.2e}"
    floor = FLOOR[flat_d.dtype] * flat_d.norm()
    for name, g in grads_d.items():
        err = float((grads_s[name] - g).norm() / torch.maximum(g.norm(), floor))
        errors.append(err)
        assert err <= tol, f"gradient of {name} differs by {err:.2e}"


def check(kind, group, method, estimator, thetas, mirror, eval_mode, dtype, per_batch_element=False, norm=None):
    sampling = dict(group=group, method=method, estimator=estimator, eval_mode=eval_mode,
                    per_batch_element=per_batch_element, gumbel_anneal_steps=3)
    extra = {} if norm is None else dict(norm=norm)
    dyn = build(kind, "dynamic", dtype, **sampling, **extra)
    set_partial(dyn, thetas, mirror)
    sta = build(kind, "static", dtype, **sampling, **extra)
    sta.load_state_dict(dyn.state_dict())  # a state_dict moves between the modes unchanged
    gen = torch.Generator().manual_seed(len(thetas))
    x = torch.randn(3, 1, 8, 8, generator=gen, dtype=dtype)
    y = torch.tensor([0, 2, 1])
    errors = []
    for seed in (1, 2):  # two training steps: the Gumbel counters and BN statistics move in between
        assert_same(dyn.train(), sta.train(), x, y, seed, TOL[dtype], errors)
    for (name, a), b in zip(dyn.state_dict().items(), sta.state_dict().values()):
        assert a.shape == b.shape and (a.double() - b.double()).norm() <= TOL[dtype] * a.double().norm() + 1e-300, name
    with torch.no_grad():
        assert_same(dyn.eval(), sta.eval(), x, y, 3, TOL[dtype], errors)
    return dyn, sta, max(errors)


thetas = st.lists(st.floats(1e-3, 1.5), min_size=3, max_size=6)
mirrors = st.floats(-1.5, 1.5)


@settings(max_examples=15, deadline=None)
@given(kind=st.sampled_from(["ckresnet", "gcnn"]), group=st.sampled_from(["SE2", "E2"]),
       estimator=st.sampled_from(["clean", "reference"]), thetas=thetas, mirror=mirrors,
       eval_mode=st.sampled_from(["deterministic", "stochastic"]))
def test_static_equals_dynamic_float64_random(kind, group, estimator, thetas, mirror, eval_mode):
    check(kind, group, "random", estimator, thetas, mirror, eval_mode, torch.float64)


@settings(max_examples=10, deadline=None)
@given(kind=st.sampled_from(["ckresnet", "gcnn"]), group=st.sampled_from(["SE2", "E2"]),
       gates=st.lists(st.floats(0.0, 1.0), min_size=4, max_size=7), mirror=mirrors,
       eval_mode=st.sampled_from(["deterministic", "stochastic"]))
def test_static_equals_dynamic_float64_cn_dn_gates(kind, group, gates, mirror, eval_mode):
    check(kind, group, "deterministic", "clean", gates, mirror, eval_mode, torch.float64)


@settings(max_examples=10, deadline=None)
@given(kind=st.sampled_from(["ckresnet", "gcnn"]), group=st.sampled_from(["SE2", "E2"]), thetas=thetas,
       mirror=mirrors, norm=st.sampled_from(["batch", "layer"]), per_batch=st.booleans())
def test_static_equals_dynamic_float32(kind, group, thetas, mirror, norm, per_batch):
    check(kind, group, "random", "clean", thetas, mirror, "stochastic", torch.float32, per_batch, norm)


@pytest.mark.parametrize("group", ["SE2", "E2"])
def test_extreme_thetas_and_gradients_reach_theta_and_mirror_logits(group):
    """θ below 1/N (one element), between, at 1 and above 1 (N elements, wider spacing) in one model;
    the θ and mirror-logit gradients are non-zero and equal in both modes."""
    dyn, sta, worst = check("ckresnet", group, "random", "clean", [0.05, 0.3, 1.0, 1.4, 0.7], 0.8,
                            "deterministic", torch.float64)
    assert worst <= 1e-10
    step(dyn.train(), torch.randn(2, 1, 8, 8, dtype=torch.float64), torch.tensor([0, 1]), 5)
    probs = [p.grad for n, p in dyn.named_parameters() if n.endswith("probs")]
    assert all(g is not None and bool(g[0] != 0) for g in probs)


@pytest.mark.parametrize("group,method", [("SE2", "random"), ("E2", "random"), ("E2", "deterministic")])
def test_freeze_of_either_mode_gives_the_same_frozen_model(group, method):
    dyn = build("ckresnet", "dynamic", torch.float64, group=group, method=method)
    set_partial(dyn, [0.3, 0.6, 0.05, 1.2], -0.4)
    sta = build("ckresnet", "static", torch.float64, group=group, method=method)
    sta.load_state_dict(dyn.state_dict())
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    fd, fs = freeze(dyn, example_input=x), freeze(sta, example_input=x)
    sd_d, sd_s = fd.state_dict(), fs.state_dict()
    assert sd_d.keys() == sd_s.keys()
    for key in sd_d:
        assert sd_d[key].shape == sd_s[key].shape, key
        assert torch.allclose(sd_d[key], sd_s[key], rtol=1e-12, atol=1e-14), key
    assert rel(fs(x), fd(x)) <= 1e-10
    assert rel(fs(x), dyn.eval()(x)) <= 1e-10


@pytest.mark.long(10)
@pytest.mark.parametrize("kind,group", [("ckresnet", "SE2"), ("gcnn", "E2")])
def test_compiled_static_step_equals_eager_dynamic_and_never_syncs(kind, group):
    """The exact static mode compiles as one graph (fullgraph=True) and never reads the device on the
    host, with random elements, θ below 1 (masked slots) and mirrors mostly closed; the compiled training
    step's logits, kernel norms and gradients (two steps: the Gumbel counters and BN statistics move in
    between) and the compiled evaluation's logits equal eager dynamic mode's.

    This is also the random SE(2) / E(2) case of tests/models/test_compile_static.py (compiled = eager).
    Small models, since Dynamo / AOT tracing time grows with the graph: a one-block CKResNet (residual
    block, shortcut, 'valid' last conv) for SE(2), a two-conv GCNN (dropout) for E(2), whose own code is
    in the sampler and the group, not the architecture; 2-layer kernel nets."""
    from tests.models.test_static_mode import ForbidHostSync

    torch._dynamo.reset()
    small = dict(num_blocks=1 if kind == "ckresnet" else 2, kernel_layers=2, group=group, gumbel_anneal_steps=3)
    dyn = build(kind, "dynamic", torch.float64, **small)
    set_partial(dyn, [0.3, 0.05, 0.6, 1.3], -0.5)
    sta = build(kind, "static", torch.float64, **small)
    sta.load_state_dict(dyn.state_dict())
    x, y = torch.randn(3, 1, 8, 8, dtype=torch.float64), torch.tensor([0, 2, 1])
    with ForbidHostSync():
        step(sta, x, y, 0)
    sta.load_state_dict(dyn.state_dict())  # undo the step's Gumbel counters and BN statistics
    compiled = torch.compile(forward, fullgraph=True, backend="aot_eager")
    with torch._dynamo.config.patch(fail_on_recompile_limit_hit=True):
        for seed in (1, 2):
            logits_d, norms_d, grads_d = step(dyn, x, y, seed)
            logits_s, norms_s, grads_s = step(sta, x, y, seed, compiled)
            assert rel(logits_s, logits_d) <= 1e-10 and rel(norms_s, norms_d) <= 1e-10
            assert grads_s.keys() == grads_d.keys()
            flat = [torch.cat([g[n].flatten() for n in grads_d]) for g in (grads_s, grads_d)]
            assert rel(*flat) <= 1e-10
        with torch.no_grad():  # evaluation: the deterministic elements, compiled as its own graph
            logits_d, norms_d, _ = step(dyn.eval(), x, y, 3)
            logits_s, norms_s, _ = step(sta.eval(), x, y, 3, compiled)
        assert rel(logits_s, logits_d) <= 1e-10 and rel(norms_s, norms_d) <= 1e-10
