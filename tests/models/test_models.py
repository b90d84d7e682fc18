import pytest
import torch

from pgcnn_triton import GCNN, PartialGCNN
from pgcnn_triton.equivariance import equivariance_error, flip_w, rot90, rotation
from pgcnn_triton.nn import GroupConv
from pgcnn_triton.testing import assert_invariant

SMALL = dict(in_channels=2, num_classes=5, hidden=4, block_width_factors=(1, 1, 2, 1), pool_blocks=(),
             kernel_size=3, kernel_hidden=8)


def warm_batchnorm(model, x):
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(x)
    return model.eval()


def set_partial(model, value, index=0):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, GroupConv) and m.sampler is not None:
                m.sampler.probs[index] = value


@pytest.mark.parametrize("method", ["random", "deterministic"])
def test_full_model_invariant_to_rot90_on_c4_grid(method):
    model = PartialGCNN(**SMALL, num_elements=4, method=method)
    x = torch.randn(3, 2, 11, 11)
    warm_batchnorm(model, x)
    assert_invariant(model, x, rot90(1), rtol=1e-5)
    assert_invariant(model, x, rot90(2), rtol=1e-5)
    # learned subsets smaller than the group break the invariance, and the assertion names them
    if method == "random":
        set_partial(model, 0.6)  # θ < 1: arc [−0.6π, 0.6π), n = 3
        cause = r"partial layers: blocks\.0\.gconv1 θ = 0\.6"
    else:
        set_partial(model, torch.tensor([1.0, -1.0, -1.0]), slice(None))  # gates keep {0, π/2}
        cause = r"partial layers: blocks\.0\.gconv1 gates"
    assert equivariance_error(model, x, rot90(2)) > 1e-2
    with pytest.raises(AssertionError, match=cause):
        assert_invariant(model, x, rot90(2))


def test_e2_model_invariant_to_flips_and_not_when_mirror_dropped():
    model = PartialGCNN(**SMALL, group="E2", num_elements=8)
    x = torch.randn(2, 2, 9, 9)
    warm_batchnorm(model, x)
    for t in (rot90(1), flip_w()):
        assert_invariant(model, x, t, rtol=1e-5)
    set_partial(model, -3.0, 1)  # mirror logit < 0: mirrors dropped in deterministic evaluation
    assert equivariance_error(model, x, flip_w()) > 1e-2
    with pytest.raises(AssertionError, match=r"blocks\.0\.gconv1 mirror probability 0\.00"):
        assert_invariant(model, x, flip_w())


def test_continuous_rotation_error_separates_c8_from_c4_and_t2():
    # Off-grid rotations are not exact (bilinear resampling, tap discretisation, a finite grid), so this is a
    # statistical check on the same inputs: smooth 25 px images, k = 7, ω0 = 3, invariant logits, mean error
    # over 7 angles away from multiples of 45°. Measured over 12 seeds (model init + inputs): mean error C8
    # 0.027–0.061, C4 0.079–0.20, T(2) 0.20–0.42; ratio C8/C4 0.28–0.49, C8/T2 0.10–0.22. Bounds 0.6 and 0.35
    # leave ≥ 20 % / 60 % margin. With the taps rotated by φ rounded down to a multiple of 90° this seed
    # gives C8 0.078, ratio to C4 0.82 (fails); over 12 seeds that ratio is 0.54–0.96, so the robust catch of
    # that bug is tests/test_continuous_rotation.py (direct coordinates and 45° layer equivariance).
    from tests.test_continuous_rotation import smooth_images

    x = smooth_images(4, 2, 25, seed=100)
    angles = (0.3, 1.2, 2.0, 2.9, 3.7, 4.6, 5.5)
    config = {**SMALL, "num_classes": 16, "kernel_size": 7, "omega0": 3.0}
    mean_error = {}
    for n in (8, 4, 1):  # C8, C4, T(2) (the single identity element: a CNN with SIREN kernels)
        torch.manual_seed(0)
        model = PartialGCNN(**config, num_elements=n, method="deterministic", partial=False)
        warm_batchnorm(model, x)
        with torch.no_grad():
            mean_error[n] = sum(equivariance_error(model, x, rotation(a)) for a in angles) / len(angles)
        if n == 8:
            assert equivariance_error(model, x, rotation(torch.pi / 2)) <= 1e-5  # a grid point: exact again
    assert mean_error[8] < 0.6 * mean_error[4], mean_error
    assert mean_error[8] < 0.35 * mean_error[1], mean_error


def test_eval_modes():
    model = PartialGCNN(**SMALL, num_elements=4)
    x = torch.randn(2, 2, 9, 9)
    warm_batchnorm(model, x)
    set_partial(model, 0.7)
    assert torch.equal(model(x), model(x))
    model.set_eval_mode("stochastic")
    assert not torch.equal(model(x), model(x))
    model.set_eval_mode("mc", mc_samples=3)
    torch.manual_seed(5)
    mc = model(x)
    torch.manual_seed(5)
    model.set_eval_mode("stochastic")
    singles = torch.stack([model(x) for _ in range(3)])
    assert torch.allclose(mc, singles.mean(0), atol=1e-6)
    with pytest.raises(ValueError, match="eval_mode"):
        model.set_eval_mode("average")


