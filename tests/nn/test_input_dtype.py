"""Input dtype: as nn.Conv2d, a layer raises on an input whose dtype differs from its parameters,
naming both, unless autocast is on for the input's device (issue 15, item 8)."""

import pytest
import torch

from pgcnn_triton import GroupConv, LiftingConv, PartialGCNN, PointwiseGroupConv

SMALL = dict(in_channels=1, num_classes=2, hidden=2, kernel_size=3, kernel_hidden=4, num_elements=4,
             pool_blocks=(1,), block_width_factors=None, num_blocks=1)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64, torch.bfloat16])
def test_layers_reject_another_input_dtype(dtype):
    lift = LiftingConv(1, 2, 3, num_elements=4)
    conv = GroupConv(2, 2, 3, num_elements=4)
    pointwise = PointwiseGroupConv(2, 2, num_elements=4)
    x = torch.randn(1, 1, 6, 6)
    y, g = lift(x)
    with pytest.raises(TypeError, match=rf"LiftingConv got input of dtype {dtype}.*parameters are torch.float32"):
        lift(x.to(dtype))
    with pytest.raises(TypeError, match=rf"GroupConv got input of dtype {dtype}.*torch.float32"):
        conv(y.to(dtype), g)
    with pytest.raises(TypeError, match=rf"PointwiseGroupConv got input of dtype {dtype}"):
        pointwise(y.to(dtype), g, g)


def test_model_error_names_the_layer_not_a_norm():
    model = PartialGCNN(**SMALL).eval()
    with pytest.raises(TypeError, match="LiftingConv got input of dtype torch.float64 but its parameters are torch.float32"):
        model(torch.randn(1, 1, 12, 12, dtype=torch.float64))
    assert model.double()(torch.randn(1, 1, 12, 12, dtype=torch.float64)).dtype == torch.float64


def test_autocast_allows_other_input_dtypes():
    torch.manual_seed(0)
    model = PartialGCNN(**SMALL).eval()
    x = torch.randn(2, 1, 12, 12)
    with torch.no_grad():
        exact = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert model(x.bfloat16()).shape == exact.shape      # bf16 input to fp32 layers
            y, g = model.lift(x)                                 # the lift's bf16 output feeds fp32 layers
            assert y.dtype == torch.bfloat16
            model.blocks[0].gconv1(y, g)
        frozen = model.freeze(dtype=torch.bfloat16, example_input=x[:1])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = frozen(x).float()                              # fp32 input, bf16 banks
        assert float((got - exact).norm() / exact.norm()) < 5e-2
        # outside autocast a frozen model wants its model's dtype (bf16 only changes the banks' storage)
        assert torch.allclose(frozen(x), exact, rtol=5e-2, atol=5e-2)
        with pytest.raises(TypeError, match=r"FrozenConv \(LiftingConv\) got input of dtype torch.bfloat16"):
            frozen(x.bfloat16())
        assert frozen.double()(x.double()).dtype == torch.float64   # the check follows .to(dtype)
