"""Runs are never lost or silently changed (issue 23): refused overwrites, a run-directory lock, honest
resume, finite-only checkpoints, and one-line errors of the ``pgcnn`` CLI under faults."""

import csv
import errno
import json
import os
import runpy
import shutil
import signal
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch

from pgcnn_triton.cli import build_parser, main
from pgcnn_triton.training import load_checkpoint
from pgcnn_triton.training.args import out_dir_from_args
from pgcnn_triton.training.rundir import RunDirectory
from pgcnn_triton.training.trainer import Trainer
from tests.training.tiny_cli import TINY
from tests.training.tiny_cli import train as tiny_train

ROOT = Path(__file__).resolve().parents[2]


def train(out, *flags):
    return tiny_train(out, *flags, max_batches=2)


def one_line_error(capsys, prog="pgcnn"):
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"{prog}: ") and "\n" not in err and "Traceback" not in err, err
    return err


def metrics(run):
    with open(run / "metrics.csv") as f:
        return [{k: v for k, v in row.items() if k != "epoch_time_s"} for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished 2-epoch run (the uninterrupted reference); tests copy it before changing anything."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert train(out, "--epochs", "2") == 0
    return out


def copy_of(run, tmp_path):
    target = tmp_path / "run"
    shutil.copytree(run, target)
    return target


def test_an_existing_run_is_refused_and_left_untouched(finished, tmp_path, capsys):
    run = copy_of(finished, tmp_path)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    capsys.readouterr()
    assert train(run, "--epochs", "1") == 1
    err = one_line_error(capsys)
    assert str(run) in err and "--resume" in err and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_a_second_trainer_on_a_locked_directory_is_refused_at_once(tmp_path, capsys):
    with RunDirectory(tmp_path / "busy"):  # another trainer holds the directory
        assert train(tmp_path / "busy", "--epochs", "1") == 1
        err = one_line_error(capsys)
        assert "in use by another trainer" in err and f"process {os.getpid()}" in err
        assert not (tmp_path / "busy" / "last.pt").exists()
    assert not (tmp_path / "busy").exists()  # released, and the empty directory it made is gone


def test_resume_with_other_architecture_or_data_flags_is_refused_naming_each(finished, tmp_path, capsys):
    run = copy_of(finished, tmp_path)
    before = (run / "last.pt").read_bytes()
    capsys.readouterr()
    assert main(["train", "--out-dir", str(run), *TINY, "--max-batches", "2", "--hidden", "4", "--group", "e2", "--seed", "7",
                 "--train-size", "16", "--resume"]) == 1
    err = one_line_error(capsys)
    for part in ("--hidden: stored 2, given 4", "--group: stored se2, given e2", "--seed: stored 0, given 7",
                 "--train-size: stored 8, given 16", "--epochs"):
        assert part in err, part
    assert (run / "last.pt").read_bytes() == before


def test_resume_applies_and_records_the_new_epochs_and_learning_rate(finished, tmp_path, capsys):
    run = copy_of(finished, tmp_path)
    assert train(run, "--epochs", "3", "--lr", "0.02", "--resume") == 0
    assert "--epochs 2 → 3, --lr 0.003 → 0.02" in capsys.readouterr().out
    rows = metrics(run)
    # bundled-mnist6-180: constant schedule, so the logged rate is the base rate of each epoch
    assert [float(r["lr"]) for r in rows] == [0.003, 0.003, 0.02]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs_run"] == 3 and summary["config"]["lr"] == 0.02 and summary["flags"]["lr"] == 0.02
    assert summary["resumes"] == [{"after_epoch": 2, "changed": {"epochs": {"stored": 2, "given": 3},
                                                                 "lr": {"stored": 0.003, "given": 0.02}}}]
    last = load_checkpoint(run / "last.pt")
    # the weights' group takes the new --lr, θ's keeps its --lr-probs
    assert last["flags"]["epochs"] == 3 and {g["lr"] for g in last["optimizer"]["param_groups"]} == {0.02, 0.03}


def test_killed_during_a_checkpoint_write_then_resumed_is_bit_identical(finished, tmp_path):
    run = tmp_path / "killed"
    pid = os.fork()
    if pid == 0:  # the child: a trainer SIGKILLed in the middle of writing its epoch-2 checkpoint
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            real_save = torch.save

            def dying_save(obj, f, *args, **kwargs):
                if isinstance(obj, dict) and obj.get("epoch") == 2:
                    if hasattr(f, "write"):
                        f.write(b"PK\x03\x04 half a checkpoint")
                        f.flush()
                    os.kill(os.getpid(), signal.SIGKILL)
                return real_save(obj, f, *args, **kwargs)

            torch.save = dying_save
            train(run, "--epochs", "2")
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert load_checkpoint(run / "last.pt")["epoch"] == 1
    assert train(run, "--epochs", "2", "--resume") == 0
    a, b = load_checkpoint(finished / "last.pt"), load_checkpoint(run / "last.pt")
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"]), "weights differ after the kill"
    assert metrics(run) == metrics(finished)
    assert json.loads((run / "summary.json").read_text())["test_acc"] == \
        json.loads((finished / "summary.json").read_text())["test_acc"]


def test_nan_validation_loss_stops_keeps_only_finite_checkpoints_and_says_which(finished, tmp_path, monkeypatch,
                                                                                capsys):
    run = copy_of(finished, tmp_path)
    evaluate = Trainer.evaluate

    def nan_from_epoch_2(self, dataset, desc="eval"):
        result = evaluate(self, dataset, desc)
        if desc == "val" and self.epoch >= 1:
            result["loss"] = float("nan")
        return result

    monkeypatch.setattr(Trainer, "evaluate", nan_from_epoch_2)
    assert train(run, "--epochs", "3", "--overwrite") == 2  # and --overwrite replaces the finished run
    err = one_line_error(capsys)
    assert "non-finite validation loss (nan) at epoch 2" in err and f"{run / 'last.pt'} (end of epoch 1)" in err
    assert not (run / "summary.json").exists()  # the old run's summary went with --overwrite, no new one
    last, best = load_checkpoint(run / "last.pt"), load_checkpoint(run / "best.pt")
    assert last["epoch"] == 1 and best["epoch"] == 1 and torch.isfinite(torch.tensor(best["val_loss"]))
    assert [row["epoch"] for row in last["history"]] == [1]


def test_nan_in_the_first_epoch_or_in_the_weights_writes_no_checkpoint(tmp_path):
    from pgcnn_triton.training import NonFiniteLossError, build_model
    from tests.training.tiny import tiny_config, tiny_data, tiny_spec

    spec = tiny_spec()
    trainer = Trainer(build_model(spec), tiny_data(), tiny_config(epochs=1), tmp_path / "a", model_spec=spec)
    evaluate = trainer.evaluate
    trainer.evaluate = lambda dataset, desc="eval": {**evaluate(dataset, desc), "loss": float("inf")}
    with pytest.raises(NonFiniteLossError, match="validation loss .inf. at epoch 1.*No checkpoint was written"):
        trainer.fit()
    trainer = Trainer(build_model(spec), tiny_data(), tiny_config(epochs=1), tmp_path / "b", model_spec=spec)
    trainer.model.unused = torch.nn.Parameter(torch.full((1,), float("nan")))  # no effect on the loss
    with pytest.raises(NonFiniteLossError, match="non-finite parameters .* at epoch 1"):
        trainer.fit()
    assert not any((tmp_path / d / n).exists() for d in "ab" for n in ("last.pt", "best.pt"))


def test_a_full_disk_names_the_file_and_keeps_the_previous_checkpoint(finished, tmp_path, monkeypatch, capsys):
    run = copy_of(finished, tmp_path)

    def full(obj, f, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    assert train(run, "--epochs", "3", "--resume") == 1
    err = one_line_error(capsys)
    assert "No space left on device" in err and ("last.pt" in err or "best.pt" in err)
    assert "intact" in err and "--resume" in err
    monkeypatch.undo()
    assert load_checkpoint(run / "last.pt")["epoch"] == 2


def test_ctrl_c_says_where_the_run_stopped_and_how_to_continue(finished, tmp_path, monkeypatch, capsys):
    run = copy_of(finished, tmp_path)

    def interrupted(self, epoch):
        self.where = f"epoch {epoch}, batch 1 of 2"
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "train_epoch", interrupted)
    assert train(run, "--epochs", "3", "--resume") == 130
    err = one_line_error(capsys)
    assert "interrupted at epoch 3, batch 1 of 2" in err and f"{run / 'last.pt'} holds epoch 2" in err
    assert "run the same command again" in err
    assert train(tmp_path / "new", "--epochs", "1") == 130  # before any epoch finished: nothing is left
    assert "nothing was kept" in one_line_error(capsys) and not (tmp_path / "new").exists()


def test_unreadable_checkpoints_bad_paths_and_flags_are_one_line_errors(finished, tmp_path, capsys):
    run = copy_of(finished, tmp_path)
    (run / "last.pt").write_bytes(b"")  # zero-length
    assert train(run, "--epochs", "2", "--resume") == 1
    assert str(run / "last.pt") in one_line_error(capsys)
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint\n")
    assert main(["eval", str(text)]) == 1
    assert str(text) in one_line_error(capsys)
    (tmp_path / "file").write_text("x")
    assert train(tmp_path / "file" / "run", "--epochs", "1") == 1
    assert "is a file" in one_line_error(capsys)
    assert train(tmp_path / "x", "--epochs", "0") == 1
    assert "--epochs must be ≥ 1, got 0" in one_line_error(capsys)
    assert train(tmp_path / "x", "--lr", "inf") == 1
    assert "--lr must be a finite number > 0, got inf" in one_line_error(capsys)
    assert train(run, "--resume", "--overwrite") == 1
    assert "--resume and --overwrite" in one_line_error(capsys)
    from tests.data.formats import write_cifar10

    write_cifar10(tmp_path / "cifar", per_batch=2, test=2)
    tarball = next((tmp_path / "cifar").iterdir())
    tarball.write_bytes(tarball.read_bytes()[:200])  # truncated
    assert main(["train", "--dataset", "cifar10", "--data-dir", str(tmp_path / "cifar"), "--out-dir",
                 str(tmp_path / "x"), "--no-progress"]) == 1
    assert str(tarball) in one_line_error(capsys)
    assert not (tmp_path / "x").exists()


def test_download_without_network_is_one_line_naming_the_url(tmp_path, monkeypatch, capsys):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    assert main(["train", "--dataset", "cifar10", "--download", "--data-dir", str(tmp_path / "data"),
                 "--out-dir", str(tmp_path / "run"), "--epochs", "1", "--no-progress"]) == 1
    err = one_line_error(capsys)
    assert "https://" in err and "name resolution" in err and "network" in err
    assert not (tmp_path / "run").exists()


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="--epochs must be"):
        train(tmp_path, "--epochs", "0", "--traceback")
    monkeypatch.setenv("PGCNN_DEBUG", "1")
    with pytest.raises(ValueError, match="--epochs must be"):
        train(tmp_path, "--epochs", "0")


