import os
import shutil
import site
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest


def test_kernels_installs_only_as_pgcnn_triton_kernels(tmp_path):
    code = ("import importlib.util, sys, pgcnn_triton.kernels as k;"
            "assert importlib.util.find_spec('kernels') is None, 'a top-level kernels module is importable';"
            # torch._dynamo costs 1.6 s of every process start (each CLI run): loaded only when compiling
            "assert 'torch._dynamo' not in sys.modules, 'importing pgcnn_triton imported torch._dynamo';"
            "assert k.disk_taps(7).num_taps == 29; print(k.__name__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "pgcnn_triton.kernels"


def test_public_api():
    import pgcnn_triton

    for name in ("PartialGCNN", "GCNN", "LiftingConv", "GroupConv", "PointwiseGroupConv", "SamplingConfig",
                 "SE2", "E2", "equivariance", "kernels"):
        assert hasattr(pgcnn_triton, name), name


ROOT = Path(__file__).resolve().parents[1]
#: Source folders and where their files land in the wheel (kernels/ installs as pgcnn_triton.kernels).
INSTALLED_AS = {"pgcnn_triton": "pgcnn_triton", "kernels": "pgcnn_triton/kernels"}
_JUNK = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.pyc", "*.egg-info", ".hypothesis", ".pytest_cache")
#: Ignored folders of the checkout's root (pgcnn_triton/data is a package, /data the user's datasets).
_ROOT_JUNK = {"build", "dist", "runs", "data"}


def _source_files() -> set[str]:
    """Every file of the package folders (modules and package data), as its path inside the wheel."""
    out = set()
    for folder, target in INSTALLED_AS.items():
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                out.add(f"{target}/{path.relative_to(ROOT / folder).as_posix()}")
    return out


def _run(cmd, **kwargs):
    out = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert out.returncode == 0, f"{cmd} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """sdist of a copy of the checkout, then a wheel built from that sdist, offline (no build isolation)."""
    tmp = tmp_path_factory.mktemp("packaging")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=lambda d, names: _JUNK(d, names) | (_ROOT_JUNK if Path(d) == ROOT else set()))
    name = _run([sys.executable, "-c", "import sys; from setuptools import build_meta as b; "
                 "print(b.build_sdist(sys.argv[1]))", str(tmp / "sdist")], cwd=src).split()[-1]
    with tarfile.open(tmp / "sdist" / name) as tar:
        tar.extractall(tmp / "unpacked", filter="data")
    (unpacked,) = (tmp / "unpacked").iterdir()
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
          "-w", str(tmp / "wheel"), str(unpacked)], cwd=tmp)
    (wheel,) = (tmp / "wheel").glob("pgcnn_triton-*.whl")
    return tmp, wheel


def test_wheel_holds_every_module_and_data_file(built):
    _, wheel = built
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(_source_files() - names)
    assert not missing, f"the wheel lacks {missing}: package discovery (setup.py) or package-data (pyproject.toml)"
    assert not [n for n in names if n.startswith("kernels/")], "a top-level kernels package is in the wheel"
    assert "pgcnn_triton/data/mnist_5k.npz" in names


@pytest.mark.long(25)
def test_installed_wheel_cli_works_outside_the_checkout(built):
    """A regular (non-editable) install in a fresh venv that reuses this environment's dependencies."""
    tmp, wheel = built
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip()
    # torch & co. from this environment, after the venv's own site-packages (a path line: no .pth in it runs,
    # so this environment's own pgcnn_triton, e.g. an editable install of the checkout, stays invisible)
    Path(purelib, "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
          str(wheel)])
    away = tmp / "elsewhere"
    away.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["OMP_NUM_THREADS"] = "1"
    pgcnn = str(venv / "bin" / "pgcnn")
    probe = ("import pgcnn_triton, contextlib, io; from pgcnn_triton.cli import build_parser, main\n"
             "print(pgcnn_triton.__file__)\nprint(pgcnn_triton.__version__)\n"
             "buf = io.StringIO()\n"
             "with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):\n"
             "    main(['--version'])\n"
             "print(buf.getvalue().replace(' ', '=').strip())\n"
             "sub = next(a for a in build_parser()._actions if a.dest == 'command')\n"
             "for name in sub.choices:\n"
             "    buf = io.StringIO()\n"
             "    with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):\n"
             "        main([name, '--help'])\n"
             "    assert buf.getvalue().startswith('usage: pgcnn ' + name), (name, buf.getvalue()[:200])\n"
             "    print(name)\n")
    where, version, version_flag, *commands = _run([str(python), "-c", probe], cwd=away, env=env).split()
    assert where.startswith(purelib), f"imported {where}, not the installed wheel"
    assert version == wheel.name.split("-")[1]
    assert {"train", "eval", "plot", "reproduce"} <= set(commands)
    assert _run([pgcnn, "--help"], cwd=away, env=env).startswith("usage: pgcnn")
    assert version_flag == f"pgcnn={version}"   # pgcnn --version
    out = _run([pgcnn, "train", "--dataset", "bundled-mnist6-180", "--epochs", "1", "--max-batches", "2",
                "--no-progress", "--out-dir", "run"], cwd=away, env=env)
    assert (away / "run" / "best.pt").is_file() and "test acc" in out
    # the installed export, every 3×3 / 5×5 piece as a Winograd convolution, against this checkout's eval
    _run([pgcnn, "export", "run", "--out", "model.onnx", "--conv-algorithm", "winograd"], cwd=away, env=env)
    import onnxruntime as ort
    import torch

    from pgcnn_triton.deploy import load_trained
    model, _ = load_trained(away / "run")
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        expected = model.eval()(x)
    session = ort.InferenceSession(str(away / "model.onnx"), providers=["CPUExecutionProvider"])
    logits = torch.from_numpy(session.run(None, {"x": x.numpy()})[0])
    assert float((logits - expected).norm() / expected.norm()) <= 1e-5


def test_version_without_an_install_comes_from_the_checkouts_pyproject(monkeypatch):
    import re
    from importlib import metadata

    from pgcnn_triton import _version

    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(_version.metadata, "version", not_installed)
    declared = re.search(r'^version = "(.+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert _version.package_version() == declared
