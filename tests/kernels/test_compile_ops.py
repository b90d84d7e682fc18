"""The registered ops trace into one graph under torch.compile(fullgraph=True), on both backends."""

import pytest
import torch
from pgcnn_triton.kernels import global_max_pool, group_conv2d, group_pool, kernel_bank, num_disk_taps, use_backend

from tests.helpers import rel_err


def layer(hidden, weight, bias, x):
    bank = kernel_bank(hidden, weight, bias, 2)
    y = group_conv2d(x, bank, 3, 2, padding="same")
    pooled = group_conv2d(x, bank, 3, 2, pool="mean")
    return global_max_pool(y).sum() + group_pool(torch.relu(y), "max").mean() + pooled.square().mean()


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_fullgraph_compile_matches_eager(backend):
    torch._dynamo.reset()
    inputs = (torch.randn(1, 2, 3, num_disk_taps(3), 8), torch.randn(6, 8), torch.randn(6),
              torch.randn(2, 3, 3, 6, 6))
    inputs = tuple(t.requires_grad_() for t in inputs)
    with use_backend(backend):
        eager = layer(*inputs)
        eager_grads = torch.autograd.grad(eager, inputs)
        compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")(*inputs)
        compiled_grads = torch.autograd.grad(compiled, inputs)
    assert rel_err(compiled, eager) <= 1e-6
    for a, b in zip(compiled_grads, eager_grads):
        assert rel_err(a, b) <= 1e-5