def test_examples_and_reproduce_report_errors_as_the_cli(finished, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["cifar10.py", "--data-dir", str(tmp_path), "--out-dir", str(tmp_path / "r")])
    with pytest.raises(SystemExit) as info:
        runpy.run_path(str(ROOT / "examples" / "cifar10.py"), run_name="__main__")
    assert info.value.code == 1 and "--download" in one_line_error(capsys, "cifar10.py")
    # pgcnn reproduce --resume on a run whose last.pt is corrupt
    from pgcnn_triton.reproduce import build_plan, execute
    from tests.test_reproduce import FakeTrain, fake_measure

    out = tmp_path / "repro"
    plan = build_plan(["mnist6-180"], seeds=1)
    execute(plan, out, train=FakeTrain(), measure=fake_measure)
    (out / plan[0].name / "summary.json").unlink()
    (out / plan[0].name / "last.pt").write_bytes(b"")
    capsys.readouterr()
    assert main(["reproduce", "--tables", "mnist6-180", "--seeds", "1", "--resume", "--out-dir", str(out)]) == 1
    assert str(out / plan[0].name / "last.pt") in one_line_error(capsys)
    from pgcnn_triton.reproduce import main as reproduce_main

    assert reproduce_main(["--tables", "mnist6-180", "--seeds", "1", "--resume", "--out-dir", str(out)]) == 1
    assert str(out / plan[0].name / "last.pt") in one_line_error(capsys, "reproduce.py")


