"""Deployment files the size of the model (issue 35): the ONNX file holds the kernel nets and their fixed
input points, ONNX Runtime folds them into the conv weights at session creation, and its convolutions
are those of the library's CPU lowering (in-disk taps only)."""

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from pgcnn_triton.kernels import global_max_pool
from pgcnn_triton.kernels.group_conv_reference import use_split
from torch import nn

from pgcnn_triton import GroupConv, LiftingConv, PartialGCNN, deploy, freeze
from pgcnn_triton.portable import compact_copy
from pgcnn_triton.portable_convs import KernelNetGroupConv, PackedGroupConv
from tests.models.test_freeze import rel
from tests.models.test_portable import zoo_members


class Wide(nn.Module):
    """7×7 convs over C_in·N_in = 64 input channels (θ = 0.5 keeps 2 of 4 elements in the second): the split
    lowering's dilated pieces, 'same' and 'valid'."""

    def __init__(self, kernel_hidden=6):
        super().__init__()
        opts = dict(group="E2", num_elements=4, partial=True, kernel_hidden=kernel_hidden)
        self.lift = LiftingConv(1, 16, 7, **opts)
        self.conv = GroupConv(16, 32, 7, **opts)
        self.valid = GroupConv(32, 4, 7, padding="valid", **opts)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        y, g = self.lift(x)
        y, g = self.conv(F.relu(y), g)
        y, g = self.valid(y, g)
        return self.head(global_max_pool(y))


def parameter_bytes(model):
    return 4 * sum(p.numel() for p in model.parameters())


def session(path):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def state_bytes(module):
    """The bytes of what an export of ``module`` writes as tensors: its parameters and buffers."""
    tensors = {t.data_ptr(): t for t in [*module.parameters(), *module.buffers()]}
    return sum(t.numel() * t.element_size() for t in tensors.values())


@pytest.fixture(scope="module")
def wide_file(tmp_path_factory):
    """The ONNX file of a :class:`Wide` model with θ < 1 (an export costs the same for any width: small
    here, the presets' kernel nets), and the model."""
    torch.manual_seed(0)
    model = Wide(kernel_hidden=32).eval()
    with torch.no_grad():
        model.conv.sampler.probs.fill_(0.4)
        model.valid.sampler.probs.fill_(0.9)
    path = tmp_path_factory.mktemp("onnx") / "wide.onnx"
    return model, deploy.export_model(model, path, example_input=torch.randn(1, 1, 16, 16))


def test_kernel_net_copy_equals_eval_for_every_family_and_custom_models():
    """The kernel-net and packed forms in eager torch, for every configuration the portable zoo covers
    (θ < 1, static mode, E(2), per-sample elements, square taps, GCNN, custom models) and the split pieces;
    the kernel-net form with every 3×3 and 5×5 piece as a Winograd convolution too."""
    members = zoo_members()
    torch.manual_seed(0)
    wide = Wide().eval()
    with torch.no_grad():
        wide.conv.sampler.probs.fill_(0.4)
        wide.valid.sampler.probs.fill_(0.9)
    members["split-pieces"] = wide
    x = torch.randn(3, 1, 12, 12)
    with torch.no_grad():
        for name, model in members.items():
            expected = model(x)
            for weights, kind, algorithm in (("kernel-net", KernelNetGroupConv, "direct"),
                                             ("packed", PackedGroupConv, "direct"),
                                             ("kernel-net", KernelNetGroupConv, "winograd")):
                copy = compact_copy(model, x[:1], weights, algorithm)
                assert any(isinstance(m, kind) for m in copy.modules())
                assert rel(copy(x), expected) <= 1e-5, (name, weights, algorithm)
    split = compact_copy(wide, x[:1], "kernel-net")
    assert len(split.conv.plan) == 3 and len(split.valid.plan) == 3 and len(split.lift.plan) == 1


def test_onnx_file_holds_the_kernel_nets_and_matches_eval(wide_file):
    """The file is the exported module's tensors (kernel nets, a few kB of sampled points) and a little
    graph, not the banks (those alone are ~6× these tensors here); it runs in ONNX Runtime as eval does."""
    model, path = wide_file
    size = path.stat().st_size
    tensors = state_bytes(compact_copy(model, torch.zeros(1, 1, 16, 16), "kernel-net"))
    banks = 4 * sum(layer.bank.numel() for layer in freeze(model, example_input=torch.zeros(1, 1, 16, 16)).modules()
                    if hasattr(layer, "bank"))
    assert 0.9 * tensors <= size <= 1.05 * tensors + 2 ** 15 < banks, (size, tensors, banks)
    assert size <= 3 * parameter_bytes(model)                    # 10× before: the dense 7×7 banks
    run = session(path)
    (inp,), (out,) = run.get_inputs(), run.get_outputs()
    assert inp.shape[0] == out.shape[0] == "batch"
    for batch in (1, 3):
        x = torch.randn(batch, 1, 16, 16)
        with torch.no_grad():
            expected = model(x)
        assert rel(torch.from_numpy(run.run(None, {"x": x.numpy()})[0]), expected) <= 1e-5


@pytest.mark.parametrize("preset", ["cifar10-se2-full", "rotmnist-e2-full"])
def test_exported_tensors_of_full_presets_are_at_most_3x_the_parameters(preset):
    """What the ONNX file of each preset writes as tensors, measured without an export (a few seconds
    each): the test above ties a file's size to these tensors."""
    torch.manual_seed(0)
    model = PartialGCNN.from_preset(preset).eval()
    size = 32 if preset.startswith("cifar") else 28
    copy = compact_copy(model, torch.zeros(1, model.input_channels, size, size), "kernel-net")
    assert state_bytes(copy) <= 3 * parameter_bytes(model)
    assert state_bytes(copy) <= 1.05 * parameter_bytes(model)    # the sampled points are a few kB


def test_onnx_convs_do_the_frozen_models_multiply_adds(wide_file):
    """Per output pixel, the ONNX file's convs multiply as many weights as the library's CPU convs of the
    frozen model (the in-disk taps where it runs the split lowering, k×k elsewhere): none more."""
    model, path = wide_file
    graph = onnx.shape_inference.infer_shapes(onnx.load(str(path))).graph
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in graph.value_info}
    shapes.update({i.name: list(i.dims) for i in graph.initializer})
    onnx_weights = sum(int(np.prod(shapes[n.input[1]])) for n in graph.node if n.op_type == "Conv")
    frozen = freeze(model, example_input=torch.zeros(1, 1, 16, 16))
    library = 0
    for layer in frozen.modules():
        if hasattr(layer, "bank") and layer.bank is not None and layer.bank.dim() == 4:
            _, rows, taps, cols = layer.bank.shape
            x = torch.empty(1, cols, 1, 8, 8)
            library += rows * cols * (taps if use_split(x, layer.bank, layer.kernel_size) else layer.kernel_size ** 2)
    assert onnx_weights == library
    dense = sum(layer.bank.shape[1] * layer.bank.shape[3] * layer.kernel_size ** 2 for layer in frozen.modules()
                if hasattr(layer, "bank") and layer.bank is not None and layer.bank.dim() == 4)
    assert library < 0.7 * dense                      # the split lowering runs in two of the three layers
