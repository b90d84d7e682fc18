"""The CI file to copy, examples/test_equivariance_ci.py: the docs show its test verbatim, it passes
on its preset and custom model, and fails naming the cause on a broken model (issue 25, item 4)."""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "test_equivariance_ci.py"


def test_the_docs_show_the_example_files_test_verbatim():
    # docs/testing.md shows the file's core: its imports are the file's, its test function is the file's
    text = (ROOT / "docs" / "testing.md").read_text()
    section = text[text.index("## Equivariance tests for your models in CI"):]
    block = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    example = EXAMPLE.read_text()
    test = block[block.index("@pytest.mark.parametrize"):]
    assert test in example, "the docs' test function differs from examples/test_equivariance_ci.py"
    imports = [line for line in block.splitlines() if line.startswith(("import ", "from "))]
    flat = example.replace("(\n    ", "").replace(",\n    ", ", ").replace(",\n)", "")
    missing = [line for line in imports if line not in flat and not _names_imported(line, example)]
    assert not missing, f"docs import lines the example file does not have: {missing}"


def _names_imported(line, example):
    module, names = line.removeprefix("from ").split(" import ")
    return f"from {module} import" in example and all(n.strip() in example for n in names.split(","))


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
