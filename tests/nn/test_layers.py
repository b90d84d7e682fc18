import torch

from pgcnn_triton.nn import (
    GlobalMaxPool,
    GroupBatchNorm,
    GroupConv,
    GroupInstanceNorm,
    GroupLayerNorm,
    GroupPool,
    LiftingConv,
    SpatialMaxPool,
)
from pgcnn_triton.sampling import FullGroupSampler, PartialSampler


def test_lifting_always_samples_the_full_group():
    lift = LiftingConv(1, 2, 3, num_elements=8, partial=True)
    assert isinstance(lift.sampler, FullGroupSampler)
    assert not any(name.endswith("probs") for name, _ in lift.named_parameters())
    assert isinstance(GroupConv(2, 2, 3, num_elements=8, partial=True).sampler, PartialSampler)
    assert isinstance(GroupConv(2, 2, 3, num_elements=8, partial=False).sampler, FullGroupSampler)
    assert GroupConv(2, 2, 3, num_elements=8, partial=False, per_layer=False).sampler is None


def test_dtype_casts_keep_float64_taps_and_run():
    lift = LiftingConv(1, 2, 5, num_elements=4).half().double()
    assert lift.tap_points.dtype == torch.float64
    y, _ = lift(torch.randn(1, 1, 7, 7, dtype=torch.float64))
    assert y.dtype == torch.float64


def test_pooling_and_norm_shapes():
    x = torch.randn(2, 3, 4, 6, 6)
    assert SpatialMaxPool(2)(x).shape == (2, 3, 4, 3, 3)
    assert torch.equal(SpatialMaxPool(2)(x)[:, :, 1], torch.nn.functional.max_pool2d(x[:, :, 1], 2))
    assert GroupPool("mean")(x).shape == (2, 3, 6, 6)
    assert GlobalMaxPool()(x).shape == (2, 3)
    for norm in (GroupBatchNorm(3), GroupLayerNorm(3), GroupInstanceNorm()):
        assert norm(x).shape == x.shape
    inst = GroupInstanceNorm()(x)
    assert torch.allclose(inst.mean((2, 3, 4)), torch.zeros(2, 3), atol=1e-5)
    assert sum(p.numel() for p in GroupLayerNorm(3).parameters()) == 6


def test_group_instance_norm_normalises_each_b_c_over_g_h_w():
    # docs/method.md#pooling-and-normalisation: the CKResNet block's non-affine layer norm over (G, H, W) for every (b, c)
    x = torch.randn(2, 3, 4, 5, 6, dtype=torch.float64) * 3 + torch.arange(4, dtype=torch.float64)[:, None, None]
    mean = x.mean((2, 3, 4), keepdim=True)
    var = x.var((2, 3, 4), unbiased=False, keepdim=True)
    expected = (x - mean) / torch.sqrt(var + 1e-5)
    y = GroupInstanceNorm()(x)
    assert torch.allclose(y, expected, rtol=0, atol=1e-12)
    # the per-element means differ (elements are offset by 0..3): a norm over (H, W) alone would zero them
    assert float(y.mean((3, 4)).std()) > 0.1