def test_training_step_reaches_every_parameter():
    model = PartialGCNN(**SMALL, group="E2", num_elements=4, gumbel_init_temp=1.0)
    torch.manual_seed(2)
    for _ in range(3):  # the mirror gate is open with probability 0.88 per layer and step
        loss = torch.nn.functional.cross_entropy(model(torch.randn(4, 2, 9, 9)), torch.tensor([0, 1, 2, 3]))
        loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    thetas = [p.grad[0] for n, p in model.named_parameters() if n.endswith("probs")]
    assert thetas and all(t != 0 for t in thetas)


@pytest.mark.parametrize("shape_mode", ["dynamic", "static"])
def test_learned_equivariance_report(shape_mode):
    model = PartialGCNN(**SMALL, group="E2", num_elements=8, shape_mode=shape_mode)
    set_partial(model, 0.25)
    rows = model.learned_equivariance()
    assert [r["layer"] for r in rows] == ["lift", "blocks.0.gconv1", "blocks.0.gconv2", "blocks.1.gconv1",
                                          "blocks.1.gconv2", "last_conv"]
    assert rows[0]["theta"] == 1.0 and all(r["theta"] == 0.25 for r in rows[1:])
    assert all(0.87 < r["mirror_probability"] < 0.89 for r in rows[1:])
    model(torch.randn(1, 2, 9, 9))


def test_gcnn_small_forward_backward_and_per_batch_sampling():
    model = GCNN(in_channels=1, num_classes=3, hidden=4, num_blocks=3, block_width_factors=(1, 2, 2, 1),
                 pool_blocks=(2,), dropout_blocks=(3,), kernel_hidden=4, num_elements=4, per_batch_element=True)
    y = model(torch.randn(2, 1, 8, 8))
    assert y.shape == (2, 3)
    y.sum().backward()
    full = GCNN(in_channels=1, num_classes=3, hidden=4, num_blocks=2, block_width_factors=(1, 2),
                pool_blocks=(), dropout_blocks=(), kernel_hidden=4, num_elements=4, method="deterministic",
                partial=False).eval()
    x = torch.randn(2, 1, 9, 9)
    assert equivariance_error(full, x, rot90(1)) <= 1e-5  # mean over (G, H, W): invariant too


def test_variants_learnable_pooling_and_last_conv_t2():
    m = PartialGCNN(**{**SMALL, "pool_blocks": (1, 2)}, partial=False, learnable_final_pooling=True,
                    final_spatial_dim=(6, 6), num_elements=4)
    assert m(torch.randn(2, 2, 32, 32)).shape == (2, 5)  # 32 → 16 → 8 → 'valid' 3×3 → 6
    with pytest.raises(ValueError, match="final_spatial_dim"):
        m(torch.randn(2, 2, 28, 28))
    t2 = PartialGCNN(**SMALL, group="E2", num_elements=4, partial=False, last_conv_t2=True)
    assert t2(torch.randn(2, 2, 11, 11)).shape == (2, 5)
    with pytest.raises(ValueError, match="learnable_final_pooling"):
        PartialGCNN(**SMALL, learnable_final_pooling=True)
    with pytest.raises(ValueError, match="block_width_factors"):
        PartialGCNN(**SMALL, num_blocks=3)


def test_equivariance_curve_shows_where_a_partial_model_breaks():
    from pgcnn_triton.equivariance import equivariance_curve

    model = PartialGCNN(**SMALL, num_elements=8, method="deterministic")
    x = torch.randn(2, 2, 13, 13)
    warm_batchnorm(model, x)
    angles = [0.0, torch.pi / 2, torch.pi]
    full = dict(equivariance_curve(model, x, angles))
    assert max(full.values()) <= 1e-5  # grid points of C_8, rotations that permute pixels
    set_partial(model, torch.tensor([1.0, 1.0, -1.0, -1.0, -1.0, -1.0, -1.0]), slice(None))  # keep 0°, 45°, 90°
    part = dict(equivariance_curve(model, x, angles))
    # {0°, 45°, 90°} is not closed under 90° or 180° rotations: the partial model breaks at both grid angles
    # where the full model is exact (measured 0.11 and 0.22 vs ≤ 4e-7 full)
    assert part[float(torch.pi / 2)] > 1e-2 and part[float(torch.pi)] > 1e-2
    # and the curve sees a plain (non-equivariant) CNN break too (measured 0.42 and 0.30)
    cnn = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveMaxPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, 5))
    plain = dict(equivariance_curve(cnn, x, angles))
    assert plain[float(torch.pi / 2)] > 1e-2 and plain[float(torch.pi)] > 1e-2
