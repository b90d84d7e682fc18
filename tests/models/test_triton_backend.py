"""Whole models and layers through the Triton kernels (interpreter on CPU) vs the torch reference."""

import pytest
import torch
from pgcnn_triton.kernels import use_backend

from pgcnn_triton import PartialGCNN
from pgcnn_triton.equivariance import equivariance_error, flip_w, rot90
from pgcnn_triton.nn import GroupConv, LiftingConv
from tests.helpers import rel_err

TINY = dict(in_channels=1, num_classes=3, hidden=4, block_width_factors=(1, 1, 2, 1), pool_blocks=(1,),
            kernel_size=3, kernel_hidden=8)


def logits_and_grads(model, x, backend, seed=0):
    model.zero_grad()
    torch.manual_seed(seed)  # the same sampled elements on both backends
    with use_backend(backend):
        logits = model(x)
        logits.square().sum().backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return logits.detach(), grads


@pytest.mark.parametrize("options", [
    dict(group="SE2", num_elements=4),
    dict(group="SE2", num_elements=4, per_batch_element=True),
    dict(group="E2", num_elements=4, kernel_size=5, pool_blocks=()),
])
def test_partial_gcnn_same_logits_and_gradients(options):
    model = PartialGCNN(**{**TINY, **options}).train()
    x = torch.randn(2, 1, 9, 9)
    ref_logits, ref_grads = logits_and_grads(model, x, "torch")
    logits, grads = logits_and_grads(model, x, "triton")
    assert rel_err(logits, ref_logits) <= 1e-4
    assert grads.keys() == ref_grads.keys() and len(grads) > 10
    flat = torch.cat([g.flatten() for g in grads.values()])
    assert rel_err(flat, torch.cat([g.flatten() for g in ref_grads.values()])) <= 1e-4
    scale = max(float(g.norm()) for g in ref_grads.values())
    for name, grad in grads.items():
        # biases feeding a BatchNorm have a zero gradient in exact arithmetic: only rounding noise to compare
        if ref_grads[name].norm() > 1e-4 * scale:
            assert rel_err(grad, ref_grads[name]) <= 1e-4, name


def test_full_model_rot90_invariance_through_triton():
    # no spatial pooling: max_pool2d on an odd size is not rot90-equivariant
    model = PartialGCNN(**{**TINY, "pool_blocks": ()}, num_elements=4, method="deterministic")
    x = torch.randn(2, 1, 9, 9)
    with torch.no_grad():
        model(x)  # one training-mode pass sets the BatchNorm statistics
    model.eval()
    with use_backend("triton"):
        assert equivariance_error(model, x, rot90(1)) <= 1e-5


def test_e2_layers_flip_equivariance_through_triton():
    kw = dict(group="E2", num_elements=8, method="deterministic", partial=False, kernel_hidden=8)
    lift, conv = LiftingConv(2, 3, 3, **kw), GroupConv(3, 2, 3, **kw)
    x = torch.randn(1, 2, 7, 7)
    with use_backend("triton"):
        y, g = lift(x)
        assert equivariance_error(lift, x, flip_w()) <= 1e-5
        assert equivariance_error(conv, y, flip_w(), g) <= 1e-5
        assert equivariance_error(conv, y, rot90(1), g) <= 1e-5
