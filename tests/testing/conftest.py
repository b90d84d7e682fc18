"""Small models shared by the tests of pgcnn_triton.testing (built once per session: they are read-only
here, and the assertions restore every buffer)."""

import pytest
import torch
import torch.nn.functional as F
from pgcnn_triton.kernels import global_max_pool
from torch import nn

from pgcnn_triton import GroupConv, GroupModel, LiftingConv, PartialGCNN, SamplingConfig, SpatialMaxPool

# the presets' layout (two 2x2 pools between 'same' 7x7 convs, a final 'valid' conv), made small
SMALL = dict(in_channels=1, num_classes=3, hidden=3, kernel_hidden=4, pool_blocks=(0, 1), block_width_factors=None,
             num_blocks=2, num_elements=8, method="deterministic", partial=False)


class Net(GroupModel):
    """lift → pool(k) → group conv → invariant head; ``blind=True`` makes the lift's kernel ignore the rotation."""

    def __init__(self, sampling, pool=2, blind=False):
        super().__init__()
        self.lift = RotationBlindLift(1, 4, sampling) if blind else LiftingConv(1, 4, 5, kernel_hidden=8,
                                                                                  sampling=sampling)
        self.pool = SpatialMaxPool(pool)
        self.conv = GroupConv(4, 4, 5, kernel_hidden=8, sampling=sampling)
        self.head = nn.Linear(4, 3)

    def forward_once(self, x):
        y, g = self.lift(x)
        y, g = self.conv(self.pool(F.relu(y)), g)
        return self.head(global_max_pool(F.relu(y)))


class RotationBlindLift(nn.Module):
    """A broken lifting layer: every group slot gets the response of the identity's kernel, i.e. the
    kernel ignores the rotation of the element it is evaluated for."""

    def __init__(self, c_in, c_out, sampling):
        super().__init__()
        self.inner = LiftingConv(c_in, c_out, 5, kernel_hidden=8, sampling=sampling)
        self.in_channels = c_in

    def forward(self, x):
        y, g = self.inner(x)
        return y[:, :, :1].expand_as(y).contiguous(), g


@pytest.fixture(scope="session")
def se2_model():
    torch.manual_seed(0)
    return PartialGCNN(**{**SMALL, "num_elements": 4}).eval()


@pytest.fixture(scope="session")
def e2_net():
    torch.manual_seed(0)
    return Net(SamplingConfig(group="E2", num_elements=8, method="deterministic", partial=False)).eval()


@pytest.fixture(scope="session")
def blind_net():
    torch.manual_seed(0)
    return Net(SamplingConfig(group="SE2", num_elements=8, method="deterministic", partial=False), blind=True).eval()


@pytest.fixture(scope="session")
def pool3_net():
    torch.manual_seed(0)
    return Net(SamplingConfig(group="SE2", num_elements=8, method="deterministic", partial=False), pool=3).eval()
