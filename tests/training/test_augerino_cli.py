"""Augerino from the command line (issue 34): `pgcnn train --model augerino-ckresnet` on bundled digits
trains and resumes, and `pgcnn export` of its checkpoint runs in ONNX Runtime with the deterministic
evaluation elements fixed in the file."""

import json

import pytest
import torch

from pgcnn_triton.cli import main
from pgcnn_triton.data import bundled_rotmnist
from pgcnn_triton.deploy import load_trained
from pgcnn_triton.training.args import add_train_arguments, model_spec_from_args, train_config

TINY = ["--hidden", "2", "-N", "4", "--kernel-size", "3", "--batch-size", "8", "--max-batches", "2",
        "--no-progress", "--train-size", "16"]


@pytest.mark.long(15)
def test_train_resume_and_onnx_export_of_an_augerino_run(tmp_path, capsys):
    run = tmp_path / "aug"
    base = ["train", "--dataset", "bundled-rotmnist", "--model", "augerino-ckresnet", "--out-dir", str(run), *TINY]
    assert main([*base, "--epochs", "1"]) == 0
    printed = capsys.readouterr().out
    assert "test acc" in printed and "augment" in printed  # the learned range is in the summary table
    summary = json.loads((run / "summary.json").read_text())
    assert [row["layer"] for row in summary["learned_equivariance"]] == ["augment"]
    assert summary["learned_equivariance"][0]["group"] == "SE2"
    assert (run / "learned_equivariance.png").is_file()
    # resume: the second epoch continues from last.pt
    assert main([*base, "--epochs", "2", "--resume"]) == 0
    capsys.readouterr()
    metrics = (run / "metrics.csv").read_text().splitlines()
    assert len(metrics) == 3 and "theta/augment" in metrics[0]

    model, _ = load_trained(run)
    assert type(model).__name__ == "AugerinoCKResNet" and model.augment.sampler.probs.numel() == 1
    assert main(["export", str(run), "--format", "onnx", "--out", str(tmp_path / "aug.onnx")]) == 0
    import onnxruntime as ort  # a test extra: CI has it
    session = ort.InferenceSession(str(tmp_path / "aug.onnx"), providers=["CPUExecutionProvider"])
    test = bundled_rotmnist(train=1, val=1, test=6).test
    x = torch.stack([test[i][0] for i in range(len(test))])
    got = torch.from_numpy(session.run(None, {"x": x.numpy()})[0])
    with torch.no_grad():
        expected = model.eval()(x)  # deterministic evaluation: the elements the file fixes
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))


def test_flags_pick_the_augerino_preset_recipe_and_refuse_t2(capsys):
    parser = add_train_arguments(__import__("argparse").ArgumentParser())
    args = parser.parse_args(["--dataset", "rotmnist", "--model", "augerino-gcnn"])
    spec = model_spec_from_args(args, in_channels=1, num_classes=10, image_size=28)
    assert spec["family"] == "augerino-gcnn" and spec["preset"] == "rotmnist-se2-partial"
    config = train_config(args)  # the original's AugerinoGCNN rotated-MNIST command
    assert (config.lr, config.weight_decay, config.lr_probs, config.monotonic_decay) == (1e-3, 1e-4, None, 0.0)
    e2 = parser.parse_args(["--dataset", "cifar100", "--model", "augerino-ckresnet", "--group", "e2"])
    assert model_spec_from_args(e2, in_channels=3, num_classes=100, image_size=32)["preset"] == "cifar100-e2-partial"
    assert main(["train", "--dataset", "bundled-rotmnist", "--model", "augerino-ckresnet", "--group", "t2",
                 "--epochs", "1"]) == 1
    err = capsys.readouterr().err
    assert "--group t2 does not apply to --model augerino-ckresnet" in err and "Traceback" not in err
