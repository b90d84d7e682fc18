import json
import shutil

from pgcnn_triton.cli import main

TINY = ["--hidden", "2", "-N", "2", "--kernel-size", "3", "--kernel-net", "SIREN", "--no-per-batch-element",
        "--epochs", "1", "--batch-size", "8", "--max-batches", "2", "--no-progress"]


def test_train_eval_plot(tmp_path, capsys):
    assert main(["train", "--dataset", "bundled-mnist6-180", "--out-dir", str(tmp_path / "p"), *TINY]) == 0
    assert "test acc" in capsys.readouterr().out
    assert main(["eval", str(tmp_path / "p" / "best.pt"), "--split", "val"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["split"] == "val" and result["count"] == 100 and 0 <= result["acc"] <= 1
    assert main(["eval", str(tmp_path / "p"), "--split", "val"]) == 0   # a run directory: its best.pt
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
    assert pattern in text and "smoke tests: at most this many batches per training epoch and per validation / test pass" in text
    for flags, want in ((["--dataset", "bundled-rotmnist"], "runs/bundled-rotmnist-ckresnet-se2-partial"),
                        (["--dataset", "cifar10", "--group", "e2", "--no-partial", "--model", "gcnn"],
                         "runs/cifar10-gcnn-e2-full")):
        args = build_parser().parse_args(["train", *flags])
        assert str(out_dir_from_args(args)) == want
        filled = pattern.replace("<dataset>", args.dataset).replace("<model>", args.model)
        assert want == filled.replace("<group>", args.group or "se2").replace(
            "<partial|full>", "full" if args.partial is False else "partial")
