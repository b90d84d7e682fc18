"""Parameter counts of docs/method.md#parameter-counts (θ counted: 1 per SE2 group conv, 2 per E2 group conv)."""

import math

import pytest
import torch
from pgcnn_triton.kernels import dense_kernel, square_taps

from pgcnn_triton import GCNN, PartialGCNN
from pgcnn_triton.models.ckresnet import t2_element

CKRESNET = {
    "rotmnist-t2": 450_074, "rotmnist-se2-partial": 467_791, "rotmnist-se2-full": 467_786,
    "rotmnist-e2-partial": 467_988, "rotmnist-e2-full": 467_978,
    "cifar10-t2": 452_186, "cifar10-se2-partial": 469_903, "cifar10-se2-full": 469_931,
    "cifar10-e2-partial": 470_100, "cifar10-e2-full": 470_123,
    "cifar100-t2": 458_036, "cifar100-se2-partial": 475_753, "cifar100-e2-partial": 475_950,
    "cifar100-e2-full": 475_940,  # last_conv_T2 over the degenerate E(2) element (4-input kernel net)
    "mnist6-180-se2-partial": 48_845, "mnist6-180-se2-full": 104_422,
    "mnist6-m-e2-partial": 51_154, "mnist6-m-e2-full": 51_144,
}
# Full presets whose configuration the original runs but docs/method.md#parameter-counts gives no count for: the same
# constructor as the partial preset, whose θs become buffers when partial=False (docs/method.md#presets), so the count
# is the partial preset's minus its θ scalars (5 per CKResNet, 8 per GCNN, SE2).
DERIVED_CKRESNET = {"cifar100-se2-full": ("cifar100-se2-partial", 5)}
DERIVED_GCNN = {f"{d}-se2-full": (f"{d}-se2-partial", 8) for d in ("rotmnist", "cifar10", "cifar100")}
GCNN_COUNTS = {
    "rotmnist-t2": 3_992_106, "rotmnist-se2-partial": 3_992_114,
    "cifar10-t2": 3_994_410, "cifar10-se2-partial": 3_994_418,
    "cifar100-t2": 4_017_540, "cifar100-se2-partial": 4_017_548,
}


