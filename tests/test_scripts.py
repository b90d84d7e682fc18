"""scripts/test.sh runs only the test paths it is given; scripts/setup.sh reinstalls only when needed (issue 24).

Both scripts run for real, in a scratch copy of the repository whose .venv is a stand-in: its python is this
interpreter, its pip only records what it was asked to install, so nothing is installed or downloaded.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo(tmp_path):
    """A scratch repository: the real scripts and packaging files, a stand-in .venv, two one-test files."""
    (tmp_path / "scripts").mkdir()
    for name in ("pyproject.toml", "setup.py", "scripts/setup.sh", "scripts/test.sh"):
        shutil.copy(ROOT / name, tmp_path / name)
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (bin_dir / "pip").write_text(f'#!/bin/sh\necho "$@" >> "{tmp_path}/pip.log"\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    (tmp_path / "tests").mkdir()
    for name in ("a", "b"):
        (tmp_path / "tests" / f"test_{name}.py").write_text(f"def test_{name}():\n    pass\n")
    return tmp_path


def _bash(repo, script, *args, path=None):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = path or os.environ["PATH"]
    out = subprocess.run(["bash", f"scripts/{script}", *args], cwd=repo, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def _installs(repo) -> list[str]:
    log = repo / "pip.log"
    return log.read_text().splitlines() if log.is_file() else []


def test_test_sh_runs_only_the_given_paths(repo):
    # -n 0 after the script's -n auto: no worker processes; no hypothesis plugin: 1 s instead of 4 s a run
    fast = ["-n", "0", "-p", "no:cacheprovider", "-p", "no:hypothesispytest"]
    assert "1 passed" in _bash(repo, "test.sh", "tests/test_a.py", *fast)
    assert "2 passed" in _bash(repo, "test.sh", "-x", *fast)  # options only: every test


def test_setup_sh_reinstalls_only_when_what_decides_the_install_changes(repo, tmp_path_factory):
    _bash(repo, "setup.sh")
    assert len(_installs(repo)) == 1 and "-e .[test,docs]" in _installs(repo)[0]
    _bash(repo, "setup.sh")
    assert len(_installs(repo)) == 1, "reinstalled with nothing changed"
    with open(repo / "pyproject.toml", "a") as f:
        f.write("\n# changed\n")
    _bash(repo, "setup.sh")
    assert len(_installs(repo)) == 2, "pyproject.toml changed but no reinstall"
    gpu = tmp_path_factory.mktemp("gpu")  # a machine where nvidia-smi sees a GPU: the CUDA torch build
    (gpu / "nvidia-smi").write_text("#!/bin/sh\necho 'GPU 0: stand-in'\n")
    (gpu / "nvidia-smi").chmod(0o755)
    _bash(repo, "setup.sh", path=f"{gpu}:{os.environ['PATH']}")
    assert len(_installs(repo)) == 3 and "triton" not in _installs(repo)[2], "the CUDA build must be installed"
    (repo / ".venv" / ".setup-stamp").unlink()   # e.g. a fresh clone with an old venv: install again
    _bash(repo, "setup.sh")
    assert len(_installs(repo)) == 4 and "triton==3.6.0" in _installs(repo)[3]
