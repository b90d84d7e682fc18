"""Nothing wrong passes silently: each fault is played from outside (the ``pgcnn`` CLI on real files, in
process with ``main([...])`` for most, as a subprocess for a few) and must end in one line on stderr naming
the flag / file / entry point, the right exit status, no traceback, and nothing earlier lost or changed."""

import errno
import shutil
from pathlib import Path

import pytest
import torch

from pgcnn_triton.cli import main
from pgcnn_triton.models import GCNN, PartialGCNN
from pgcnn_triton.nn import LiftingConv
from pgcnn_triton.training import save_atomic
from tests.training.tiny_cli import one_line_error, run_cli, snapshot, train


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished 1-epoch run; tests copy it before changing anything."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert train(out, "--epochs", "1") == 0
    return out


def copy_of(run, tmp_path, name="run"):
    target = tmp_path / name
    shutil.copytree(run, target)
    return target


def poison(path: Path, key: str = "model", value=float("nan")) -> str:
    """Write ``value`` into the first non-θ floating weight of the checkpoint at ``path`` (checksum kept)."""
    state = torch.load(path, weights_only=True)
    name = next(k for k, v in state[key].items() if v.is_floating_point() and "probs" not in k and "logit" not in k)
    state[key][name] = state[key][name].clone()
    state[key][name].view(-1)[0] = value
    save_atomic(state, path)
    return name


# -- non-finite models never pass ---------------------------------------------------------------------
def test_nan_weights_are_refused_by_eval_and_export_naming_file_and_tensor(finished, tmp_path, capsys):
    run = copy_of(finished, tmp_path)
    name = poison(run / "best.pt")
    before = snapshot(run)
    result = run_cli("eval", str(run))
    err = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(err) == 1 and "Traceback" not in result.stderr, result.stderr
    assert str(run / "best.pt") in err[0] and name in err[0] and "nan" in err[0], err[0]
    assert "acc" not in result.stdout  # no accuracy of NaN logits
    program = tmp_path / "model.pt2"
    capsys.readouterr()
    assert main(["export", str(run), "--out", str(program)]) == 1
    err = one_line_error(capsys)
    assert str(run / "best.pt") in err and name in err
    assert not program.exists() and snapshot(run) == before


def test_load_trained_refuses_inf_weights_and_nan_theta_naming_the_file(finished, tmp_path):
    from pgcnn_triton.deploy import load_trained

    run = copy_of(finished, tmp_path)
    name = poison(run / "best.pt", value=float("inf"))
    with pytest.raises(ValueError) as info:
        load_trained(run)
    assert "\n" not in str(info.value) and name in str(info.value) and str(run / "best.pt") in str(info.value)
    state = torch.load(finished / "best.pt", weights_only=True)
    theta = next(k for k in state["model"] if k.endswith("probs"))
    state["model"][theta].fill_(float("nan"))
    save_atomic(state, run / "best.pt")
    with pytest.raises(ValueError) as info:
        load_trained(run / "best.pt")
    assert theta in str(info.value) and str(run / "best.pt") in str(info.value) and "last.pt" in str(info.value)


def test_resume_refuses_nan_optimizer_state_and_changes_nothing(finished, tmp_path, capsys):
    run = copy_of(finished, tmp_path)
    state = torch.load(run / "last.pt", weights_only=True)
    first = next(iter(state["optimizer"]["state"].values()))
    first["exp_avg"].view(-1)[0] = float("nan")
    save_atomic(state, run / "last.pt")
    before = snapshot(run)
    capsys.readouterr()
    assert train(run, "--epochs", "2", "--resume") == 1
    err = one_line_error(capsys)
    assert str(run / "last.pt") in err and "optimizer" in err and "exp_avg" in err
    assert snapshot(run) == before


def test_a_non_finite_buffer_stops_the_run_before_best_pt(tmp_path):
    from pgcnn_triton.training import NonFiniteLossError, Trainer, build_model
    from tests.training.tiny import tiny_config, tiny_data, tiny_spec

    trainer = Trainer(build_model(tiny_spec()), tiny_data(), tiny_config(), tmp_path / "run")
    params = dict(trainer.model.named_parameters())
    name, buffer = next((k, v) for k, v in trainer.model.state_dict().items() if k not in params and v.is_floating_point())
    buffer.fill_(float("nan"))  # e.g. a norm's running statistics, saved into best.pt with the weights
    with pytest.raises(NonFiniteLossError, match="parameters"):
        trainer._check_finite(1, 0.5)


