"""Every Python block of README.md and of docs/*.md runs on its own, as a user pastes it, and is exactly
equivariant where it says so.

Each block runs in a fresh namespace and a fresh working directory, so a block that leans on another's
imports or objects fails here. A block added later is picked up the same way. Blocks marked
``# needs CUDA`` run where a GPU is present.
"""

import contextlib
import io
import re
import warnings
from pathlib import Path

import pytest
import torch

from pgcnn_triton.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README] + sorted((ROOT / "docs").glob("*.md"))


def python_blocks(path: Path = README) -> list[tuple[int, str]]:
    """(line, code) of every fenced python block of a Markdown file."""
    text = path.read_text()
    return [(text.count("\n", 0, m.start()) + 2, m.group(1)) for m in re.finditer(r"```python\n(.*?)```", text, re.S)]


BLOCKS = [(path, line, code) for path in PAGES for line, code in python_blocks(path)]
#: Blocks that take seconds (they start first under pytest-xdist, tests/conftest.py)
SLOW = {"Trainer(model, data, config": 6, "Trainer(net, data, config": 6, "equivariance_curve(model, x": 3}


def _params():
    seen = set()
    for path, line, code in BLOCKS:
        if code in seen:   # the same block on two pages (README's quickstart in docs/getting-started.md) runs once
            continue
        seen.add(code)
        seconds = max([t for key, t in SLOW.items() if key in code], default=0)
        name = path.relative_to(ROOT)
        yield pytest.param(path, line, code, id=f"{name}:{line}", marks=[pytest.mark.long(seconds)] if seconds else [])


def _checks(code: str):
    """What a block claims beyond running: the checks of the blocks that make claims, by their content."""
    if "class Net(GroupModel)" in code and "Trainer(" in code:
        yield _check_own_network
    if "equivariance_curve(model, x" in code:
        yield _check_equivariance
    if "export_model(model, \"model.pt2\"" in code:
        yield lambda ns, caught: _check_quickstart(ns)
    if "torch.export.export(model.freeze()" in code:
        yield lambda ns, caught: _check_export(ns)
    if "precision.autocast" in code and "frozen(x)" in code:
        yield lambda ns, caught: _check_precision(ns)


def _check_own_network(ns, caught):
    assert [r["layer"] for r in ns["net"].learned_equivariance()] == ["lift", "conv"]
    assert ns["net"].min_input_size() == 2
    assert Path("runs/my-net/best.pt").is_file() and 0 <= ns["summary"]["test_acc"] <= 1
    later = ns["later"]
    assert all(torch.equal(a, b) for a, b in zip(later.state_dict().values(), ns["net"].state_dict().values()))
    err = io.StringIO()   # pgcnn eval on this run says what it lacks and how to provide it (issue 24)
    with contextlib.redirect_stderr(err):
        assert main(["eval", "runs/my-net"]) == 1
    assert "model_spec" in err.getvalue() and "Trainer(" in err.getvalue() and "load_state_dict" in err.getvalue()


def _check_equivariance(ns, caught):
    from pgcnn_triton.equivariance import equivariance_error, flip_w, rot90

    sizes = [str(w.message) for w in caught if "cannot be exact" in str(w.message)]
    assert len(sizes) == 1 and "30x30" in sizes[0] and "divisible by 4" in sizes[0]
    model, lift, conv, x = (ns[k] for k in ("model", "lift", "conv", "x"))
    assert equivariance_error(model, x, rot90(1)) <= 1e-5
    y, g = lift(x)
    assert equivariance_error(conv, y, flip_w(), g) <= 1e-5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert equivariance_error(model, torch.randn(2, 1, 30, 30), rot90(1)) > 1e-2   # the size rule is real


def _check_quickstart(ns):
    assert 0 <= ns["summary"]["test_acc"] <= 1 and Path("runs/quickstart/best.pt").is_file()
    program = torch.export.load("model.pt2").module()   # the exported program gives the eval logits
    torch.testing.assert_close(program(ns["x"]), ns["model"].eval()(ns["x"]), rtol=1e-4, atol=1e-5)


def _check_export(ns):
    assert ns["exported"].module()(ns["x"]).shape == (2, 10)


def _check_precision(ns):
    from pgcnn_triton import precision

    assert ns["logits"].shape == (2, 2)
    assert ns["logits"].dtype == (torch.bfloat16 if precision.default_amp("cpu") else torch.float32)


def _deployed_model(code: str, where: Path) -> None:
    """The file a deploy block loads (the README's `pgcnn export` writes it): a small model exported here,
    so the block runs as a user runs it after the export (tests/test_deploy.py exports trained runs)."""
    from pgcnn_triton import PartialGCNN
    from pgcnn_triton.deploy import export_model

    model = PartialGCNN(in_channels=1, num_classes=2, hidden=4, num_elements=4, method="deterministic",
                        kernel_hidden=8).eval()
    x = torch.rand(2, 1, 28, 28)
    for name, fmt in (("model.onnx", "onnx"), ("model.pt2", "torch")):
        if name in code:
            export_model(model, where / name, fmt, example_input=x)


def test_the_pages_have_their_blocks():
    claims = [c for _, _, code in BLOCKS for c in _checks(code)]
    assert len(BLOCKS) >= 12 and len(claims) == 6, "a block with claims was renamed: update _checks"
    first = python_blocks(README)[0][0]
    assert first < 100 and len(README.read_text().splitlines()) <= 250, "the README is a front page"
    assert "bash scripts/test.sh" in README.read_text()   # the test command CI runs (.ci/run)


@pytest.mark.parametrize("path,line,code", list(_params()))
def test_block_runs_on_its_own(path, line, code, tmp_path, monkeypatch):
    if "# needs CUDA" in code and not torch.cuda.is_available():
        pytest.skip("needs a GPU (the block says # needs CUDA)")
    monkeypatch.chdir(tmp_path)  # blocks write frozen.pt, runs/
    torch.manual_seed(0)
    if "model.onnx" in code or "model.pt2" in code:
        _deployed_model(code, tmp_path)
    namespace = {"__name__": "readme_block"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(compile(code, f"{path}:{line}", "exec"), namespace)
    for check in _checks(code):
        check(namespace, caught)
