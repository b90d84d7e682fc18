"""Winograd F(2×2, 5×5) and F(2×2, 3×3) convolutions of the exported programs: the transforms are exact, the convolution
equals ``conv2d`` (float64 forward and backward, fp32 within 1e-5), ``auto`` takes it where it pays, the
ONNX file runs it in ONNX Runtime as eval, with fewer multiply-adds than the library's convolutions."""

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from pgcnn_triton import GCNN, GroupConv, LiftingConv, PartialGCNN, deploy, winograd
from pgcnn_triton.portable import compact_copy
from tests.models.test_custom_models import Plain
from tests.models.test_freeze import rel
from tests.test_deploy_compact import Wide, session


@pytest.mark.parametrize("r", [3, 5])
def test_transforms_compute_the_correlation_exactly(r):
    at, g, bt = winograd.transforms(r)
    torch.manual_seed(r)
    for _ in range(20):
        d, w = torch.randn(r + 1, dtype=torch.float64), torch.randn(r, dtype=torch.float64)
        expected = torch.stack([(w * d[i:i + r]).sum() for i in range(2)])
        assert torch.allclose(at @ ((g @ w) * (bt @ d)), expected, rtol=0, atol=1e-13)
    assert torch.equal(bt, bt.round())                 # integer input transform: the factors live in G


SHAPES = [  # (batch, C, O, H, W, (top, bottom, left, right)): odd and even outputs, 'same', 'valid', asymmetric
    (2, 3, 4, 9, 9, (2, 2, 2, 2)),
    (1, 5, 2, 8, 11, (0, 0, 0, 0)),
    (3, 2, 3, 7, 6, (3, 1, 0, 2)),
    (1, 4, 4, 5, 5, (4, 4, 4, 4)),
]


