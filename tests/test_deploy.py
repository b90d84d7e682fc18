"""Deployment (issue 26): `pgcnn export` / `deploy.export_model` files run without pgcnn_triton: the ONNX
file in ONNX Runtime, the .pt2 in a fresh interpreter that never imports the library; both give the eager
eval model's logits and predictions on real bundled digits; the deploy blocks of docs/deployment.md run there too."""

import contextlib
import io
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from pgcnn_triton import GCNN, PartialGCNN, deploy
from pgcnn_triton.cli import main
from pgcnn_triton.data import bundled_rotmnist
from pgcnn_triton.training import data_spec, model_spec
from pgcnn_triton.training.trainer import CHECKPOINT_FORMAT

DEPLOYMENT_DOCS = Path(__file__).resolve().parents[1] / "docs" / "deployment.md"
TINY = dict(in_channels=1, num_classes=10, hidden=3, kernel_size=3, kernel_hidden=4, num_elements=4)


@pytest.fixture(scope="module")
def digits():
    """64 real rotated digits from the bundled set (normalised as training normalises them)."""
    test = bundled_rotmnist(train=1, val=1, test=64).test
    return torch.stack([test[i][0] for i in range(len(test))])


def settle(model, digits, theta):
    """Move BN statistics on the digits and set every θ below 1, as training would leave them."""
    model.train()
    with torch.no_grad():
        model(digits[:16])
        for m in model.modules():
            if hasattr(m, "probs") and isinstance(m.probs, torch.nn.Parameter):
                m.probs[:1].fill_(theta)     # θ (E(2): the mirror logit stays as it is)
    return model.eval()


def partial_thetas(model):
    return [row["theta"] for row in model.learned_equivariance() if row["layer"] != "lift"]


def assert_same_predictions(logits, expected):
    """Logits within δ of the eager ones, and the same class wherever the eager top-2 gap exceeds 2δ
    (a gap no rounding can cross then); nearly every digit has such a gap."""
    scale = float(expected.abs().max())
    delta = 1e-4 * scale
    assert float((logits - expected).abs().max()) <= delta
    top2 = expected.topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1]) > 2 * delta
    assert int(clear.sum()) >= 0.9 * expected.shape[0]
    assert torch.equal(logits.argmax(1)[clear], expected.argmax(1)[clear])


def onnx_logits(path, x):
    import onnxruntime as ort  # a test extra: CI has it, so no skip
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, out.name) == ("x", "logits") and not isinstance(inp.shape[0], int)   # dynamic batch
    return torch.from_numpy(session.run(None, {"x": x.numpy()})[0])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, digits):
    """A run's best.pt of a CKResNet E(2)-partial preset with θ < 1 in every group conv."""
    spec = model_spec("ckresnet", "rotmnist-e2-partial", TINY)
    torch.manual_seed(0)
    model = settle(PartialGCNN.from_preset("rotmnist-e2-partial", **TINY), digits, 0.6)
    run = tmp_path_factory.mktemp("run")
    torch.save({"format": CHECKPOINT_FORMAT, "model_spec": spec, "data_spec": data_spec("bundled-rotmnist"),
                "model": model.state_dict()}, run / "best.pt")
    return run, model


@pytest.mark.long(8)
def test_gcnn_preset_onnx_matches_eager_in_onnx_runtime(digits, tmp_path):
    torch.manual_seed(0)
    model = settle(GCNN.from_preset("rotmnist-se2-partial", **TINY, num_blocks=2, block_width_factors=(1, 2),
                                    pool_blocks=(1,), dropout_blocks=(2,)), digits, 0.4)
    assert all(t < 1 for t in partial_thetas(model))
    out = deploy.export_model(model, tmp_path / "gcnn.onnx", example_input=digits[:1])
    with torch.no_grad():
        expected = model(digits)
    assert_same_predictions(onnx_logits(out, digits), expected)


def readme_deploy_blocks():
    # the blocks that run the exported files without the library: docs/deployment.md before its next section
    text = DEPLOYMENT_DOCS.read_text()
    text = text[:text.index("\n## ")]
    return re.findall(r"```python\n(.*?)```", text, re.S)


# a fresh interpreter that refuses to import pgcnn_triton: it runs the docs' deploy blocks, then the
# .pt2 program on the given digits, and lists any pgcnn_triton module that got imported anyway
LOADER = textwrap.dedent("""
    import json, sys
    class Refuse:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "pgcnn_triton":
                raise ImportError("pgcnn_triton must not be imported here")
    sys.meta_path.insert(0, Refuse())
    for block in json.loads(sys.argv[1]):
        exec(block, {})
    import torch
    program = torch.export.load("model.pt2").module()
    with torch.no_grad():
        torch.save(program(torch.load(sys.argv[2])), sys.argv[3])
    print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "pgcnn_triton")))
""")


@pytest.mark.long(15)
def test_cli_exports_of_a_partial_e2_ckresnet_run_without_the_library(checkpoint, digits, tmp_path):
    """`pgcnn export` in both formats: the ONNX file in ONNX Runtime, and the docs' deploy blocks and
    the .pt2 in an interpreter that refuses to import pgcnn_triton, all against the eager eval model."""
    run, model = checkpoint
    assert all(t < 1 for t in partial_thetas(model))
    folder = tmp_path / "deploy"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["export", str(run), "--format", "onnx", "--out", str(folder / "model.onnx")]) == 0
        assert main(["export", str(run / "best.pt"), "--out", str(folder / "model.pt2")]) == 0  # format: suffix
    assert printed.getvalue().splitlines() == [str(folder / "model.onnx"), str(folder / "model.pt2")]
    assert sorted(p.name for p in folder.iterdir()) == ["model.onnx", "model.pt2"]   # self-contained files
    with torch.no_grad():
        expected = model(digits)
    assert_same_predictions(onnx_logits(folder / "model.onnx", digits), expected)

    blocks = readme_deploy_blocks()
    assert len(blocks) == 2 and "onnxruntime" in blocks[0] and "torch.export.load" in blocks[1]
    torch.save(digits[:40], tmp_path / "x.pt")                                     # another batch size
    done = subprocess.run([sys.executable, "-c", LOADER, json.dumps(blocks), str(tmp_path / "x.pt"),
                           str(tmp_path / "y.pt")], check=False, capture_output=True, text=True, cwd=folder,
                          env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}, timeout=900)  # a hang guard only
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
    assert_same_predictions(torch.load(tmp_path / "y.pt"), expected[:40])


def test_export_errors_are_one_line_and_leave_the_output_alone(checkpoint, tmp_path, capsys, monkeypatch):
    run, _ = checkpoint
    out = tmp_path / "model.bin"
    assert main(["export", str(run), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--format" in err and "Traceback" not in err
    assert not out.exists()
    kept = tmp_path / "kept.onnx"
    kept.write_bytes(b"previous")
    monkeypatch.setitem(sys.modules, "onnxscript", None)                      # the extra not installed
    assert main(["export", str(run), "--format", "onnx", "--out", str(kept)]) == 1
    err = capsys.readouterr().err
    assert "pip install 'pgcnn_triton[export]'" in err and err.count("\n") == 1
    assert kept.read_bytes() == b"previous"
    assert main(["export", str(run), "--out", str(tmp_path / "m.pt2"), "--input-size", "2"]) == 1
    assert "--input-size must be >=" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "missing"), "--out", str(tmp_path / "m.pt2")]) == 1
    assert "missing" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.onnx"]     # no partial or temporary file
