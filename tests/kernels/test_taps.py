import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from pgcnn_triton.kernels import disk_taps

from pgcnn_triton.groups import SE2

COUNTS = {1: 1, 3: 5, 5: 13, 7: 29}


@pytest.mark.parametrize("k,count", sorted(COUNTS.items()))
def test_tap_counts(k, count):
    layout = disk_taps(k)
    assert layout.num_taps == count
    assert layout.points.shape == (count, 2) and layout.offsets.shape == (count, 2)
    assert int((layout.dense_index < count).sum()) == count


@pytest.mark.parametrize("k", [3, 5, 7])
@given(angle=st.floats(0.0, 2 * math.pi, allow_nan=False))
def test_mask_is_the_same_at_every_angle(k, angle):
    # the official mask tests the *rotated* grid coordinates; rotation preserves the norm
    axis = torch.linspace(-1, 1, k, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
    rotated = SE2.act(torch.tensor([[angle]], dtype=torch.float64), grid)[0, 0]
    inside = rotated.norm(dim=-1) <= 1.0 + 1e-6
    assert int(inside.sum()) == COUNTS[k]
    assert torch.equal(torch.nonzero(inside).flatten(), torch.nonzero(disk_taps(k).dense_index < COUNTS[k]).flatten())


def test_k7_row_structure():
    offsets = disk_taps(7).offsets
    per_row = [int((offsets[:, 0] == r).sum()) for r in range(-3, 4)]
    assert per_row == [1, 5, 5, 7, 5, 5, 1]
    assert disk_taps(3).offsets.tolist() == [[-1, 0], [0, -1], [0, 0], [0, 1], [1, 0]]


@pytest.mark.parametrize("bad", [0, 2, -3, 4])
def test_bad_kernel_size(bad):
    with pytest.raises(ValueError, match="kernel_size"):
        disk_taps(bad)
    with pytest.raises(TypeError, match="kernel_size"):
        disk_taps(3.0)