# -- divergence in every precision --------------------------------------------------------------------
@pytest.mark.parametrize("precision", ["--amp", "--no-amp"])
def test_divergence_stops_with_exit_2_naming_lr_and_keeps_the_good_checkpoint(tmp_path, capsys, precision):
    run = tmp_path / "run"
    assert train(run, "--epochs", "1", precision) == 0
    before = snapshot(run)
    capsys.readouterr()
    # lr 1e3: the losses explode but stay finite (the validation loss ~1e29 at epoch 2)
    assert train(run, "--epochs", "3", "--lr", "1e3", precision, "--resume") == 2
    err = one_line_error(capsys)
    assert "diverged" in err and "--lr" in err and str(run / "last.pt") in err and "epoch 1" in err, err
    assert snapshot(run) == before  # the good epoch-1 checkpoints, metrics and summary are untouched


def test_a_first_epoch_that_blows_up_names_lr(tmp_path, capsys):
    run = tmp_path / "run"
    assert train(run, "--epochs", "1", "--lr", "1e30") == 2
    err = one_line_error(capsys)
    assert "--lr" in err and "No checkpoint was written" in err, err
    assert not (run / "last.pt").exists() and not (run / "best.pt").exists()


# -- dead ends have a way out the messages name --------------------------------------------------------
def test_a_best_pt_only_run_dir_is_restarted_by_following_the_messages(finished, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(finished / "best.pt", run / "best.pt")
    stale = run / ".best.pt.4242.0123abcd.tmp"  # what a kill during the write leaves
    stale.write_bytes(b"partial")
    capsys.readouterr()
    assert train(run, "--epochs", "1") == 1
    plain = one_line_error(capsys)
    assert train(run, "--epochs", "1", "--resume") == 1
    resumed = one_line_error(capsys)
    for err in (plain, resumed):
        assert "--overwrite" in err and "no last.pt" in err, err
    assert "pass --resume" not in plain
    assert train(run, "--epochs", "1", "--overwrite") == 0  # what both messages say
    assert (run / "last.pt").is_file() and not stale.exists()


def test_disk_full_on_the_first_last_pt_names_overwrite_not_resume(tmp_path, capsys, monkeypatch):
    from pgcnn_triton.training import trainer

    real = trainer.save_atomic

    def full_disk(obj, path):
        if Path(path).name == "last.pt":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(obj, path)

    monkeypatch.setattr(trainer, "save_atomic", full_disk)
    run = tmp_path / "run"
    assert train(run, "--epochs", "1") == 1
    err = one_line_error(capsys)
    assert "--overwrite" in err and "--resume" not in err, err
    monkeypatch.setattr(trainer, "save_atomic", real)
    assert train(run, "--epochs", "1", "--overwrite") == 0


def test_a_plain_run_removes_temp_files_a_killed_write_left(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    stale = run / ".last.pt.999.deadbeef.tmp"
    stale.write_bytes(b"half a checkpoint")
    assert train(run, "--epochs", "1") == 0
    assert not stale.exists() and (run / "last.pt").is_file()


# -- user mistakes: one line naming the flag as typed --------------------------------------------------
@pytest.mark.parametrize("flags, named", [
    (["--kernel-size", "4"], "--kernel-size"),
    (["-N", "1", "--group", "e2"], "--num-elements (-N)"),
    (["--warmup-epochs", "10", "--epochs", "1"], "--warmup-epochs"),
    (["--no-partial", "--lr-probs", "0.5"], "--lr-probs"),
    (["--lr", "1e38"], "--lr"),
    (["--kernel-size", "31"], "--kernel-size"),  # larger than the 28x28 digits allow
])
def test_contradicting_or_impossible_flags_are_one_line_errors(tmp_path, capsys, flags, named):
    out = tmp_path / "run"
    assert train(out, *flags) == 1
    err = one_line_error(capsys)
    assert named in err, err
    assert not out.exists()


def test_resume_from_another_directory_into_a_run_names_the_way(finished, tmp_path, capsys):
    run = copy_of(finished, tmp_path)
    other = copy_of(finished, tmp_path, "other")
    before = snapshot(run)
    capsys.readouterr()
    assert train(run, "--epochs", "2", "--resume", str(other / "last.pt")) == 1
    err = one_line_error(capsys)
    assert f"--resume {other / 'last.pt'}" in err and "--resume alone" in err and "--overwrite" in err, err
    assert snapshot(run) == before


def test_weights_that_do_not_fit_their_model_description_are_refused(finished, tmp_path, capsys):
    from pgcnn_triton.deploy import load_trained

    run = copy_of(finished, tmp_path)
    state = torch.load(run / "best.pt", weights_only=True)
    state["model_spec"]["overrides"]["hidden"] = 4  # the description no longer matches the weights
    save_atomic(state, run / "best.pt")
    capsys.readouterr()
    assert main(["eval", str(run)]) == 1
    err = one_line_error(capsys)
    assert str(run / "best.pt") in err and "do not fit" in err
    with pytest.raises(ValueError) as info:
        load_trained(run)
    assert "\n" not in str(info.value) and str(run / "best.pt") in str(info.value)


# -- API: errors name the entry point the user called --------------------------------------------------
@pytest.mark.parametrize("build, entry, suggestion", [
    (lambda: PartialGCNN.from_preset("mnist6-180-se2-partial", hiddn=2), "PartialGCNN.from_preset", "hidden"),
    (lambda: PartialGCNN(num_elemnts=4), "PartialGCNN()", "num_elements"),
    (lambda: GCNN(hiden=4), "GCNN()", "hidden"),
    (lambda: LiftingConv(1, 2, foo=1), "LiftingConv()", None),
])
def test_typo_keywords_name_the_entry_point(build, entry, suggestion):
    with pytest.raises(TypeError) as info:
        build()
    message = str(info.value)
    assert entry in message and "SamplingConfig" not in message, message
    assert suggestion is None or f"did you mean {suggestion!r}" in message, message


def test_a_meta_device_input_is_named():
    model = PartialGCNN.from_preset("mnist6-180-se2-partial", hidden=2, num_elements=2, kernel_size=3,
                                    kernel_hidden=4, in_channels=1, num_classes=2)
    with pytest.raises(ValueError, match="PartialGCNN got x on the meta device"):
        model(torch.zeros(1, 1, 28, 28, device="meta"))
    with pytest.raises(ValueError, match="LiftingConv got x on the meta device"):
        LiftingConv(1, 2, 3, num_elements=2)(torch.zeros(1, 1, 8, 8, device="meta"))


# -- refused up front: absurd regulariser weights, and what --gradient-clip takes ------------------------
@pytest.mark.parametrize("flags", [["--weight-decay", "1e38"], ["--monotonic-decay", "1e30"]])
def test_absurd_regulariser_weights_are_refused_naming_the_flag(tmp_path, capsys, flags):
    from pgcnn_triton.training import TrainConfig

    out = tmp_path / "run"
    assert train(out, "--epochs", "1", *flags) == 1
    err = one_line_error(capsys)
    assert flags[0] in err and "--lr" not in err and "--gradient-clip" not in err, err
    assert not out.exists()
    with pytest.raises(ValueError, match=f"TrainConfig: {flags[0][2:].replace('-', '_')}"):
        TrainConfig(**{flags[0][2:].replace("-", "_"): float(flags[1])})


def test_regulariser_weights_at_the_bound_keep_adams_state_finite(tmp_path):
    from pgcnn_triton.training.config import REGULARISER_MAX

    # the bound's reason: the penalties' gradients, squared in Adam's second moment, stay within float32
    # (beyond it the moment overflows to inf and the parameter never moves again, silently)
    run = tmp_path / "run"
    assert train(run, "--epochs", "1", "--weight-decay", f"{REGULARISER_MAX:g}",
                 "--monotonic-decay", f"{REGULARISER_MAX:g}") == 0
    state = torch.load(run / "last.pt", weights_only=True)["optimizer"]["state"]
    assert all(torch.isfinite(s["exp_avg_sq"]).all() for s in state.values())


@pytest.mark.parametrize("value", ["-1", "nan", "inf"])
def test_gradient_clip_takes_a_finite_positive_norm_or_0_for_off(tmp_path, capsys, value):
    out = tmp_path / "run"
    assert train(out, f"--gradient-clip={value}") == 1
    err = one_line_error(capsys)
    assert "--gradient-clip" in err and "0 for no clipping" in err, err
    assert not out.exists()


def test_gradient_clip_help_says_a_huge_norm_clips_nothing(capsys):
    from pgcnn_triton.training.args import add_train_arguments, check_flag_values

    parser = add_train_arguments(__import__("argparse").ArgumentParser())
    check_flag_values(parser.parse_args(["--gradient-clip", "1e38"]))  # accepted: a norm no gradient reaches
    text = " ".join(parser.format_help().split())
    assert "above every gradient norm (e.g. 1e38) clips nothing" in text, text[text.rfind("--gradient-clip G"):][:200]


# -- API errors name the API, CLI errors the flag ---------------------------------------------------------
def test_export_model_names_its_format_argument_not_the_cli_flag(finished, tmp_path, capsys):
    from pgcnn_triton.deploy import export_checkpoint, export_model

    model = PartialGCNN.from_preset("mnist6-180-se2-partial", hidden=2, num_elements=2, kernel_size=3,
                                    kernel_hidden=4, in_channels=1, num_classes=2)
    for call, entry in ((lambda: export_model(model, tmp_path / "x.txt"), "export_model"),
                        (lambda: export_checkpoint(finished, tmp_path / "x.txt"), "export_checkpoint"),
                        (lambda: export_model(model, tmp_path / "x.onnx", format="tflite"), "export_model")):
        with pytest.raises(ValueError) as info:
            call()
        message = str(info.value)
        assert f"{entry}(..., format=" in message and "--format" not in message and "\n" not in message, message
    assert main(["export", str(finished), "--out", str(tmp_path / "x.txt")]) == 1
    err = one_line_error(capsys)
    assert "--format onnx" in err and "--out" in err and "format=" not in err, err
    assert not list(tmp_path.glob("x.*"))
