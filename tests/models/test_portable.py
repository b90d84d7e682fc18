"""Portable programs (issue 26): a plain-torch copy of a frozen model computes model.eval() (deterministic)
for every preset family and custom models, and keeps no pgcnn_triton op or module."""

import pytest
import torch
from torch import nn
from torch.export import Dim

from pgcnn_triton import GCNN, PartialGCNN, portable
from pgcnn_triton.portable import DenseGroupConv, custom_ops, dense_copy
from tests.models.test_custom_models import Plain, Sub
from tests.models.test_freeze import CONFIGS, SMALL, rel, trained


class Zoo(nn.Module):
    """Many small models side by side, so that one export covers them all (an export is the slow part)."""

    def __init__(self, models):
        super().__init__()
        self.models = nn.ModuleDict(models)

    def forward(self, x):
        return tuple(m(x) for m in self.models.values())


#: the frozen-model configurations that change the portable program (θ < 1, both shape modes, E(2),
#: per-sample elements, the square taps of last_conv_t2 under E(2))
ZOO_CONFIGS = ("se2-dynamic", "e2-static", "se2-per-sample", "t2-last-conv-e2")


def zoo_members():
    members = {name: trained(CONFIGS[name]) for name in ZOO_CONFIGS}   # θ < 1, gates closed, moved BN stats
    torch.manual_seed(1)
    members["t2"] = PartialGCNN.t2_baseline(**SMALL)
    # 12 → 6 → 3 after the two pools, 1×1 after the final 'valid' 3×3 conv
    members["learnable-final-pooling"] = PartialGCNN(**SMALL, num_elements=4, partial=False,
                                                     learnable_final_pooling=True, final_spatial_dim=(1, 1))
    members["gcnn"] = GCNN(in_channels=1, num_classes=3, hidden=4, num_blocks=2, block_width_factors=(1, 2),
                           pool_blocks=(1,), dropout_blocks=(2,), kernel_hidden=4, num_elements=4)
    members["custom-group-model"] = Sub()
    members["custom-plain-module"] = Plain()
    with torch.no_grad():
        members["custom-plain-module"].conv.sampler.probs.fill_(0.6)
        members["custom-group-model"].conv.sampler.probs.fill_(0.4)
    return {name: m.eval() for name, m in members.items()}


@pytest.mark.long(10)
def test_portable_copy_equals_eval_for_every_family_and_custom_models():
    members = zoo_members()
    zoo = Zoo(members)
    x = torch.randn(3, 1, 12, 12)
    program = portable(zoo, example_input=x)
    with torch.no_grad():
        expected = {name: m(x) for name, m in members.items()}
        for batch in (x, torch.randn(5, 1, 12, 12)):        # another batch size: the batch axis is free
            got = dict(zip(members, program(batch)))
            want = expected if batch is x else {name: m(batch) for name, m in members.items()}
            errors = {name: rel(got[name], want[name]) for name in members}
            assert max(errors.values()) <= 1e-5, errors
    assert custom_ops(program) == []
    # only torch's own modules: nothing of pgcnn_triton (nor the Zoo) is needed to run it
    assert {type(m).__module__.split(".")[0] for m in program.modules()} == {"torch"}
    assert "pgcnn_triton" not in program.code
    # the models and their frozen layers are untouched
    assert not any(isinstance(m, DenseGroupConv) for m in zoo.modules())


def test_model_portable_reexports_without_library_ops():
    torch.manual_seed(0)
    model = Sub().eval()                                    # a custom GroupModel: its own .portable()
    x = torch.randn(2, 1, 8, 8)
    program = model.portable(x[:1])
    exported = torch.export.export(program, (x,), dynamic_shapes=({0: Dim("batch", min=1, max=64)},))
    assert custom_ops(exported) == []
    ops = {str(n.target) for n in exported.graph.nodes if n.op == "call_function"}
    assert "aten.conv2d.default" in ops and "aten.amax.default" in ops
    with torch.no_grad():
        assert rel(exported.module()(x[:1]), model(x[:1])) <= 1e-5


def test_dense_conv_is_the_bank_on_the_grid_with_zeros_outside_the_disk():
    model = trained(CONFIGS["e2-dynamic"])
    dense = dense_copy(model.freeze(example_input=torch.randn(1, 1, 12, 12)))
    weight = dense.blocks[0].gconv1.conv.weight                  # [C_out·N_out, C_in·N_in, 3, 3]
    corners = weight[..., [0, 0, -1, -1], [0, -1, 0, -1]]
    assert torch.all(corners == 0) and weight[..., 1, 1].abs().sum() > 0


def test_portable_errors_name_the_argument():
    model = trained(CONFIGS["se2-full"])
    with pytest.raises(ValueError, match=r"example_input must be a \[B, C, H, W\] tensor"):
        portable(model, example_input=torch.randn(1, 12, 12))
    with pytest.raises(ValueError, match="no pgcnn_triton conv layers"):
        portable(nn.Sequential(nn.Conv2d(1, 1, 3)), example_input=torch.randn(1, 1, 8, 8))
