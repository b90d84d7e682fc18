"""CUDA's grid limits (y, z ≤ 65,535 programs) with the limit lowered, so the Triton interpreter (which has
none) takes the launchers' folding paths: every launch stays within the limit and the results equal the
torch reference; a shape that cannot fold makes ``auto`` fall back to torch once, with a warning."""

import warnings

import pytest
import torch
from pgcnn_triton.kernels import _backend, _launch, bank_triton, group_conv2d, group_conv_triton, kernel_bank

from tests.helpers import rel_err

Y_LIMIT, Z_LIMIT = 2, 5  # programs per grid axis in these tests


class Spy:
    """Stands in for a Triton kernel object in its module: records each launch's grid, then launches."""

    def __init__(self, kernel, grids):
        self.kernel, self.grids = kernel, grids

    def __getitem__(self, grid):
        def run(*args, **meta):
            self.grids.append(tuple(grid(meta) if callable(grid) else grid))
            return self.kernel[grid](*args, **meta)
        return run


@pytest.fixture
def low_limit(monkeypatch):
    """The lowered limits, and the grids launched per kernel name."""
    monkeypatch.setattr(_launch, "MAX_GRID", (2**31 - 1, Y_LIMIT, Z_LIMIT), raising=False)
    grids = {}
    for module, name in ((group_conv_triton, "_conv_kernel"), (group_conv_triton, "_bank_grad_kernel"),
                         (bank_triton, "bank_fwd_kernel"), (bank_triton, "bank_grad_weight_kernel")):
        monkeypatch.setattr(module, name, Spy(getattr(module, name), grids.setdefault(name, [])))
    return grids


def within_limits(grids):
    return all(len(g) < 2 or g[1] <= Y_LIMIT for g in grids) and all(len(g) < 3 or g[2] <= Z_LIMIT for g in grids)


def conv_grads(x, bank, bias, backend, pool=None):
    x, bank, bias = (t.detach().requires_grad_() for t in (x, bank, bias))
    y = group_conv2d(x, bank, 3, 2, bias, pool=pool, backend=backend)
    y.backward(torch.linspace(-1, 1, y.numel()).reshape(y.shape))
    return y.detach(), x.grad, bank.grad, bias.grad


@pytest.mark.parametrize("pool", [None, "max"])
def test_per_sample_conv_folds_samples_past_the_z_limit(low_limit, pool):
    # 7 samples with their own banks: samples go on grid axis z, 5 per launch; the bank gradient's
    # z axis is (sample, tap, split) = 5 taps (k = 3's disk) per sample: one sample per launch
    x = torch.randn(7, 2, 2, 5, 5)
    bank = torch.randn(7, 2 * 2, 5, 2 * 2) / 4
    bias = torch.randn(2)
    ours = conv_grads(x, bank, bias, "triton", pool)
    ref = conv_grads(x, bank, bias, "torch", pool)
    for name, a, b in zip(("y", "dx", "dbank", "dbias"), ours, ref):
        assert rel_err(a, b) <= 1e-5, name
    assert all(map(within_limits, low_limit.values())), low_limit
    assert [g[2] for g in low_limit["_conv_kernel"]] == [5, 2, 5, 2]  # forward, then input gradient
    assert [g[2] for g in low_limit["_bank_grad_kernel"]] == [5] * 7


def test_kernel_bank_folds_output_channels_past_the_y_limit(low_limit):
    # Q = 6 · 24 = 144 weight rows in 64-row tiles: 3 programs on axis y, more than 2, so 2 launches
    hidden = torch.randn(1, 2, 2, 5, 8)
    weight, bias = torch.randn(6 * 24, 8), torch.randn(6 * 24)
    ours = kernel_bank(hidden, weight, bias, 6, backend="triton")
    ref = kernel_bank(hidden, weight, bias, 6, backend="torch")
    assert rel_err(ours, ref) <= 1e-6
    assert [g[1] for g in low_limit["bank_fwd_kernel"]] == [2, 1]


def test_auto_falls_back_to_torch_once_where_no_launch_fits(monkeypatch):
    """One sample's bank gradient needs 5 taps on axis z: with a limit of 4 nothing folds. ``triton``
    raises; ``auto`` warns once naming the shape and runs the torch path, for the rest of the process."""
    monkeypatch.setattr(_launch, "MAX_GRID", (2**31 - 1, 4, 4), raising=False)
    monkeypatch.setattr(_backend, "_FASTEST", {})
    monkeypatch.setattr(_backend, "_TORCH_ONLY", set(), raising=False)
    monkeypatch.setattr(_backend, "_LAUNCH_FALLBACKS", [], raising=False)
    x, bank, bias = torch.randn(2, 2, 2, 5, 5), torch.randn(1, 4, 5, 4) / 4, torch.randn(2)
    with pytest.raises(RuntimeError, match="5 programs on axis z"):  # _launch.GridLimitError
        conv_grads(x, bank, bias, "triton")
    with pytest.warns(RuntimeWarning, match=r"failed for shape key \('conv_bwd', \(\(2, 2, 2, 5, 5\)"):
        ours = conv_grads(x, bank, bias, "auto")
    ref = conv_grads(x, bank, bias, "torch")
    assert all(rel_err(a, b) <= 1e-5 for a, b in zip(ours, ref))
    assert [key[0] for key in _backend.launch_fallbacks()] == ["conv_bwd"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        conv_grads(x, bank, bias, "auto")
    assert not [w for w in caught if "failed for shape key" in str(w.message)]  # once: not tried again
    assert len(_backend.launch_fallbacks()) == 1
