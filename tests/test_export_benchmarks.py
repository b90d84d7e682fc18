"""The deployment benchmarks run end to end on tiny inputs and report what they claim to measure."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import export_speed  # noqa: E402
import winograd_convs  # noqa: E402


def test_winograd_convs_rows_compare_conv_and_winograd(tmp_path):
    rows = winograd_convs.main(["--shapes", "128:128:6", "--batches", "1,2", "--reps", "1",
                                "--out", str(tmp_path), "--name", "w"])
    assert [(r["batch"], r["auto_takes_it"]) for r in rows] == [(1, True), (2, True)]
    assert all(r["winograd_rel_err"] <= 1e-5 and r["ort_winograd_ms"] > 0 for r in rows)
    assert (tmp_path / "w.md").read_text().count("\n| 5 |") == 2


def test_export_speed_rows_match_eval_for_every_form(tmp_path):
    rows = export_speed.main(["--models", "gcnn:rotmnist-se2-partial:hidden=2", "--batches", "2",
                              "--reps", "1", "--threads", "1", "--out", str(tmp_path), "--name", "e"])
    assert [r["form"] for r in rows] == list(export_speed.FORMS)
    assert all(r["rel_err"] <= 1e-5 for r in rows)
    assert (tmp_path / "e.json").exists()
