"""Small things a new user trips over on the command line (issue 32, item 7): a closed pipe, the help texts."""

import errno
import io

import pytest

from pgcnn_triton.cli import build_parser, main


class ClosedPipe(io.StringIO):
    """stdout whose reader went away (`pgcnn eval RUN --json | head`)."""

    def write(self, text):
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")


def test_a_closed_pipe_ends_quietly_with_status_0(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("pgcnn_triton.cli.format_evaluation", lambda result: "one line")
    monkeypatch.setattr("pgcnn_triton.training.evaluate_checkpoint", lambda *a, **k: {"acc": 1.0})
    monkeypatch.setattr("sys.stdout", ClosedPipe())
    assert main(["eval", str(tmp_path), "--json"]) == 0
    assert capsys.readouterr().err == ""


def help_of(*argv) -> str:
    with pytest.raises(SystemExit):
        build_parser().parse_args([*argv, "--help"])
    return ""


def test_help_texts(capsys):
    subcommands = ("train", "eval", "plot", "reproduce", "export")
    help_of()
    top = capsys.readouterr().out
    description = top.split("\n\n")[1]
    assert all(name in description for name in subcommands), description
    assert set(subcommands) == set(build_parser()._subparsers._group_actions[0].choices)
    help_of("plot")
    plot = capsys.readouterr().out
    assert "run directories" in plot.split("positional arguments:")[1].split("options:")[0]
    help_of("reproduce")
    reproduce = capsys.readouterr().out
    assert reproduce.count("pgcnn reproduce --quick") == 1 and "``" not in reproduce and ":mod:" not in reproduce
