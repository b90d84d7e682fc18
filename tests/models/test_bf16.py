"""bf16 on CPU (``torch.autocast("cpu", torch.bfloat16)``, the precision policy's choice on CPUs with bf16
units): exact transforms stay near-exact, logits agree with fp32, frozen and compiled bf16 inference.

Tolerances are from measurement (AMD EPYC with AVX512-BF16, 2026-12-03), with ≥ 3× margin: bf16 keeps
8 bits of mantissa, so every conv output carries ~2⁻⁹ relative rounding; what differs between two
forwards (rotated input, fp32 vs bf16) is that rounding, not the maths.
"""

import pytest
import torch

from pgcnn_triton import GCNN, PartialGCNN, freeze
from pgcnn_triton.equivariance import equivariance_error, flip_w, rot90
from tests.helpers import rel_err

BF16 = dict(device_type="cpu", dtype=torch.bfloat16)


def warmed(model, x):
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(x)
    return model.eval()


def test_exact_transforms_stay_exact_to_bf16_rounding_under_autocast():
    # measured under autocast: rot90 2.2e-3, flip 3.0e-3 (fp32: 2e-6)
    model = PartialGCNN.from_preset("rotmnist-e2-full")
    x = torch.randn(2, 1, 28, 28)
    warmed(model, x)
    with torch.autocast(**BF16):
        for t in (rot90(1), flip_w()):
            assert equivariance_error(model, x, t) <= 2e-2
        # and the autocast run really is bf16 (else this test would be the fp32 one)
        assert model(x).dtype == torch.bfloat16


@pytest.mark.parametrize("preset, size", [("mnist6-180-se2-partial", 28), ("rotmnist-e2-partial", 28),
                                          ("cifar10-se2-partial", 32)])
def test_bf16_logits_agree_with_fp32_on_presets(preset, size):
    # measured over seeds 0, 1: 0.7-1.1e-2, 2.2-2.9e-2, 1.1-1.3e-2 (GCNN cifar10 preset: 0.5-0.7e-2)
    model = PartialGCNN.from_preset(preset)
    x = torch.randn(2, model.lift.in_channels, size, size)
    warmed(model, x)
    with torch.no_grad():
        fp32 = model(x)
        with torch.autocast(**BF16):
            bf16 = model(x)
    assert bf16.dtype == torch.bfloat16
    assert rel_err(bf16.float(), fp32) <= 0.08


SMALL_GCNN = dict(in_channels=3, num_classes=4, hidden=8, num_blocks=2, block_width_factors=(1, 2),
                  pool_blocks=(1,), dropout_blocks=(), kernel_size=3, kernel_hidden=8, num_elements=4)


@pytest.mark.long(12)
def test_frozen_and_compiled_bf16_inference():
    # measured: frozen bf16 vs fp32 eval 2e-3 to 1.3e-2 on the presets; compiled vs eager frozen ≤ 4e-3
    torch.manual_seed(0)
    model = GCNN(**SMALL_GCNN)
    x = torch.randn(3, 3, 16, 16)
    warmed(model, x)
    with torch.no_grad():
        fp32 = model(x)
    frozen = freeze(model, dtype=torch.bfloat16)
    banks = [b for n, b in frozen.named_buffers() if n.endswith("bank")]
    assert banks and all(b.dtype == torch.bfloat16 for b in banks)
    compiled = torch.compile(frozen, backend="inductor", fullgraph=True)
    with torch.no_grad(), torch.autocast(**BF16):
        eager = frozen(x)
        graph = compiled(x)
    assert eager.dtype == graph.dtype == torch.bfloat16
    assert rel_err(eager.float(), fp32) <= 0.05
    assert rel_err(graph.float(), eager.float()) <= 2e-2


def test_float64_models_stay_float64_under_autocast():
    # autocast leaves float64 alone; the group conv (a custom op autocast does not see) must too
    model = PartialGCNN(in_channels=1, num_classes=3, hidden=4, kernel_size=5, kernel_hidden=6,
                        num_elements=4).double().eval()
    x = torch.randn(2, 1, 20, 20, dtype=torch.float64)
    with torch.no_grad():
        plain = model(x)
        with torch.autocast(**BF16):
            under = model(x)
    assert under.dtype == torch.float64 and rel_err(under, plain) <= 1e-12
