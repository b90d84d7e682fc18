"""check_equivariance prints and returns the table: exact transforms, arbitrary angles, learned subsets
(issue 25, item 3)."""

import pytest
import torch

from pgcnn_triton import PartialGCNN
from pgcnn_triton.testing import check_equivariance
from tests.testing.conftest import SMALL


def test_report_of_an_exact_model(e2_net, capsys):
    report = check_equivariance(e2_net, angles=(30.0,))
    out = capsys.readouterr().out
    assert report.passed and len(report.transforms) == 7 and all(r["exact"] for r in report.transforms)
    assert max(r["error"] for r in report.transforms) <= 1e-5 and report.input_shape == (2, 1, 16, 16)
    assert "equivariance of Net (E2 with N = 8" in out and out.count(" pass") == 7 and "30°:" in out
    assert [r["layer"] for r in report.layers] == ["lift", "conv"] and "θ = 1.000 (arc ±180°)" in out


def test_report_of_a_partial_model_shows_where_it_breaks(capsys):
    torch.manual_seed(0)
    model = PartialGCNN(**{**SMALL, "method": "random", "partial": True}).eval()
    with torch.no_grad():
        model.blocks[1].gconv2.sampler.probs[0] = 0.5
    with pytest.warns(UserWarning, match=r"not meant to be exactly invariant: .*blocks\.1\.gconv2 θ = 0\.5"):
        report = check_equivariance(model, torch.randn(1, 1, 28, 28), angles=(45.0,))
    out = capsys.readouterr().out
    assert not report.passed and "FAIL" in out and "not a symmetry of the elements" in out   # flips on SE2
    assert min(r["error"] for r in report.transforms if r["exact"]) > 1e-3
    assert "blocks.1.gconv2" in out and "θ = 0.500 (arc ±90°)" in out
    assert report.layers[-1]["layer"] == "last_conv" and report.layers[-1]["theta"] == 1.0
