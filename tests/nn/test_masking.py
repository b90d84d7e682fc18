"""Static-shape-mode slot masks, layer by layer: every masked op equals the plain op on the valid slots
only (what dynamic mode's smaller tensors hold), and masked slots neither contribute nor receive."""

import pytest
import torch

from pgcnn_triton.nn import (
    GlobalMaxPool,
    GlobalMeanPool,
    GroupBatchNorm,
    GroupConv,
    GroupInstanceNorm,
    GroupLayerNorm,
    GroupPool,
    LiftingConv,
    PointwiseGroupConv,
    collect_kernel_norms,
)

MASK = torch.tensor([[True, False, True, True, False, False]])
VALID = MASK[0].nonzero().flatten()


def features(b=3, c=2, g=6, h=4, w=5):
    x = torch.randn(b, c, g, h, w, dtype=torch.float64) - 6.0  # negative: a max must skip masked zeros
    return x * MASK[:, None, :, None, None]


@pytest.mark.parametrize("make", [lambda: GroupBatchNorm(2), lambda: GroupLayerNorm(2), lambda: GroupInstanceNorm()])
def test_masked_norms_equal_the_norm_of_the_valid_slots(make):
    masked, plain = make().double(), make().double()
    for m in (masked, plain):
        if getattr(m, "weight", None) is not None:
            with torch.no_grad():
                m.weight.copy_(torch.tensor([1.5, 0.5]))
                m.bias.copy_(torch.tensor([0.3, -0.2]))  # a bias would fill masked slots if not masked
    for training in (True, True, False):  # twice in training: running statistics, then evaluation
        masked.train(training)
        plain.train(training)
        x = features().requires_grad_()
        y = masked(x, MASK)
        want = plain(x[:, :, VALID])
        assert torch.allclose(y[:, :, VALID], want, rtol=1e-12, atol=1e-12)
        assert bool((y[:, :, ~MASK[0]] == 0).all())
        if training:
            (grad,) = torch.autograd.grad(y.sin().sum(), x)
            (want_grad,) = torch.autograd.grad(want.sin().sum(), x)
            assert torch.allclose(grad, want_grad, rtol=1e-12, atol=1e-12)
    for key, value in plain.state_dict().items():  # running statistics follow the valid slots
        assert torch.allclose(masked.state_dict()[key].double(), value.double(), rtol=1e-12), key


def test_masked_pools_ignore_masked_slots():
    x = features()
    valid = x[:, :, VALID]
    assert torch.equal(GlobalMaxPool()(x, MASK), valid.amax((2, 3, 4)))
    assert torch.allclose(GlobalMeanPool()(x, MASK), valid.mean((2, 3, 4)), rtol=1e-14)
    assert torch.equal(GroupPool("max")(x, MASK), valid.amax(2))
    assert torch.allclose(GroupPool("mean")(x, MASK), valid.mean(2), rtol=1e-14)
    assert not torch.equal(GlobalMaxPool()(x), valid.amax((2, 3, 4)))  # the masked zeros would win


def test_static_convs_mask_outputs_ignore_masked_inputs_and_count_only_valid_kernels():
    kw = dict(group="SE2", num_elements=6, partial=False, per_layer=False, method="deterministic",
              kernel_hidden=6, shape_mode="static")
    lift = LiftingConv(1, 2, 3, **kw).double()
    conv = GroupConv(2, 3, 3, **kw).double()  # reuses its input elements (and their mask)
    shortcut = PointwiseGroupConv(2, 3, **kw).double()
    with torch.no_grad():
        conv.bias.fill_(0.5)  # a non-zero bias must not leak into masked outputs
    x, g, none = lift(torch.randn(2, 1, 6, 6, dtype=torch.float64))
    assert none is None
    garbage = x.clone()
    garbage[:, :, ~MASK[0]] = 1e3
    with collect_kernel_norms() as norms:
        y, g_out, mask = conv(garbage, g, MASK)
    assert torch.equal(mask, MASK) and bool((y[:, :, ~MASK[0]] == 0).all())
    # the valid slots equal the layer run on the valid slots only (dynamic mode's tensors)
    dynamic = GroupConv(2, 3, 3, **{**kw, "shape_mode": "dynamic"}).double()
    dynamic.load_state_dict(conv.state_dict())
    with collect_kernel_norms() as dyn_norms:
        want, _ = dynamic(x[:, :, VALID], g[:, VALID])
    assert torch.allclose(y[:, :, VALID], want, rtol=1e-12, atol=1e-12)
    assert torch.allclose(norms[0], dyn_norms[0], rtol=1e-12)  # the regulariser counts valid slots only
    s, _, s_mask = shortcut(garbage, g, g, MASK, MASK)
    assert torch.equal(s_mask, MASK) and bool((s[:, :, ~MASK[0]] == 0).all())
    assert torch.isfinite(s).all() and float(s[:, :, VALID].detach().abs().max()) < 1e2  # the 1e3 inputs were ignored


def test_bad_masks_are_rejected():
    conv = GroupConv(2, 3, 3, num_elements=6, kernel_hidden=6, shape_mode="static")
    x = torch.randn(1, 2, 6, 5, 5)
    g = torch.zeros(1, 6, dtype=torch.float64)
    with pytest.raises(TypeError, match="mask must be None or a bool tensor"):
        conv(x, g, MASK.float())
    with pytest.raises(ValueError, match=r"mask must have shape \[S, G\]"):
        conv(x, g, MASK[:, :4])
    shortcut = PointwiseGroupConv(2, 3, num_elements=6, kernel_hidden=6, shape_mode="static")
    with pytest.raises(ValueError, match=r"mask_out must have shape \[S, G_out\]"):
        shortcut(x, g, g, MASK, MASK[:, :4])


@pytest.mark.parametrize("make", [lambda: GroupBatchNorm(2), lambda: GroupLayerNorm(2), lambda: GroupInstanceNorm()])
def test_masked_norms_low_precision_follow_the_plain_norms_dtype(make):
    """bf16 features: statistics in float32 (as the plain norms), the plain norm's output dtype, also
    under autocast (which runs layer / group norms in float32)."""
    masked, plain = make(), make()
    x = features().float()
    for autocast in (False, True):
        xb = x.bfloat16()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            y, want = masked(xb, MASK), plain(xb[:, :, VALID])
        assert y.dtype == want.dtype
        assert torch.allclose(y[:, :, VALID].float(), want.float(), atol=0.05, rtol=0.02)
        assert bool((y[:, :, ~MASK[0]] == 0).all())
