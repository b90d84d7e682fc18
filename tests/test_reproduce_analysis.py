"""The partial-invariance analysis of ``pgcnn reproduce``: its summary, a tiny real run, resume rules."""

import json

import pytest

from pgcnn_triton.reproduce import analysis
from pgcnn_triton.reproduce.analysis import AnalysisSettings, run_analysis, stable_range


def test_stable_range_is_the_contiguous_band_around_zero():
    angles = [-180.0, -90.0, -45.0, 0.0, 45.0, 90.0, 180.0]
    assert stable_range(angles, [0.9, 0.5, 0.87, 0.9, 0.94, 0.5, 0.9]) == (-45.0, 45.0)
    # an angle back within the band beyond a break does not count: the range is contiguous from 0°
    assert stable_range(angles, [0.9, 0.9, 0.5, 0.9, 0.5, 0.9, 0.9]) == (0.0, 0.0)
    assert stable_range(angles, [0.5] * 7) == (-180.0, 180.0)  # a flat (fully invariant) curve
    assert stable_range(angles, [0.9, 0.5, 0.86, 0.9, 0.5, 0.5, 0.5], tolerance=0.05) == (-45.0, 0.0)


TINY = AnalysisSettings(epochs=1, train_size=20, batch_size=8, max_batches=1, curve_images=4, step_degrees=90.0,
                        ranges=(90,))


def test_tiny_analysis_trains_measures_reports_and_resumes(tmp_path, monkeypatch, capsys):
    result = run_analysis(tmp_path, TINY)
    rows = result["rows"]
    assert [row["range"] for row in rows] == [90]
    for row in rows:
        assert row["angles"] == [-180.0, -90.0, 0.0, 90.0, 180.0] and len(row["curve"]) == 5
        assert all(0.0 <= p <= 1.0 for p in row["curve"]) and row["images"] == 4
        assert row["p_upright"] == row["curve"][2] and row["p_180"] == row["curve"][4]
        low, high = row["stable"]
        assert low <= 0.0 <= high and abs(row["curve"][2] - row["curve"][row["angles"].index(low)]) <= 0.05
        assert len(row["theta"]) == 4 and row["parameters"] > 1000  # lifting, 2 block convs, last conv
        directory = analysis.range_dir(tmp_path, row["range"])
        for name in ("summary.json", "analysis.json", "last.pt"):
            assert (directory / name).is_file()
        summary = json.loads((directory / "summary.json").read_text())
        assert summary["data"]["options"]["rot_interval"] == float(row["range"])
    text = analysis.format_analysis_markdown(result)
    assert text.count("\n| ±") == 1 and "| ±90° |" in text
    png = analysis.plot_analysis(result, tmp_path / "analysis.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # an existing analysis is refused without --resume, and resumed only with the same settings
    with pytest.raises(FileExistsError, match="--resume"):
        run_analysis(tmp_path, TINY)
    with pytest.raises(ValueError, match="other settings"):
        run_analysis(tmp_path, AnalysisSettings(**{**TINY.__dict__, "epochs": 2}), resume=True)

    def no_training(*args):
        raise AssertionError("a finished range was trained again")

    monkeypatch.setattr(analysis, "_train_one", no_training)
    again = run_analysis(tmp_path, TINY, resume=True)
    assert [row["curve"] for row in again["rows"]] == [row["curve"] for row in rows]
    assert capsys.readouterr().out.count("read back") == 1


def test_tables_flag_names_the_analysis_and_refuses_unknown_keys(tmp_path):
    from pgcnn_triton.reproduce.cli import build_parser, run

    parser = build_parser()
    assert parser.parse_args([]).tables.split(",")[-1] == "analysis"  # part of the default reproduction
    with pytest.raises(ValueError, match="--tables must be .*rotmnist,mnist6-180,mnist6-m,analysis, got 'analyis'"):
        run(parser.parse_args(["--tables", "analyis", "--out-dir", str(tmp_path)]))