def test_default_out_dirs_differ_with_the_flags_but_not_with_epochs():
    def out_dir(*flags):
        return str(out_dir_from_args(build_parser().parse_args(["train", *flags])))

    base = out_dir("--dataset", "cifar10")
    assert base == "runs/cifar10-ckresnet-se2-partial"
    variants = [out_dir("--dataset", "cifar10", *f) for f in
                (["--lr", "0.01"], ["-N", "4"], ["--seed", "7"], ["--lr", "0.01", "--seed", "7"], ["--no-amp"])]
    assert len(set(variants + [base])) == len(variants) + 1
    assert out_dir("--dataset", "cifar10", "--lr", "0.01", "--seed", "7") == base + "_lr=0.01_seed=7"
    assert out_dir("--dataset", "cifar10", "--epochs", "20") == base  # --resume --epochs 20 extends it
    assert out_dir("--dataset", "cifar10", "--lr", "0.001") == base  # the recipe's value is no difference
    # the example scripts fill in the bundled short run: their plain run gets the plain name
    from pgcnn_triton.training.args import fill_unset
    from pgcnn_triton.training.recipes import bundled_run

    args = fill_unset(build_parser().parse_args(["train", "--dataset", "bundled-rotmnist"]),
                      bundled_run("bundled-rotmnist"))
    assert str(out_dir_from_args(args)) == "runs/bundled-rotmnist-ckresnet-se2-partial"
    args.hidden = 8
    assert str(out_dir_from_args(args)) == "runs/bundled-rotmnist-ckresnet-se2-partial_hidden=8"
