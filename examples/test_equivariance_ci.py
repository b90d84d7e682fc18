"""Property-test the equivariance of your models in CI: copy this file next to your tests and run pytest.

    pytest examples/test_equivariance_ci.py      # needs pytest and hypothesis (pip install 'pgcnn_triton[test]')

For each model in MODELS (a preset and a network of your own), hypothesis draws inputs of the model's
channels at sizes its pooling splits evenly, and checks exact invariance under every rot90 / flip
composition that permutes the model's group elements, then near-invariance at arbitrary angles on smooth
inputs. CI_SETTINGS is deterministic with 5 examples per test (~5 s per preset on 2 CPU cores).
"""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from pgcnn_triton import (
    GlobalMaxPool,
    GroupConv,
    GroupModel,
    LiftingConv,
    PartialGCNN,
    SamplingConfig,
    SpatialMaxPool,
)
from pgcnn_triton.equivariance import rotation
from pgcnn_triton.testing import assert_invariant
from pgcnn_triton.testing.strategies import CI_SETTINGS, exact_transforms, inputs_for, rotation_angles


class Net(GroupModel):
    """Your own network: lift, pool, group conv, invariant head."""

    def __init__(self, sampling):
        super().__init__()
        self.lift = LiftingConv(1, 8, kernel_size=5, sampling=sampling)
        self.pool = SpatialMaxPool(2)
        self.conv = GroupConv(8, 8, kernel_size=5, sampling=sampling)
        self.global_pool = GlobalMaxPool()
        self.head = nn.Linear(8, 10)

    def forward_once(self, x):
        y, g = self.lift(x)
        y, g = self.conv(self.pool(F.relu(y)), g)
        return self.head(self.global_pool(F.relu(y)))


def build(name):
    torch.manual_seed(0)
    if name == "custom":
        return Net(SamplingConfig(group="SE2", num_elements=8)).eval()
    return PartialGCNN.from_preset(name).eval()   # or load your trained weights here


MODELS = {name: build(name) for name in ("mnist6-m-e2-partial", "custom")}


@pytest.mark.parametrize("name", MODELS)
@CI_SETTINGS
@given(data=st.data())
def test_exactly_invariant_under_the_grid_symmetries(name, data):
    model = MODELS[name]
    x = data.draw(inputs_for(model))               # [1 or 2, C, S, S], S keeps the pooling exact
    transform = data.draw(exact_transforms(model))  # rot90 / flips that permute the model's elements
    assert_invariant(model, x, transform)          # fp32: relative error <= 1e-4 (rounding is ~1e-7)


@pytest.mark.parametrize("name", MODELS)
@CI_SETTINGS
@given(data=st.data())
def test_nearly_invariant_at_arbitrary_angles(name, data):
    model = MODELS[name]
    x = data.draw(inputs_for(model, smooth=True, min_size=16))  # band-limited, and a disk of some size
    angle = data.draw(rotation_angles())
    assert_invariant(model, x, rotation(angle))    # a statistical bound (CONTINUOUS_RTOL)
