"""The group conv's bank gradient with split-K (split > 1 fixed-order partial sums), which the GPU picks
from the shape and the interpreter never does by itself: forced through the interpreter, against the
torch reference."""

import pytest
import torch
from pgcnn_triton.kernels import group_conv2d, group_conv_triton

from tests.helpers import rel_err


class SplitSpy:
    def __init__(self, kernel, seen):
        self.kernel, self.seen = kernel, seen

    def __getitem__(self, grid):
        def run(*args, **meta):
            self.seen.append(args[13])  # SPLIT
            return self.kernel[grid](*args, **meta)
        return run


def grads(x, bank, bias, backend):
    x, bank, bias = (t.detach().requires_grad_() for t in (x, bank, bias))
    y = group_conv2d(x, bank, 5, 3, bias, backend=backend)
    y.backward(torch.randn_like(y))
    return y.detach(), x.grad, bank.grad, bias.grad


@pytest.mark.parametrize(("split", "per_sample"), [(3, False), (2, True)])
def test_bank_gradient_with_split_matches_the_reference(monkeypatch, per_sample, split):
    seen = []
    monkeypatch.setattr(group_conv_triton, "_bank_grad_kernel", SplitSpy(group_conv_triton._bank_grad_kernel, seen))
    # unequal chunks: a shared bank reduces over 2 · 49 pixels (64 + 34 + an empty third), per-sample
    # banks over 49 (32 + 17); k = 5: 13 taps
    x = torch.randn(2, 3, 2, 7, 7)
    bank = torch.randn(2 if per_sample else 1, 3 * 2, 13, 3 * 2) / 10
    bias = torch.randn(3)
    torch.manual_seed(1)
    with group_conv_triton.forced_split(split):
        ours = grads(x, bank, bias, "triton")
    torch.manual_seed(1)
    ref = grads(x, bank, bias, "torch")
    assert seen == [split]
    for name, a, b in zip(("y", "dx", "dbank", "dbias"), ours, ref):
        assert rel_err(a, b) <= 1e-5, name


def test_forced_split_is_checked_and_ends_with_its_block():
    with pytest.raises(ValueError, match="forced_split: split must be a positive int, got 0"):
        group_conv_triton.forced_split(0).__enter__()
    with group_conv_triton.forced_split(2):
        assert group_conv_triton._FORCED_SPLIT[0] == 2
    assert group_conv_triton._FORCED_SPLIT[0] is None
