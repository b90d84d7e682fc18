"""Which tiles the group conv's GPU launches use, checked on CPU with fake kernels (nothing runs): the
reproducible mode's pinned tiles, and autotuning kept apart for what changes the kernel."""

import pytest
import torch
from pgcnn_triton.kernels import _launch
from pgcnn_triton.kernels import group_conv_triton as gct


class FakeKernel:
    def __init__(self, name, launches):
        self.name, self.launches = name, launches

    def __getitem__(self, grid):
        def run(*args, **meta):
            self.launches.append((self.name, meta))
        return run


@pytest.fixture
def gpu_launches(monkeypatch):
    """The launchers as on a GPU (no interpreter), every kernel and autotuner a recording fake."""
    launches, tuned = [], []
    monkeypatch.setattr(gct, "interpreting", lambda: False)
    monkeypatch.setattr(_launch, "interpreting", lambda: False)
    monkeypatch.delenv("PGCNN_DETERMINISTIC", raising=False)
    monkeypatch.setattr(gct, "_conv_kernel", FakeKernel("conv", launches))
    monkeypatch.setattr(gct, "_bank_grad_kernel", FakeKernel("wgrad", launches))

    def fake_tuned(which, dtype, variant=None):
        tuned.append((which, variant))
        return FakeKernel(f"tuned {which}", launches)

    monkeypatch.setattr(gct, "_tuned", fake_tuned)
    return launches, tuned


def conv_all(batch, per_sample, dtype=torch.float32, tf32=True):
    x = torch.randn(batch, 2, 2, 6, 6, dtype=dtype)
    bank = torch.randn(batch if per_sample else 1, 4, 5, 4, dtype=dtype)
    y = gct.conv_forward(x, bank, None, 3, 1, 2, allow_tf32=tf32)
    gct.conv_input_grad(y, bank, x.shape, 3, 1, tf32)
    gct.conv_bank_grad(y, x, bank.shape, 3, 1, tf32)


@pytest.mark.parametrize("switch", ["env", "torch"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32, torch.float64])
def test_reproducible_mode_launches_the_pinned_tile(gpu_launches, monkeypatch, switch, dtype):
    launches, tuned = gpu_launches
    if switch == "env":
        monkeypatch.setenv("PGCNN_DETERMINISTIC", "1")
    else:
        monkeypatch.setattr(torch, "are_deterministic_algorithms_enabled", lambda: True)
    conv_all(3, True, dtype)
    assert tuned == []  # no autotuning: the summation order is the same in every process
    bm, bn, bk, warps, stages = gct.pinned_tile(dtype)
    assert [name for name, _ in launches] == ["conv", "conv", "wgrad"]
    for name, meta in launches:
        blocks = (meta["BLOCK_M"], meta["BLOCK_N"], meta["BLOCK_K"]) if name == "conv" else \
            (meta["BLOCK_R"], meta["BLOCK_C"], meta["BLOCK_P"])
        assert blocks == (bm, bn, bk) and (meta["num_warps"], meta["num_stages"]) == (warps, stages)
    assert gct.pinned_tile(dtype) in gct.autotune_configs(dtype)  # so the sm_90 compile test covers it


def test_autotuning_is_kept_apart_for_precision_bank_kind_and_batch(gpu_launches):
    _, tuned = gpu_launches
    conv_all(3, True, tf32=True)
    conv_all(3, True, tf32=False)
    conv_all(3, False)
    conv_all(4, True)
    conv_all(5, True)
    variants = [v for which, v in tuned if which == "conv"]
    assert variants == [("tf32", True, 4)] * 2 + [("ieee", True, 4)] * 2 + [("tf32", False, 1)] * 2 \
        + [("tf32", True, 4)] * 2 + [("tf32", True, 8)] * 2
    assert [v for which, v in tuned if which == "wgrad"] == [variants[2 * i] for i in range(5)]


def test_one_autotuner_per_variant():
    # one autotuner (one cache of tuned configurations) per variant, shared within it
    tiles = tuple(gct.autotune_configs(torch.float32))
    assert gct._tuned_with("conv", tiles, ("tf32", True, 4)) is gct._tuned_with("conv", tiles, ("tf32", True, 4))
    assert gct._tuned_with("conv", tiles, ("tf32", True, 4)) is not gct._tuned_with("conv", tiles, ("ieee", True, 4))
