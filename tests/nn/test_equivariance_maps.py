"""The exact index maps of docs/method.md#exact-symmetries, as property tests over shapes."""

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pgcnn_triton.kernels import use_backend

from pgcnn_triton.equivariance import equivariance_error, flip_h, flip_w, rot90
from pgcnn_triton.nn import GroupConv, LiftingConv, PointwiseGroupConv
from tests.helpers import batches, channels, kernel_sizes, odd_sizes, rel_err

# σ(j): out(T x)[:, :, j] = T(out(x)[:, :, σ(j)])
SIGMA = {
    ("SE2", "rot90"): [1, 2, 3, 0],
    ("E2", "rot90"): [1, 2, 3, 0, 7, 4, 5, 6],
    ("E2", "flip_w"): [4, 5, 6, 7, 0, 1, 2, 3],
    ("E2", "flip_h"): [6, 7, 4, 5, 2, 3, 0, 1],
}
SPATIAL = {"rot90": lambda t: torch.rot90(t, 1, (-2, -1)), "flip_w": lambda t: t.flip(-1), "flip_h": lambda t: t.flip(-2)}
TRANSFORM = {"rot90": rot90(1), "flip_w": flip_w(), "flip_h": flip_h()}
CASES = [("SE2", 4, "rot90"), ("E2", 8, "rot90"), ("E2", 8, "flip_w"), ("E2", 8, "flip_h")]


def grid_kwargs(group, n):
    return dict(group=group, num_elements=n, method="deterministic", partial=False)


def expected(out, group, name):
    return SPATIAL[name](out)[:, :, SIGMA[(group, name)]]


@pytest.mark.parametrize("group,n,name", CASES)
@given(b=batches, c_in=channels, c_mid=channels, c_out=channels, k=kernel_sizes, hw=odd_sizes)
def test_lifting_group_and_pointwise_index_maps(group, n, name, b, c_in, c_mid, c_out, k, hw):
    check_index_maps(group, n, name, b, c_in, c_mid, c_out, k, hw)


@pytest.mark.parametrize("group,n,name", CASES)
@settings(max_examples=5)  # the Triton interpreter costs ~0.5 s per example on CPU: 7 examples ≈ 3–3.5 s per case
@given(b=batches, c_in=channels, c_mid=channels, c_out=channels, k=st.sampled_from([3, 5]),
       hw=st.sampled_from([5, 7, 9]))
# every run sees both odd sizes around 7, both kernel sizes, a batch of 2 and several channels
@example(b=2, c_in=3, c_mid=2, c_out=1, k=5, hw=5)
@example(b=1, c_in=1, c_mid=3, c_out=2, k=3, hw=9)
def test_index_maps_through_triton_kernels(group, n, name, b, c_in, c_mid, c_out, k, hw):
    with use_backend("triton"):
        check_index_maps(group, n, name, b, c_in, c_mid, c_out, k, hw)


def check_index_maps(group, n, name, b, c_in, c_mid, c_out, k, hw):
    kw = grid_kwargs(group, n)
    lift = LiftingConv(c_in, c_mid, k, kernel_hidden=8, **kw).eval()
    gconv = GroupConv(c_mid, c_out, k, kernel_hidden=8, **kw).eval()
    point = PointwiseGroupConv(c_out, c_mid, kernel_hidden=8, **kw)
    x = torch.randn(b, c_in, hw, hw)

    def run(inp):
        y0, g0 = lift(inp)
        y1, g1 = gconv(y0, g0)
        y2, _ = point(y1, g1, g1)
        return y0, y1, y2

    for out, out_t in zip(run(x), run(SPATIAL[name](x))):
        assert rel_err(out_t, expected(out, group, name)) <= 1e-5


@pytest.mark.parametrize("group,n,name", CASES)
def test_api_permutation_equals_table(group, n, name):
    lift = LiftingConv(1, 2, 3, kernel_hidden=8, **grid_kwargs(group, n))
    _, g = lift(torch.randn(1, 1, 5, 5))
    assert TRANSFORM[name].permutation(g)[0].tolist() == SIGMA[(group, name)]


@pytest.mark.parametrize("group,n,name", CASES)
def test_equivariance_error_api_on_each_layer(group, n, name):
    kw = grid_kwargs(group, n)
    x = torch.randn(2, 2, 9, 9)
    lift = LiftingConv(2, 3, 5, kernel_hidden=8, **kw)
    assert equivariance_error(lift, x, TRANSFORM[name]) <= 1e-5
    y, g = lift(x)
    assert equivariance_error(GroupConv(3, 2, 5, kernel_hidden=8, **kw), y, TRANSFORM[name], g) <= 1e-5
    point = PointwiseGroupConv(3, 2, kernel_hidden=8, **kw)
    assert equivariance_error(lambda f, e: point(f, e, e), y, TRANSFORM[name], g) <= 1e-5


def test_se2_is_not_flip_equivariant():
    kw = grid_kwargs("SE2", 4)
    with pytest.raises(ValueError, match="mirror"):
        equivariance_error(LiftingConv(1, 2, 3, **kw), torch.randn(1, 1, 7, 7), flip_w())


def test_random_per_sample_elements_are_equivariant_under_rot90():
    # a stratified full-group sample with N a multiple of 4 is closed under 90° rotations, per sample set
    kw = dict(group="SE2", num_elements=8, partial=False, per_batch_element=True)
    lift = LiftingConv(2, 3, 5, kernel_hidden=8, **kw)
    gconv = GroupConv(3, 2, 5, kernel_hidden=8, **kw)
    x = torch.randn(3, 2, 9, 9)
    assert equivariance_error(lift, x, rot90(1)) <= 1e-5
    y, g = lift(x)
    assert g.shape == (3, 8) and len(set(g[:, 0].tolist())) == 3
    assert equivariance_error(gconv, y, rot90(1), g) <= 1e-5
