"""What ``pgcnn train`` / ``eval`` / ``plot`` print and draw for a user (issue 24, item 8)."""

import contextlib
import io
import json
import shutil

import pytest

import pgcnn_triton.training.experiment as experiment
from pgcnn_triton import SamplingConfig
from pgcnn_triton.cli import main
from pgcnn_triton.nn import GroupConv

TINY = ["--dataset", "bundled-mnist6-180", "--hidden", "2", "-N", "2", "--kernel-size", "3", "--epochs", "1",
        "--batch-size", "8", "--max-batches", "2"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One tiny run without progress bars, and what it printed."""
    out = tmp_path_factory.mktemp("runs") / "mnist6" / "partial"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(["train", *TINY, "--no-progress", "--out-dir", str(out)]) == 0
    return out, stdout.getvalue()


def test_train_log_keeps_the_precision_line_and_says_1_epoch(run):
    _, printed = run
    assert "precision:" in printed                      # --no-progress hides bars, not the precision choice
    assert "1 epoch," in printed and "1 epochs" not in printed


def test_progress_bars_write_no_frames_into_a_log(tmp_path, capfd):
    assert main(["train", *TINY, "--out-dir", str(tmp_path)]) == 0   # progress on; stderr is not a terminal
    assert "\r" not in capfd.readouterr().err


def test_eval_prints_one_line_and_json_on_request(run, capsys):
    out, _ = run
    capsys.readouterr()
    assert main(["eval", str(out), "--split", "val"]) == 0
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and "val split: acc " in line and "100 samples" in line and "(epoch 1)" in line
    assert main(["eval", str(out), "--split", "val", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 100


def test_plot_draws_a_run_cut_short_and_titles_comparisons_by_run(run, tmp_path, monkeypatch, capsys):
    out, _ = run
    cut = tmp_path / "other" / "partial"
    shutil.copytree(out, cut)
    (cut / "summary.json").unlink()       # interrupted: metrics.csv and last.pt only
    (cut / "curves.png").unlink()
    assert main(["plot", str(cut)]) == 0
    assert (cut / "curves.png").is_file() and (cut / "learned_equivariance.png").is_file()
    titles = []
    draw = experiment.plot_learned_equivariance
    monkeypatch.setattr(experiment, "plot_learned_equivariance",
                        lambda models, path, **kw: titles.append(list(models)) or draw(models, path, **kw))
    assert main(["plot", str(out), str(cut), "--out", str(tmp_path / "cmp.png")]) == 0
    assert titles == [["mnist6/partial (se2-partial)", "other/partial"]]  # run names; the label where known


def test_theta_is_a_name_for_the_first_entry_of_probs():
    conv = GroupConv(2, 2, kernel_size=3, sampling=SamplingConfig(group="SE2", num_elements=4, partial=True))
    conv.sampler.theta = 0.25
    assert float(conv.sampler.probs[0].detach()) == 0.25 and float(conv.sampler.theta.detach()) == 0.25
    assert conv.sampler.theta.requires_grad  # a view of the parameter: gradients reach probs
