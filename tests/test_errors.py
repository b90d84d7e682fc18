"""Every bad input of the core issue raises a ValueError/TypeError naming the argument."""

import pytest
import torch

from pgcnn_triton import E2, GCNN, GroupConv, LiftingConv, PartialGCNN, PointwiseGroupConv, SamplingConfig
from pgcnn_triton.kernelnets import make_kernel_net
from pgcnn_triton.nn import make_norm

KW = dict(num_elements=4, kernel_hidden=4)


def lifted(c=2, b=2):
    lift = LiftingConv(c, 3, 3, **KW)
    return lift(torch.randn(b, c, 7, 7))


def test_wrong_rank():
    with pytest.raises(ValueError, match=r"x must have shape \[B, C, H, W\]"):
        LiftingConv(2, 3, 3, **KW)(torch.randn(2, 2, 4, 7, 7))
    y, g = lifted()
    with pytest.raises(ValueError, match=r"x must have shape \[B, C, G, H, W\]"):
        GroupConv(3, 3, 3, **KW)(y[:, :, 0], g)
    with pytest.raises(ValueError, match=r"PartialGCNN expects x of shape \[B, 2, H, W\], got rank 3"):
        PartialGCNN(in_channels=2, hidden=4, kernel_size=3, kernel_hidden=4)(torch.randn(2, 7, 7))
    with pytest.raises(ValueError, match=r"elements must have shape \[S, N\]"):
        GroupConv(3, 3, 3, **KW)(y, g[0])
    with pytest.raises(ValueError, match=r"elements must have shape \[S, N, 2\]"):
        GroupConv(3, 3, 3, group="E2", **KW)(y, g)


def test_channel_mismatch():
    with pytest.raises(ValueError, match="in_channels=3"):
        LiftingConv(3, 3, 3, **KW)(torch.randn(2, 2, 7, 7))
    y, g = lifted()
    with pytest.raises(ValueError, match="in_channels=5"):
        GroupConv(5, 3, 3, **KW)(y, g)
    with pytest.raises(ValueError, match="in_channels=4"):
        PointwiseGroupConv(4, 3, **KW)(y, g, g)


def test_group_axis_size_differs_from_number_of_elements():
    y, g = lifted()
    with pytest.raises(ValueError, match="4 group elements on its axis 2 but elements lists 3"):
        GroupConv(3, 3, 3, **KW)(y, g[:, :3])
    with pytest.raises(ValueError, match="sample sets"):
        GroupConv(3, 3, 3, **KW)(y, g.expand(3, -1))


@pytest.mark.parametrize("k", [0, -1, 2, 4])
def test_even_or_non_positive_kernel_size(k):
    for make in (lambda: LiftingConv(1, 1, k, **KW), lambda: GroupConv(1, 1, k, **KW),
                 lambda: PartialGCNN(kernel_size=k)):
        with pytest.raises(ValueError, match="kernel_size must be a positive odd int"):
            make()
    with pytest.raises(TypeError, match="kernel_size"):
        LiftingConv(1, 1, 3.0, **KW)


@pytest.mark.parametrize("n", [0, -2])
def test_num_elements_below_one(n):
    with pytest.raises(ValueError, match="num_elements must be >= 1"):
        LiftingConv(1, 1, 3, num_elements=n)
    with pytest.raises(ValueError, match="num_elements must be >= 1"):
        PartialGCNN(num_elements=n)


def test_unknown_names():
    with pytest.raises(ValueError, match="unknown group 'SO3'"):
        PartialGCNN(group="SO3")
    with pytest.raises(ValueError, match="unknown preset"):
        GCNN.from_preset("imagenet")
    for field in ("method", "shape_mode", "eval_mode", "estimator"):
        with pytest.raises(ValueError, match=field):
            PartialGCNN(**{field: "nonsense"})
    with pytest.raises(ValueError, match="unknown kernel_net"):
        make_kernel_net("Gaussian", 2, 4, 8)
    with pytest.raises(ValueError, match="unknown norm"):
        make_norm("instance", 4)
    with pytest.raises(ValueError, match="padding"):
        GroupConv(1, 1, 3, padding="full", **KW)
    with pytest.raises(TypeError, match="sampling must be a SamplingConfig"):
        GroupConv(1, 1, 3, sampling={"group": "SE2"})


def test_non_floating_input():
    with pytest.raises(TypeError, match="floating-point"):
        LiftingConv(1, 1, 3, **KW)(torch.ones(1, 1, 5, 5, dtype=torch.long))
    y, g = lifted()
    with pytest.raises(TypeError, match="floating-point"):
        GroupConv(3, 1, 3, **KW)(y.to(torch.int32), g)
    with pytest.raises(TypeError, match="torch.Tensor"):
        LiftingConv(1, 1, 3, **KW)([[1.0]])


def test_bad_channel_counts_and_config_types():
    with pytest.raises(ValueError, match="in_channels"):
        LiftingConv(0, 1, 3, **KW)
    with pytest.raises(TypeError, match="out_channels"):
        GroupConv(1, 2.5, 3, **KW)
    with pytest.raises(ValueError, match="even"):
        SamplingConfig(group=E2, num_elements=3)


@pytest.mark.parametrize("cls,preset,need", [
    (PartialGCNN, "cifar10-se2-partial", 28),      # 2 pools, then a 'valid' 7×7 conv: 28 // 4 = 7
    (PartialGCNN, "rotmnist-se2-partial", 28),
    (PartialGCNN, "cifar100-e2-full", 28),
    (GCNN, "cifar10-se2-partial", 4),              # 'same' 3×3 convs, 2 pools
])
def test_models_check_their_input_at_entry(cls, preset, need):
    model = cls.from_preset(preset)
    c = model.in_channels
    assert model.min_input_size() == need
    with pytest.raises(ValueError, match=rf"needs H, W >= {need} .*got {need - 1}x{need}"):
        model(torch.randn(2, c, need - 1, need))
    with pytest.raises(ValueError, match=rf"expects {c} input channels"):
        model(torch.randn(2, c + 1, need, need))
    with pytest.raises(TypeError, match="floating-point x .*int64"):
        model(torch.zeros(2, c, need, need, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[B, \d, H, W\], got rank 3"):
        model(torch.randn(c, need, need))
    with pytest.raises(TypeError, match="torch.Tensor"):
        model([[0.0]])


def test_min_input_size_is_the_smallest_size_that_runs():
    model = PartialGCNN(in_channels=1, num_classes=2, hidden=2, kernel_size=5, kernel_hidden=4, num_elements=2,
                        pool_blocks=(0, 1)).eval()
    need = model.min_input_size()
    assert need == 20  # 20 → 10 → 5 → 'valid' 5×5 → 1
    assert model(torch.randn(1, 1, need, need)).shape == (1, 2)
    with pytest.raises(ValueError, match="needs H, W >= 20"):
        model(torch.randn(1, 1, need - 1, need - 1))
    frozen = model.freeze(example_input=torch.randn(1, 1, need, need))
    assert frozen.min_input_size() == need
    with pytest.raises(ValueError, match="needs H, W >= 20"):
        frozen(torch.randn(1, 1, need, need - 1))
