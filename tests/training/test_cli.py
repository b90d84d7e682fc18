import json
import shutil

from pgcnn_triton.cli import main

TINY = ["--hidden", "2", "-N", "2", "--kernel-size", "3", "--kernel-net", "SIREN", "--no-per-batch-element",
        "--epochs", "1", "--batch-size", "8", "--max-batches", "2", "--no-progress"]


def test_train_eval_plot(tmp_path, capsys):
    assert main(["train", "--dataset", "bundled-mnist6-180", "--out-dir", str(tmp_path / "p"), *TINY]) == 0
    assert "test acc" in capsys.readouterr().out
    assert main(["eval", str(tmp_path / "p" / "best.pt"), "--split", "val", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["split"] == "val" and result["count"] == 100 and 0 <= result["acc"] <= 1
    assert main(["eval", str(tmp_path / "p"), "--split", "val", "--json"]) == 0   # a run directory: its best.pt
    by_dir = json.loads(capsys.readouterr().out)
    assert by_dir["checkpoint"] == str(tmp_path / "p" / "best.pt") and by_dir["acc"] == result["acc"]
    shutil.copytree(tmp_path / "p", tmp_path / "q")
    out = tmp_path / "compare.png"
    assert main(["plot", str(tmp_path / "p"), str(tmp_path / "q"), "--out", str(out)]) == 0
    assert out.stat().st_size > 1000
    (tmp_path / "p" / "curves.png").unlink()
    assert main(["plot", str(tmp_path / "p")]) == 0
    assert (tmp_path / "p" / "curves.png").is_file()


def test_missing_data_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "--dataset", "cifar10", "--data-dir", str(tmp_path), *TINY]) == 1
    err = capsys.readouterr().err
    assert "cifar-10-python.tar.gz" in err and "--download" in err


def test_resume_without_checkpoint(tmp_path, capsys):
    assert main(["train", "--dataset", "bundled-mnist6-180", "--out-dir", str(tmp_path), "--resume", *TINY]) == 1
    assert "no checkpoint" in capsys.readouterr().err


def test_eval_of_a_directory_without_checkpoints_names_it(tmp_path, capsys):
    assert main(["eval", str(tmp_path)]) == 1
    assert str(tmp_path) in capsys.readouterr().err


def test_help_states_the_real_default_out_dir(capsys):
    import pytest

    from pgcnn_triton.cli import build_parser
    from pgcnn_triton.training.args import out_dir_from_args

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    pattern = "runs/<dataset>-<model>-<group>-<partial|full>"
    assert pattern in text
    assert "smoke tests: at most this many batches per training epoch and per validation / test pass" in text
    for flags, want in ((["--dataset", "bundled-rotmnist"], "runs/bundled-rotmnist-ckresnet-se2-partial"),
                        (["--dataset", "cifar10", "--group", "e2", "--no-partial", "--model", "gcnn"],
                         "runs/cifar10-gcnn-e2-full")):
        args = build_parser().parse_args(["train", *flags])
        assert str(out_dir_from_args(args)) == want
        filled = pattern.replace("<dataset>", args.dataset).replace("<model>", args.model)
        assert want == filled.replace("<group>", args.group or "se2").replace(
            "<partial|full>", "full" if args.partial is False else "partial")


def test_train_size_sets_the_bundled_training_set_and_eval_rebuilds_it(tmp_path, capsys):
    out = tmp_path / "small"
    assert main(["train", "--dataset", "bundled-mnist6-180", "--train-size", "40", "--out-dir", str(out), *TINY]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset_sizes"] == {"train": 80, "val": 100, "test": 300}  # 40 sixes and their rotated copies
    assert summary["data"]["options"] == {"train": 40}
    capsys.readouterr()
    assert main(["eval", str(out), "--split", "train", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 80


def test_train_size_is_refused_where_it_cannot_apply(tmp_path, capsys):
    assert main(["train", "--dataset", "cifar10", "--train-size", "10", "--data-dir", str(tmp_path), *TINY]) == 1
    assert "--train-size applies to the bundled-* datasets only" in capsys.readouterr().err
    assert main(["train", "--dataset", "bundled-rotmnist", "--train-size", "0", *TINY]) == 1
    assert "--train-size must be a positive integer" in capsys.readouterr().err


def test_reproduce_subcommand_refuses_to_mix_with_an_existing_reproduction(tmp_path, capsys):
    (tmp_path / "mnist6-180" / "se2-full" / "seed0").mkdir(parents=True)
    (tmp_path / "mnist6-180" / "se2-full" / "seed0" / "run.json").write_text('{"flags": {}}')
    assert main(["reproduce", "--tables", "mnist6-180", "--seeds", "1", "--out-dir", str(tmp_path)]) == 1
    assert "pass --resume" in capsys.readouterr().err
    assert main(["reproduce", "--tables", "mnist6-180", "--seeds", "1", "--resume", "--out-dir", str(tmp_path)]) == 1
    assert "was started with other flags" in capsys.readouterr().err