def count(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name,expected", sorted(CKRESNET.items()))
def test_ckresnet_parameter_counts(name, expected):
    assert count(PartialGCNN.from_preset(name)) == expected


@pytest.mark.parametrize("name,expected", sorted(GCNN_COUNTS.items()))
def test_gcnn_parameter_counts(name, expected):
    assert count(GCNN.from_preset(name)) == expected


@pytest.mark.parametrize("cls,name,partial,thetas", [
    (PartialGCNN, n, p, t) for n, (p, t) in DERIVED_CKRESNET.items()] + [
    (GCNN, n, p, t) for n, (p, t) in DERIVED_GCNN.items()])
def test_full_presets_without_a_published_count_are_the_partial_minus_theta(cls, name, partial, thetas):
    full, part = cls.from_preset(name), cls.from_preset(partial)
    table = CKRESNET if cls is PartialGCNN else GCNN_COUNTS
    assert count(full) == table[partial] - thetas
    assert sum(m.probs.numel() for m in part.modules() if hasattr(m, "probs")) == thetas
    # the same architecture otherwise: every other parameter shape matches
    shapes = lambda m: sorted((n, tuple(p.shape)) for n, p in m.named_parameters() if "probs" not in n)  # noqa: E731
    assert shapes(full) == shapes(part)


def test_every_preset_has_a_checked_count():
    assert set(PartialGCNN.PRESETS) == set(CKRESNET) | set(DERIVED_CKRESNET)
    assert set(GCNN.PRESETS) == set(GCNN_COUNTS) | set(DERIVED_GCNN)


def test_cifar10_breakdown():
    m = PartialGCNN.from_preset("cifar10-se2-partial")
    parts = {
        "lift": 4_352, "blocks.0.gconv1": 35_009, "blocks.0.gconv2": 35_009, "blocks.0.shortcut": 17_712,
        "blocks.1.gconv1": 68_833, "blocks.1.gconv2": 136_417, "blocks.1.shortcut": 35_120,
        "last_conv": 136_417, "head": 650,
    }
    modules = dict(m.named_modules())
    for name, expected in parts.items():
        assert count(modules[name]) == expected, name
    norms = sum(count(modules[n]) for n in ("lift_norm", "blocks.0.norm", "blocks.1.norm", "last_norm"))
    assert norms == 384


def test_every_preset_row_exists_and_defaults_are_cifar10_se2_partial():
    assert count(PartialGCNN()) == 469_903
    assert count(GCNN()) == 3_994_418
    assert {"cifar100-se2-full", "cifar100-e2-full"} <= set(PartialGCNN.PRESETS)
    assert {"rotmnist-se2-full", "cifar10-se2-full", "cifar100-se2-full"} <= set(GCNN.PRESETS)
    assert count(PartialGCNN.t2_baseline()) == CKRESNET["cifar10-t2"]
    assert count(GCNN.t2_baseline()) == GCNN_COUNTS["cifar10-t2"]


def test_from_preset_overrides_and_unknown_names():
    m = PartialGCNN.from_preset("cifar10-se2-partial", num_classes=7, shape_mode="static")
    assert m.head.out_features == 7 and m.sampling.shape_mode == "static"
    with pytest.raises(ValueError, match="unknown preset"):
        PartialGCNN.from_preset("cifar11-se2-partial")
    with pytest.raises(ValueError, match="unknown preset"):
        GCNN.from_preset("mnist6-180-se2-partial")


def test_cifar100_e2_full_last_kernel_is_the_degenerate_elements():
    """docs/method.md#full-cifar-heads: the one input element (angle 0, mirror 0) acts by [[1, 0], [0, 0]], so the kernel
    net is evaluated at (y, 0, −1, 0): constant along x, and all 49 taps inside the mask."""
    torch.manual_seed(0)
    m = PartialGCNN.from_preset("cifar100-e2-full").double()
    conv = m.last_conv
    g = t2_element(conv.group)
    assert g.shape == (1, 1, 2) and not bool(g.any())
    bank = conv.make_bank(g, g, torch.float64)                        # [1, C·1, 49, C·1]
    assert bank.shape == (1, 64, 49, 64)
    dense = dense_kernel(bank, 7)[0]                                  # [C_out, C_in, 7, 7]
    assert torch.allclose(dense, dense[..., :1].expand_as(dense), rtol=0, atol=1e-14)  # constant along x
    assert bool((dense != 0).all())
    y = torch.linspace(-1, 1, 7, dtype=torch.float64)
    coords = torch.stack([y, torch.zeros_like(y), -torch.ones_like(y), torch.zeros_like(y)], -1)
    expected = conv.kernel_net(coords).reshape(7, 64, 64).permute(1, 2, 0)   # [o, c, y]
    assert torch.allclose(dense[..., 0], expected, rtol=0, atol=1e-12)
    assert square_taps(7).num_taps == 49


def test_cifar100_e2_full_forward_uses_the_mean_over_g_and_the_fixed_element():
    torch.manual_seed(0)
    m = PartialGCNN.from_preset("cifar100-e2-full").double().eval()
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    feats, _ = m.features(x)
    mean = feats.mean(2, keepdim=True)
    g = t2_element(m.last_conv.group)
    bank = m.last_conv.make_bank(g, g, torch.float64)
    w = dense_kernel(bank, 7)[0]
    expected = torch.nn.functional.conv2d(mean[:, :, 0], w, m.last_conv.bias)[:, :, None]
    got, elements = m.last_conv(mean, g)
    assert torch.equal(elements, g)
    assert torch.allclose(got, expected, rtol=0, atol=1e-10 * float(expected.abs().max()))
    logits = m(x)
    assert logits.shape == (2, 100) and bool(torch.isfinite(logits).all())
    assert math.isfinite(float(logits.sum()))
