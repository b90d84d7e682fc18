"""The demo and the example scripts run again (issue 32, item 1): a finished run is shown without
retraining, the README's Deploy step (`mnist6.py --runs partial` right after the demo) works, other
settings train into a new directory, and the earlier results are never lost."""

from pathlib import Path

import pytest

from pgcnn_triton.training import Trainer
from tests.test_examples import ROOT, TINY, load


def files(directory: Path) -> dict:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_mnist6_runs_twice_then_the_deploy_step_then_other_settings(tmp_path, capsys, monkeypatch):
    mnist6 = load(ROOT / "examples" / "mnist6.py")
    out = tmp_path / "runs"
    argv = ["--out-dir", str(out), "--epochs", "1", *TINY]
    first = mnist6.main(argv)
    kept = files(out)
    capsys.readouterr()

    monkeypatch.setattr(Trainer, "train_epoch", lambda *a: pytest.fail("a finished run must not train again"))
    again = mnist6.main(argv)                               # the second demo: shown, not retrained
    text = capsys.readouterr().out
    assert text.count("shown without retraining") == 2 and "--overwrite" in text
    assert {k: again[k]["test_acc"] for k in again} == {k: first[k]["test_acc"] for k in first}
    deploy = mnist6.main([*argv, "--runs", "partial"])      # README: Deploy, right after the demo
    assert list(deploy) == ["partial", "full"]              # the comparison keeps the full run
    now = files(out)
    assert all(now[k] == v for k, v in kept.items())        # every run file of the first call intact

    trained = []   # other settings: a new directory (the training itself is stubbed: it is tested above)
    monkeypatch.setattr("pgcnn_triton.training.reuse.train_from_args",
                        lambda args, verbose=True: trained.append(args.out_dir) or dict(first["partial"]))
    mnist6.main([*argv, "--lr", "0.01", "--runs", "partial"])
    assert f"training into {out}-2" in capsys.readouterr().out and trained == [str(out) + "-2/partial"]
    assert all(files(out)[k] == v for k, v in kept.items())


def test_rotmnist_runs_twice(tmp_path, capsys):
    rotmnist = load(ROOT / "examples" / "rotmnist.py")
    argv = ["--out-dir", str(tmp_path / "run"), "--epochs", "1", "--train-size", "16", *TINY]
    first = rotmnist.main(argv)
    before = files(tmp_path / "run")
    second = rotmnist.main(argv)
    assert "shown without retraining" in capsys.readouterr().out
    assert second["test_acc"] == first["test_acc"] and files(tmp_path / "run") == before


def test_reproduce_example_runs_twice_reading_finished_runs_back(tmp_path, capsys):
    from pgcnn_triton.reproduce.cli import build_parser, run
    from tests.test_reproduce import FakeTrain, fake_measure

    argv = ["--tables", "mnist6-180", "--seeds", "1", "--out-dir", str(tmp_path / "r")]
    first = FakeTrain()
    run(build_parser().parse_args(argv), train=first, measure=fake_measure, again=True)
    again = FakeTrain()
    run(build_parser().parse_args(argv), train=again, measure=fake_measure, again=True)   # the second time
    assert again.calls == [] and "read back, not retrained" in capsys.readouterr().out
    other = FakeTrain()
    run(build_parser().parse_args([*argv, "--epochs", "3"]), train=other, measure=fake_measure, again=True)
    assert other.calls and all(str(tmp_path / "r-2") in a.out_dir for a in other.calls)
    assert (tmp_path / "r" / "results.md").is_file()
