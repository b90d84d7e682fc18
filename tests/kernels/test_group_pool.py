import pytest
import torch
from pgcnn_triton.kernels import global_max_pool, group_pool


def test_group_pool_values_and_grads():
    x = torch.randn(2, 3, 4, 5, 5, dtype=torch.float64, requires_grad=True)
    assert torch.equal(group_pool(x, "max"), torch.stack([x[:, :, i] for i in range(4)]).amax(0))
    assert torch.allclose(group_pool(x, "mean"), sum(x[:, :, i] for i in range(4)) / 4)
    assert torch.equal(global_max_pool(x), x.reshape(2, 3, -1).amax(-1))
    for fn in (lambda t: group_pool(t, "max"), lambda t: group_pool(t, "mean"), global_max_pool):
        assert torch.autograd.gradcheck(fn, (x,))


def test_group_pool_errors():
    with pytest.raises(ValueError, match="mode"):
        group_pool(torch.randn(1, 1, 2, 3, 3), "sum")
    with pytest.raises(ValueError, match="G, H, W"):
        global_max_pool(torch.randn(1, 2, 3, 3))
