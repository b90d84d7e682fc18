"""Networks built by users from the public layers: plain nn.Modules and GroupModel subclasses get the
same read-outs and switches as the presets (issue 15, item 3)."""

import pytest
import torch
import torch.nn.functional as F
from pgcnn_triton.kernels import global_max_pool
from torch import nn

import pgcnn_triton
from pgcnn_triton import GroupConv, GroupModel, LiftingConv, SpatialMaxPool, freeze
from pgcnn_triton.sampling import ElementSampler
from pgcnn_triton.training import TrainConfig, Trainer
from pgcnn_triton.training import learned_equivariance as training_learned_equivariance
from tests.training.tiny import tiny_data

OPTS = dict(group="E2", num_elements=4, kernel_hidden=4)


class Plain(nn.Module):
    """A lift, a group conv, a global max pool and a linear head (default: 3 channels, 3×3 kernels, E(2))."""

    def __init__(self, lift=None, conv=None):
        super().__init__()
        self.lift = lift or LiftingConv(1, 3, 3, **OPTS)
        self.conv = conv or GroupConv(3, 3, 3, **OPTS)
        self.head = nn.Linear(self.conv.out_channels, 2)

    def forward(self, x):
        y, g = self.lift(x)
        y, g = self.conv(F.relu(y), g)
        return self.head(global_max_pool(y))


class Sub(GroupModel):
    """Only forward_once: no sampling, in_channels or spatial_stages of its own."""

    def __init__(self):
        super().__init__()
        self.lift = LiftingConv(1, 3, 3, **OPTS)
        self.pool = SpatialMaxPool(2)
        self.conv = GroupConv(3, 3, 3, padding="valid", **OPTS)
        self.head = nn.Linear(3, 2)

    def forward_once(self, x):
        y, g = self.lift(x)
        y, g = self.conv(self.pool(F.relu(y)), g)
        return self.head(global_max_pool(y))


def modes(net):
    return {s.eval_mode for s in net.modules() if isinstance(s, ElementSampler)}


def test_read_outs_and_switches_on_a_plain_module():
    net = Plain()
    with torch.no_grad():
        net.conv.sampler.probs.fill_(-0.5)
    rows = pgcnn_triton.learned_equivariance(net)
    assert [r["layer"] for r in rows] == ["lift", "conv"]
    assert rows[0] == {"layer": "lift", "group": "E2", "theta": 1.0, "mirror_probability": 1.0}
    assert rows[1]["theta"] == 0.5 and rows[1]["mirror_probability"] == pytest.approx(torch.sigmoid(torch.tensor(-1.0)).item())
    assert training_learned_equivariance(net) == rows          # was [] for a plain module
    assert modes(pgcnn_triton.set_eval_mode(net, "stochastic")) == {"stochastic"}
    pgcnn_triton.set_gumbel_anneal_steps(net, 7)
    assert {s.anneal_steps for s in net.modules() if isinstance(s, ElementSampler)} == {7}
    with pytest.raises(ValueError, match="eval_mode"):
        pgcnn_triton.set_eval_mode(net, "sometimes")


def test_a_group_model_subclass_needs_only_forward_once():
    torch.manual_seed(0)
    model = Sub()
    assert model.min_input_size() == 6          # 2x2 pool, then a 'valid' 3x3 conv
    with pytest.raises(ValueError, match="needs H, W >= 6"):
        model(torch.randn(1, 1, 5, 5))
    with pytest.raises(ValueError, match="expects 1 input channels"):
        model(torch.randn(1, 2, 8, 8))
    assert [r["layer"] for r in model.learned_equivariance()] == ["lift", "conv"]
    model.set_eval_mode("mc", mc_samples=3)
    assert modes(model) == {"mc"} and model.mc_samples == 3
    model.eval()
    x = torch.randn(2, 1, 8, 8)
    assert model(x).shape == (2, 2)
    model.set_eval_mode("deterministic").set_gumbel_anneal_steps(5)
    with torch.no_grad():
        assert torch.allclose(model.freeze(example_input=x)(x), model(x), atol=1e-6)


def test_freeze_fixes_the_elements_of_a_plain_module():
    torch.manual_seed(0)
    net = pgcnn_triton.set_eval_mode(Plain(), "stochastic").eval()
    x = torch.randn(2, 1, 7, 7)
    frozen = freeze(net, example_input=x)
    pgcnn_triton.set_eval_mode(net, "deterministic")
    with torch.no_grad():
        assert torch.allclose(frozen(x), net(x), atol=1e-6)


def test_trainer_reports_a_plain_module(tmp_path):
    torch.manual_seed(0)
    config = TrainConfig(epochs=1, batch_size=4, max_batches=1, progress=False, warmup_epochs=0)
    summary = Trainer(Plain(), tiny_data(), config, tmp_path).fit()
    assert [r["layer"] for r in summary["learned_equivariance"]] == ["lift", "conv"]
    assert (tmp_path / "learned_equivariance.png").is_file()
