"""The ``mirror_gradient="features"`` option: the mirror gate's straight-through value (1) multiplies the
mirrored elements' features, so its gradient also reaches the mirror logit through them (the MNIST6-M
demo learns to drop the mirrors in a short run with it). Same function in both shape modes."""

import torch

from pgcnn_triton.sampling import PartialSampler, SamplingConfig


def sample_until(open_gate: bool, shape_mode: str):
    s = PartialSampler(SamplingConfig(group="E2", num_elements=8, shape_mode=shape_mode,
                                      mirror_gradient="features")).train()
    with torch.no_grad():
        s.probs[1] = 0.0  # keep probability 0.5
    for seed in range(100):
        torch.manual_seed(seed)
        s.zero_grad()
        elements, mask, gate = s(1)
        if (elements.shape[1] == 8 and (mask is None or bool(mask[0, -1]))) == open_gate:
            return s, elements, mask, gate
    raise AssertionError("gate state never reached")


def test_open_gate_value_one_and_gradient_reaches_mirror_logit():
    for shape_mode in ("dynamic", "static"):
        s, elements, mask, gate = sample_until(True, shape_mode)
        assert torch.equal(gate.detach(), torch.ones(1, 8)) and elements.shape == (1, 8, 2)
        (gate[:, 4:].sum()).backward()
        assert s.probs.grad is not None and s.probs.grad[1] != 0.0


def test_closed_gate_masks_the_mirrors_and_has_no_gradient():
    s, _, gate = sample_until(False, "dynamic")[:3]
    assert gate is None
    s, elements, mask, gate = sample_until(False, "static")
    assert torch.equal(mask, torch.tensor([[True] * 4 + [False] * 4]))
    if gate.requires_grad:
        gate.sum().backward()
        assert s.probs.grad is None or s.probs.grad[1] == 0.0
