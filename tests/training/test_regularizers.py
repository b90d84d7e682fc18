import pytest
import torch

from pgcnn_triton import PartialGCNN
from pgcnn_triton.nn import collect_kernel_norms
from pgcnn_triton.training import (
    kernel_norm_penalty,
    monotonic_penalty,
    partial_parameters,
)


def small(preset="mnist6-180-se2-partial"):
    return PartialGCNN.from_preset(preset, hidden=2, num_elements=4, kernel_size=3, kernel_net="SIREN",
                                   per_batch_element=False)


def test_monotonic_penalty_value():
    model = small()
    with torch.no_grad():
        for p, v in zip(partial_parameters(model), [1.0, 0.5, 0.8, 0.3, 0.9]):
            p.fill_(v)
    # ReLU(0.5 − 1) + ReLU(0.8 − 0.5) + ReLU(0.3 − 0.8) + ReLU(0.9 − 0.3) = 0.3 + 0.6
    assert float(monotonic_penalty(model, 1e-3).detach()) == pytest.approx(0.9e-3)
    assert monotonic_penalty(model, 0.0) is None
    penalty = monotonic_penalty(model, 1.0)
    penalty.backward()
    grads = [float(p.grad) for p in partial_parameters(model)]
    assert grads == pytest.approx([0.0, -1.0, 1.0, -1.0, 1.0])


def test_monotonic_penalty_e2_is_componentwise():
    model = small("mnist6-m-e2-partial")
    with torch.no_grad():
        values = [[1.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.5, 0.5], [0.5, 0.5]]
        for p, v in zip(partial_parameters(model), values):
            p.copy_(torch.tensor(v))
    assert float(monotonic_penalty(model, 2.0).detach()) == pytest.approx(2.0 * 0.5)   # only the mirror logit rises


def test_kernel_norm_penalty_sums_unsquared_norms():
    model = small()
    x = torch.randn(2, 1, 28, 28)
    torch.manual_seed(1)
    with collect_kernel_norms() as norms:
        model(x)
    # lifting conv, 2 blocks × (2 group convs + shortcut), last conv
    assert len(norms) == 8
    penalty = kernel_norm_penalty(norms, 1e-4)
    assert float(penalty.detach()) == pytest.approx(1e-4 * sum(float(n.detach()) for n in norms))
    penalty.backward()
    assert model.lift.kernel_net.output.weight.grad is not None
    with torch.no_grad():
        model.lift.bias.fill_(3.0)
    torch.manual_seed(1)
    with collect_kernel_norms() as norms2:
        model(x)
    # the bias starts at 0; ‖b‖ = 3·√2 is added to the (unchanged) kernel norm
    assert float(norms2[0].detach()) - float(norms[0].detach()) == pytest.approx(3.0 * 2 ** 0.5, rel=1e-5)
    assert kernel_norm_penalty([], 1.0) is None and kernel_norm_penalty(norms, 0.0) is None
