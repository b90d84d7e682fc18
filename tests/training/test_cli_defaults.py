"""``pgcnn train`` on a bundled dataset uses the short CPU run of the examples; --paper the paper's recipe
(issue 24)."""

import argparse
import importlib.util
from pathlib import Path

import pytest

import pgcnn_triton.training as training
from pgcnn_triton.cli import build_parser, main
from pgcnn_triton.training.args import model_spec_from_args, train_config
from pgcnn_triton.training.recipes import BUNDLED_RUNS
from pgcnn_triton.training.specs import build_model

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _cli_args(monkeypatch, capsys, *flags):
    """The flags ``pgcnn train`` hands to training (nothing is trained), and what it printed."""
    seen = []
    monkeypatch.setattr(training, "train_from_args", lambda args: seen.append(args))
    assert main(["train", *flags]) == 0
    return seen[0], capsys.readouterr().out


def _example_args(*flags):
    spec = importlib.util.spec_from_file_location("mnist6_example", EXAMPLES / "mnist6.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = module.configure(module.build_parser().parse_args(list(flags)))
    args.partial = True  # the example's partial run
    return args


def _model(args):
    return build_model(model_spec_from_args(args, in_channels=1, num_classes=2, image_size=28))


def test_bundled_dataset_trains_the_examples_short_run(monkeypatch, capsys):
    args, out = _cli_args(monkeypatch, capsys, "--dataset", "bundled-mnist6-180")
    example = _example_args()
    config = train_config(args)
    assert config == train_config(example)
    assert (config.epochs, config.batch_size, config.lr) == (5, 32, 3e-3)
    model = _model(args)
    assert str(model) == str(_model(example))  # same architecture: SIREN kernels, ...
    assert model.sampling.per_batch_element is False
    assert "BUNDLED_RUNS" in out and "epochs 5" in out and "--paper" in out


def test_given_flags_win_and_paper_gives_the_papers_recipe(monkeypatch, capsys):
    args, out = _cli_args(monkeypatch, capsys, "--dataset", "bundled-mnist6-180", "--epochs", "2")
    assert train_config(args).epochs == 2 and "epochs" not in out.split("unset:")[1].split(";")[0]
    assert train_config(args).batch_size == BUNDLED_RUNS["bundled-mnist6-180"]["batch_size"]
    args, out = _cli_args(monkeypatch, capsys, "--dataset", "bundled-mnist6-180", "--paper")
    config = train_config(args)
    assert (config.epochs, config.batch_size, config.lr) == (300, 64, 1e-3) and "BUNDLED_RUNS" not in out
    model = _model(args)
    assert model.sampling.per_batch_element is True and "MAGNet" in str(model)
    args, out = _cli_args(monkeypatch, capsys, "--dataset", "cifar10")   # not bundled: the paper's recipe
    assert train_config(args).epochs == 300 and out == ""


@pytest.mark.parametrize("flags", [["--group", "t2"], ["--model", "gcnn"]])
def test_short_run_skips_a_preset_that_cannot_apply(monkeypatch, capsys, flags):
    args, _ = _cli_args(monkeypatch, capsys, "--dataset", "bundled-rotmnist", *flags)
    assert args.preset is None and args.epochs == 5
    model_spec_from_args(args, in_channels=1, num_classes=10, image_size=28)  # no preset / group conflict


def test_every_flag_states_its_default():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    missing = [(name, a.option_strings) for name, parser in sub.choices.items() for a in parser._actions
               if a.option_strings and not isinstance(a, argparse._HelpAction) and "default" not in (a.help or "")]
    assert not missing
