"""torch.export: a clear error for dynamic-mode partial models, and frozen models with dynamic B, H, W
(issue 15, item 7)."""

import pytest
import torch
from torch.export import Dim

from pgcnn_triton import PartialGCNN
from pgcnn_triton.sampling import DynamicShapeExportError

SMALL = dict(in_channels=1, num_classes=3, hidden=3, kernel_hidden=4, num_elements=4)


@pytest.mark.parametrize("preset", ["rotmnist-se2-partial", "rotmnist-e2-partial"])
def test_unfrozen_dynamic_model_export_points_to_freeze(preset, capfd):
    model = PartialGCNN.from_preset(preset, **SMALL).eval()
    with pytest.raises(DynamicShapeExportError, match=r"Export model\.freeze\(\) instead.*shape_mode='static'"):
        torch.export.export(model, (torch.randn(2, 1, 28, 28),))
    assert len(capfd.readouterr().err.splitlines()) < 5        # no partially traced graph dumped


def test_frozen_model_exports_with_dynamic_batch_height_and_width():
    torch.manual_seed(0)
    model = PartialGCNN.from_preset("rotmnist-se2-partial", **SMALL).eval()
    x = torch.randn(2, 1, 32, 32)
    frozen = model.freeze(example_input=x[:1])
    # the smallest size of the range must leave the last feature map at least 2x2 (32 here; 28 gives 1x1,
    # which the final BatchNorm's export specialises: README "Frozen inference")
    assert model.output_size(32) == 2
    size = dict(min=32, max=64)
    exported = torch.export.export(frozen, (x,), dynamic_shapes={
        "x": {0: Dim("B", min=1, max=16), 2: Dim("H", **size), 3: Dim("W", **size)}})
    for shape in ((2, 32, 32), (3, 40, 36), (1, 64, 64)):
        y = torch.randn(shape[0], 1, *shape[1:])
        with torch.no_grad():
            assert torch.allclose(exported.module()(y), frozen(y), atol=1e-6), shape
