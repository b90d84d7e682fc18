"""The static-mode mirror gate carries the straight-through gradient to the mirror logit (method.md §15b),
which is what lets MNIST6-M partial models learn to drop the mirrors in a short run."""

import torch

from pgcnn_triton.sampling import PartialSampler, SamplingConfig


def sample_until(open_gate: bool):
    s = PartialSampler(SamplingConfig(group="E2", num_elements=8, shape_mode="static")).train()
    with torch.no_grad():
        s.probs[1] = 0.0  # keep probability 0.5
    for seed in range(100):
        torch.manual_seed(seed)
        s.zero_grad()
        elements, gate = s(1)
        if bool(gate[0, -1] > 0) == open_gate:
            return s, elements, gate
    raise AssertionError("gate state never reached")


def test_open_gate_value_one_and_gradient_reaches_mirror_logit():
    s, elements, gate = sample_until(open_gate=True)
    assert torch.equal(gate.detach(), torch.ones(1, 8)) and elements.shape == (1, 8, 2)
    (gate[:, 4:].sum()).backward()
    assert s.probs.grad is not None and s.probs.grad[1] != 0.0


def test_closed_gate_value_zero_and_no_gradient():
    s, _, gate = sample_until(open_gate=False)
    assert torch.equal(gate.detach(), torch.tensor([[1.0] * 4 + [0.0] * 4]))
    if gate.requires_grad:
        gate.sum().backward()
        assert s.probs.grad is None or s.probs.grad[1] == 0.0