@pytest.mark.parametrize("r", [3, 5])
@pytest.mark.parametrize("shape", SHAPES)
def test_conv2d_equals_conv2d_forward_and_backward_in_float64(shape, r):
    batch, c, o, h, w, (top, bottom, left, right) = shape
    torch.manual_seed(0)
    x = torch.randn(batch, c, h, w, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(o, c, r, r, dtype=torch.float64, requires_grad=True)
    y = winograd.conv2d(x, weight, (top, bottom, left, right))
    expected = F.conv2d(F.pad(x, (left, right, top, bottom)), weight)
    assert y.shape == expected.shape
    assert rel(y.detach(), expected.detach()) <= 1e-13
    grad = torch.randn_like(y)
    gx, gw = torch.autograd.grad(y, (x, weight), grad)
    ex, ew = torch.autograd.grad(expected, (x, weight), grad)
    assert rel(gx, ex) <= 1e-13 and rel(gw, ew) <= 1e-13
    # the transformed weight (what the exported graph folds) gives the same
    with torch.no_grad():
        assert rel(winograd.conv2d(x, winograd.transform_weight(weight), (top, bottom, left, right)), expected) <= 1e-13


def test_conv2d_in_float32_is_within_1e5_of_float64():
    """Measured ~2e-6 for a 256-channel 5×5 conv (the points of winograd.POINTS); 1e-5 is the export bound."""
    torch.manual_seed(0)
    x, weight = torch.randn(2, 256, 14, 14, dtype=torch.float64), torch.randn(64, 256, 5, 5, dtype=torch.float64)
    expected = F.conv2d(x, weight, padding=2)
    assert rel(winograd.conv2d(x.float(), weight.float(), (2, 2, 2, 2)).double(), expected) <= 1e-5


def test_conv2d_refuses_negative_padding():
    with pytest.raises(ValueError, match="non-negative padding"):
        winograd.conv2d(torch.randn(1, 1, 8, 8), torch.randn(1, 1, 5, 5), (-1, -1, 0, 0))


def wide_group():
    """An E(2) model whose 7×7 group conv has 128 channels on both sides (16 × 8 elements): on 8×8 maps the
    split lowering's 5×5 square is one ``auto`` takes as a Winograd convolution."""
    opts = dict(group="E2", num_elements=8, kernel_hidden=8)
    return Plain(LiftingConv(1, 16, 5, **opts), GroupConv(16, 16, 7, **opts))


def winograd_calls(model, x, conv_algorithm, monkeypatch):
    """The number of Winograd convolutions one forward of the compact copy runs."""
    calls = []
    original = winograd.conv2d
    monkeypatch.setattr(winograd, "conv2d", lambda *a: calls.append(1) or original(*a))
    copy = compact_copy(model, x[:1], "kernel-net", conv_algorithm)
    with torch.no_grad():
        y = copy(x)
    return len(calls), y


def test_auto_takes_the_wide_5x5_squares_of_the_e2_preset(monkeypatch):
    """rotmnist-e2-full: the 5×5 squares of the four group convs on 14×14 and 7×7 maps (256–512
    channels), not the last conv (a 1×1 output) nor the 7×7 lift (one input channel)."""
    torch.manual_seed(0)
    model = PartialGCNN.from_preset("rotmnist-e2-full").eval()
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        expected = model(x)
    for algorithm, count in (("auto", 4), ("direct", 0), ("winograd", 4)):
        calls, y = winograd_calls(model, x, algorithm, monkeypatch)
        assert calls == count, algorithm
        assert rel(y, expected) <= 1e-5, algorithm


def test_auto_takes_the_wide_3x3_convs_of_a_gcnn_on_large_maps(monkeypatch):
    """rotmnist-se2-partial at hidden 32 (256–512 channels): the two group convs on 28×28 and the three on
    14×14 maps, not the three on 7×7 maps nor the lift (one input channel)."""
    torch.manual_seed(0)
    model = GCNN.from_preset("rotmnist-se2-partial", hidden=32).eval()
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        expected = model(x)
    calls, y = winograd_calls(model, x, "auto", monkeypatch)
    assert calls == 5 and rel(y, expected) <= 1e-5


def test_small_layers_stay_direct_under_auto_and_winograd_forces_them(monkeypatch):
    torch.manual_seed(0)
    model = Wide().eval()
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        expected = model(x)
    assert winograd_calls(model, x, "auto", monkeypatch)[0] == 0
    calls, y = winograd_calls(model, x, "winograd", monkeypatch)
    assert calls == 1 and rel(y, expected) <= 1e-5          # 'valid' has negative padding: direct


def multiply_adds_per_image(module, size):
    """Multiply-adds of one more image (the constant kernel-net subgraph cancels in the difference)."""
    counts = []
    for batch in (1, 2):
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            module(torch.randn(batch, 1, size, size))
        counts.append(counter.get_total_flops() / 2)
    return counts[1] - counts[0]


def test_winograd_copy_needs_fewer_multiply_adds_than_the_library_convs():
    """Per image, the Winograd form (products and transforms) of the preset does less than half the
    direct form's multiply-adds, which are the library's CPU convs' (test_deploy_compact)."""
    torch.manual_seed(0)
    model = PartialGCNN.from_preset("rotmnist-e2-full").eval()
    x = torch.zeros(1, 1, 28, 28)
    direct = multiply_adds_per_image(compact_copy(model, x, "kernel-net", "direct"), 28)
    auto = multiply_adds_per_image(compact_copy(model, x, "kernel-net", "auto"), 28)
    assert 0 < auto < 0.6 * direct, (auto, direct)


def onnx_matches_eval(model, path, size):
    run = session(path)
    for batch in (1, 3):
        x = torch.randn(batch, 1, size, size)
        with torch.no_grad():
            expected = model(x)
        assert rel(torch.from_numpy(run.run(None, {"x": x.numpy()})[0]), expected) <= 1e-5


def test_onnx_file_runs_winograd_in_onnx_runtime_as_eval(tmp_path):
    """A full E(2) model under the default (``auto``), and a partial one (θ < 1) with every 3×3 and 5×5 piece forced."""
    import onnx

    torch.manual_seed(0)
    model = wide_group().eval()
    path = deploy.export_model(model, tmp_path / "wide.onnx", example_input=torch.randn(1, 1, 8, 8))
    onnx_matches_eval(model, path, 8)
    kernels = [n for n in onnx.load(str(path)).graph.node if n.op_type == "Conv"]
    assert len(kernels) == 3              # the lift, the two 7×7 arms; the 5×5 square is matrix products
    partial = Wide().eval()
    with torch.no_grad():
        partial.conv.sampler.probs.fill_(0.4)
    path = deploy.export_model(partial, tmp_path / "partial.onnx", example_input=torch.randn(1, 1, 16, 16),
                               conv_algorithm="winograd")
    onnx_matches_eval(partial, path, 16)


def test_conv_algorithm_is_checked_and_defaults_by_format(tmp_path):
    model = Wide().eval()
    with pytest.raises(ValueError, match=r"conv_algorithm must be one of auto, direct, winograd, got 'fast'"):
        deploy.export_model(model, tmp_path / "m.onnx", conv_algorithm="fast")
    assert not (tmp_path / "m.onnx").exists()
    assert deploy.resolve_conv_algorithm(None, "onnx") == "auto"
    assert deploy.resolve_conv_algorithm(None, "torch") == "direct"
    with pytest.raises(ValueError, match="conv_algorithm must be one of"):
        compact_copy(model, torch.zeros(1, 1, 16, 16), "packed", "fast")


def test_cli_names_the_conv_algorithm_choices(tmp_path, capsys):
    from pgcnn_triton.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["export", str(tmp_path), "--out", str(tmp_path / "m.onnx"), "--conv-algorithm", "fast"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.splitlines()[-1]       # choices quoted or not, by Python version
    assert "--conv-algorithm: invalid choice: 'fast'" in err and all(a in err for a in winograd.CONV_ALGORITHMS)


EXPORT_TWICE = """
import torch
from pgcnn_triton.portable import export_program
from tests.test_deploy_compact import Wide
from tests.test_winograd import wide_group

torch.manual_seed(0)
for model, size in ((wide_group().eval(), 8), (Wide().eval(), 16)):   # the first Winograd use inside a trace
    x = torch.randn(2, 1, size, size)
    program = export_program(model, x[:1], conv_algorithm="winograd").module()
    with torch.no_grad():
        err = float((program(x) - model(x)).norm() / model(x).norm())
    assert err <= 1e-5, err
print("ok")
"""


def test_exports_in_a_fresh_process_keep_no_traced_constants(tmp_path):
    """The transforms built during one export's trace are not reused by the next (a fake tensor cached
    by the first export broke the second: 'We found a fake tensor in the exported program constant's list')."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", EXPORT_TWICE], cwd=root, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]


def biased():
    """5×5 convs with biases: a lift whose only piece is the 5×5 square (its bias added to the Winograd
    term) and a split 7×7 conv (64 input columns: the bias on an arm, the square added last)."""
    opts = dict(group="SE2", num_elements=4, kernel_hidden=8, bias=True)
    return Plain(LiftingConv(1, 16, 5, taps="square", **opts), GroupConv(16, 5, 7, **opts))


def test_winograd_pieces_carry_the_bias(monkeypatch):
    torch.manual_seed(0)
    model = biased().eval()
    with torch.no_grad():
        for layer in (model.lift, model.conv):
            layer.bias.normal_()
    x = torch.randn(2, 1, 10, 10)
    with torch.no_grad():
        expected = model(x)
    copy = compact_copy(model, x[:1], "kernel-net", "winograd")
    assert len(copy.lift.plan) == 1 and len(copy.conv.plan) == 3
    calls, y = winograd_calls(model, x, "winograd", monkeypatch)
    assert calls == 2 and rel(y, expected) <= 1e-5
