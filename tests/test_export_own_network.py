"""`pgcnn export` of a network of your own trained with `Trainer` (issue 32, items 3 and 7): the checkpoint
records how to rebuild it, the ONNX file runs in ONNX Runtime with a batch axis named `batch`, files get
a normal file's mode, an unwritable `--out` fails before the export, and a network that cannot be
rebuilt gets a message saying what to call instead."""

import importlib
import os
import stat
import sys
import warnings

import pytest
import torch

from pgcnn_triton.cli import main
from pgcnn_triton.data import load_dataset
from pgcnn_triton.training import TrainConfig, Trainer

#: The README's "Your own network" block, as a module of the user's (my_nets.py).
OWN_NETWORK = '''
import torch.nn.functional as F
from torch import nn
from pgcnn_triton import GroupConv, GroupModel, GlobalMaxPool, LiftingConv, SamplingConfig, SpatialMaxPool


class Net(GroupModel):
    def __init__(self, sampling, in_channels=1, num_classes=2):
        super().__init__()
        self.lift = LiftingConv(in_channels, 4, kernel_size=5, sampling=sampling)
        self.pool = SpatialMaxPool(2)
        self.conv = GroupConv(4, 4, kernel_size=5, sampling=sampling)
        self.global_pool = GlobalMaxPool()
        self.head = nn.Linear(4, num_classes)

    def forward_once(self, x):
        y, g = self.lift(x)
        y, g = self.conv(self.pool(F.relu(y)), g)
        return self.head(self.global_pool(F.relu(y)))
'''
CONFIG = TrainConfig(epochs=1, batch_size=16, max_batches=2, progress=False)


def onnx_run(path, x):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    return inp, torch.from_numpy(session.run(None, {inp.name: x.numpy()})[0])


@pytest.mark.long(10)
def test_pgcnn_export_of_a_trainer_run_of_your_own_network_runs_in_onnx_runtime(tmp_path, monkeypatch, capsys):
    from pgcnn_triton import SamplingConfig

    (tmp_path / "my_nets.py").write_text(OWN_NETWORK)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    net = importlib.import_module("my_nets").Net(SamplingConfig(group="SE2", num_elements=4), num_classes=2)
    data = load_dataset("bundled-mnist6-180")
    Trainer(net, data, CONFIG, "runs/my-net").fit()
    # `pgcnn export` is another process: the module is found from the working directory, not imported yet
    monkeypatch.delitem(sys.modules, "my_nets")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in (str(tmp_path), "")])
    old = os.umask(0o022)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", FutureWarning)   # none of torch's deprecation noise
            assert main(["export", "runs/my-net", "--out", "my-net.onnx"]) == 0, capsys.readouterr().err
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat("my-net.onnx").st_mode) == 0o644
    x = data.test[0][0][None].expand(3, -1, -1, -1).contiguous()
    inp, logits = onnx_run("my-net.onnx", x)
    assert inp.shape[0] == "batch"
    expected = net.eval()(x)
    assert logits.shape == (3, 2) and torch.allclose(logits, expected, atol=1e-3, rtol=1e-3)


def test_a_network_that_cannot_be_rebuilt_says_what_to_call(tmp_path, monkeypatch, capsys):
    namespace = {}
    exec(OWN_NETWORK, namespace)  # noqa: S102 - as a notebook / pasted script defines it: no importable module
    from pgcnn_triton import SamplingConfig

    monkeypatch.chdir(tmp_path)
    net = namespace["Net"](SamplingConfig(group="SE2", num_elements=4))
    Trainer(net, load_dataset("bundled-mnist6-180"), CONFIG, "run").fit()
    assert main(["export", "run", "--out", "m.onnx"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Net" in err and "pgcnn_triton.deploy.export_model(net" in err
    assert "load_state_dict" in err and not (tmp_path / "m.onnx").exists()


def test_an_unwritable_out_fails_before_the_export_naming_it(tmp_path, capsys, monkeypatch):
    from pgcnn_triton import deploy

    monkeypatch.setattr(deploy, "load_trained", lambda *a: pytest.fail("the export must not start"))
    (tmp_path / "run").mkdir()
    assert main(["export", str(tmp_path / "run"), "--out", "/proc/x.onnx"]) == 1
    err = capsys.readouterr().err
    assert "--out /proc/x.onnx" in err and ".x.onnx." not in err and "--out-dir" not in err
