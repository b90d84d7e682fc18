"""What tables, CSV and figures report: |θ| (a negative θ acts as |θ|), "no group" for T(2) (issue 15, item 5)."""

import torch

from pgcnn_triton import PartialGCNN
from pgcnn_triton.sampling import PartialSampler
from pgcnn_triton.training import format_equivariance_table
from pgcnn_triton.training.records import equivariance_columns

SMALL = dict(in_channels=1, num_classes=3, hidden=3, kernel_hidden=4, pool_blocks=(), block_width_factors=None,
             num_blocks=1, num_elements=8)


def test_a_negative_theta_is_reported_as_its_magnitude():
    torch.manual_seed(0)
    model = PartialGCNN(**SMALL).eval()
    x = torch.randn(2, 1, 12, 12)
    thetas = {}
    for sign in (1, -1):
        with torch.no_grad():
            for s in model.samplers():
                if isinstance(s, PartialSampler):
                    s.probs.fill_(0.6 * sign)
            thetas[sign] = model(x)
    assert torch.allclose(thetas[1], thetas[-1], atol=1e-5)          # the same function ...
    rows = model.learned_equivariance()
    assert [round(r["theta"], 6) for r in rows[1:]] == [0.6] * (len(rows) - 1)  # ... so the same report
    assert {round(v, 6) for v in equivariance_columns(rows).values()} == {1.0, 0.6}
    table = format_equivariance_table({"partial": rows})
    assert "0.600" in table and "-0.600" not in table


def test_the_t2_baseline_reports_no_group():
    model = PartialGCNN.t2_baseline(**SMALL)
    rows = model.learned_equivariance()
    assert rows and all(r["group"] is None and r["theta"] is None and r["mirror_probability"] is None for r in rows)
    assert equivariance_columns(rows) == {}                           # no θ columns in metrics.csv
    table = format_equivariance_table({"t2": rows})
    assert table.count("no group") == len(rows) and "1.000" not in table
