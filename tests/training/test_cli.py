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
