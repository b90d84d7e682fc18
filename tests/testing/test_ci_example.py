"""The README's CI file, examples/test_equivariance_ci.py: the same text as the README shows, it passes
on its preset and custom model, and fails naming the cause on a broken model (issue 25, item 4)."""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "test_equivariance_ci.py"


def test_readme_shows_the_example_file_verbatim():
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Test your model's equivariance in CI"):]
    block = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    assert block == EXAMPLE.read_text()


@pytest.mark.long(12)
def test_example_passes_under_pytest():
    # in-process: the example is outside testpaths, and a subprocess would pay the imports again
    assert pytest.main([str(EXAMPLE), "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "--rootdir", str(ROOT)]) == 0


def test_example_fails_on_a_broken_model_naming_the_layer(blind_net):
    spec = importlib.util.spec_from_file_location("ci_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.MODELS = {"broken": blind_net}
    with pytest.raises(AssertionError, match=r"(?s)rot90.*first layer that breaks it: lift \(RotationBlindLift\)"):
        module.test_exactly_invariant_under_the_grid_symmetries("broken")
