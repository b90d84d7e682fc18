"""One run-directory lifecycle for `pgcnn train` and the Python `Trainer` (issue 32, items 2, 4, 5): the
same refusal, `overwrite=` / `resume=`, a finished run resumed trains nothing, evaluation needs no run
directory, and training says where its run went."""

import json

import pytest
import torch

from pgcnn_triton.cli import main
from pgcnn_triton.training import Trainer, build_model
from tests.training.tiny import tiny_config, tiny_data, tiny_spec

TINY = ["--dataset", "bundled-mnist6-180", "--hidden", "2", "-N", "2", "--kernel-size", "3", "--kernel-net",
        "SIREN", "--no-per-batch-element", "--epochs", "1", "--batch-size", "8", "--max-batches", "2",
        "--no-progress"]


def trainer(out_dir, **kwargs):
    torch.manual_seed(0)
    spec = tiny_spec()
    return Trainer(build_model(spec), tiny_data(), tiny_config(epochs=1), out_dir, model_spec=spec, **kwargs)


def test_trainer_refuses_a_finished_run_and_takes_overwrite_and_resume(tmp_path, capsys):
    run = tmp_path / "run"
    trainer(run).fit()
    first = (run / "metrics.csv").read_text()
    with pytest.raises(FileExistsError, match=r"already holds a run .*resume=True.*overwrite=True"):
        trainer(run).fit()
    assert (run / "metrics.csv").read_text() == first   # nothing lost
    capsys.readouterr()
    again = trainer(run, resume=True)
    summary = again.fit()                               # complete: nothing trained, its stored summary
    out = capsys.readouterr().out
    assert "complete run" in out and "nothing to train" in out and "overwrite=True" in out
    assert summary["already_complete"] and summary["test_acc"] == json.loads((run / "summary.json").read_text())[
        "test_acc"]
    assert again.history and not (run / ".lock").exists() and (run / "metrics.csv").read_text() == first
    replaced = trainer(run, overwrite=True).fit()
    assert replaced["epochs_run"] == 1 and "overwrite: removed the previous run's" in capsys.readouterr().out
    with pytest.raises(ValueError, match="contradict"):
        trainer(run, resume=True, overwrite=True)


def test_evaluation_needs_no_run_directory(tmp_path, monkeypatch):
    from pgcnn_triton.training import evaluate_model

    monkeypatch.chdir(tmp_path)
    model = build_model(tiny_spec())
    data = tiny_data()
    result = Trainer(model, data, tiny_config()).evaluate(data.test)
    assert result["count"] == len(data.test) and 0 <= result["acc"] <= 1
    plain = evaluate_model(model, data.test, device="cpu")   # the same, as a function (fp32, no autocast)
    assert plain["count"] == result["count"] and plain["loss"] == pytest.approx(result["loss"], rel=5e-2)
    with pytest.raises(ValueError, match="pass an out_dir"):
        Trainer(model, data, tiny_config()).fit()
    assert list(tmp_path.iterdir()) == []


def test_resume_of_a_finished_cli_run_says_complete_and_exits_0(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--out-dir", str(run)]) == 0
    out = capsys.readouterr().out
    assert out.count(f"run directory: {run}") == 2  # at the start and at the end
    assert out.strip().splitlines()[-1] == f"run directory: {run}"
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    monkeypatch.setattr(Trainer, "train_epoch", lambda *a: pytest.fail("a complete run must not train"))
    assert main(["train", *TINY, "--out-dir", str(run), "--resume"]) == 0
    out = capsys.readouterr().out
    assert "holds a complete run" in out and "nothing to train" in out and "--epochs" in out
    assert "continuing at epoch" not in out
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_log_interval_writes_progress_lines_without_a_terminal(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", *TINY, "--out-dir", str(run), "--batch-size", "2", "--max-batches", "4", "--log-interval", "2"]
    assert main(argv) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if " batch 2/4 " in line]
    assert len(lines) == 1, lines
    assert "loss " in lines[0] and "img/s" in lines[0] and "ETA" in lines[0]
