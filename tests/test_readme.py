"""The README's Python examples run as written, and are exactly equivariant where they say so (issue 15)."""

import re
import warnings
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks():
    """The python blocks from "## Use" to the measured numbers, except the GPU ones."""
    text = README.read_text()
    text = text[text.index("## Use"):text.index("**Measured**")]
    return [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "cuda" not in b]


@pytest.mark.long(35)
def test_readme_examples_run_and_are_exact_where_claimed(tmp_path, monkeypatch):
    from pgcnn_triton.equivariance import equivariance_error, flip_w, rot90

    monkeypatch.chdir(tmp_path)  # the frozen example saves frozen.pt
    torch.manual_seed(0)
    namespace = {}
    code = blocks()
    assert len(code) == 7 and "class Net(GroupModel)" in code[2]   # [5], [6]: testing (tests/testing)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for block in code:
            exec(compile(block, str(README), "exec"), namespace)
    sizes = [str(w.message) for w in caught if "cannot be exact" in str(w.message)]
    assert len(sizes) == 1 and "33x33" in sizes[0] and "divisible by 4" in sizes[0]
    model, lift, conv, x = (namespace[k] for k in ("model", "lift", "conv", "x"))
    assert equivariance_error(model, x, rot90(1)) <= 1e-5
    y, g = lift(x)
    assert equivariance_error(conv, y, flip_w(), g) <= 1e-5
    assert equivariance_error(model, torch.randn(2, 3, 33, 33), rot90(1)) > 1e-2   # the size rule is real
    assert [r["layer"] for r in namespace["net"].learned_equivariance()] == ["lift", "conv"]
    assert namespace["net"].min_input_size() == 2
    assert namespace["exported"].module()(x).shape == (2, 10)


@pytest.mark.long(10)
def test_readme_precision_example_runs():
    """The "Precision and CPU speed" block, on a small model (it compiles the frozen model on CPU)."""
    from pgcnn_triton import PartialGCNN, precision

    text = README.read_text()
    text = text[text.index("### Precision and CPU speed"):]
    block = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    torch.manual_seed(0)
    model = PartialGCNN(in_channels=3, num_classes=4, hidden=4, kernel_size=3, kernel_hidden=6,
                        num_elements=4).eval()
    namespace = {"torch": torch, "model": model, "x": torch.randn(2, 3, 16, 16)}
    exec(compile(block, str(README), "exec"), namespace)
    expected = precision.default_amp("cpu")
    assert namespace["logits"].shape == (2, 4)
    assert namespace["logits"].dtype == (torch.bfloat16 if expected else torch.float32)
