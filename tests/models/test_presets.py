"""Parameter counts of method.md §8 (θ counted: 1 per SE2 group conv, 2 per E2 group conv)."""

import pytest

from pgcnn_triton import GCNN, PartialGCNN

CKRESNET = {
    "rotmnist-t2": 450_074, "rotmnist-se2-partial": 467_791, "rotmnist-se2-full": 467_786,
    "rotmnist-e2-partial": 467_988, "rotmnist-e2-full": 467_978,
    "cifar10-t2": 452_186, "cifar10-se2-partial": 469_903, "cifar10-se2-full": 469_931,
    "cifar10-e2-partial": 470_100, "cifar10-e2-full": 470_123,
    "cifar100-t2": 458_036, "cifar100-se2-partial": 475_753, "cifar100-e2-partial": 475_950,
    "mnist6-180-se2-partial": 48_845, "mnist6-180-se2-full": 104_422,
    "mnist6-m-e2-partial": 51_154, "mnist6-m-e2-full": 51_144,
}
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
