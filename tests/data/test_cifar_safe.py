"""CIFAR files are read safely: a malicious pickle is refused before it runs, the real format still loads,
and the official md5s are checked whenever the files are present (opt-out: --no-verify-data)."""

import builtins
import io
import os
import pickle
import tarfile

import numpy as np
import pytest
import torch

from pgcnn_triton.cli import main
from pgcnn_triton.data import DatasetCorruptError, file_digest, load_cifar
from pgcnn_triton.data.cifar import CIFAR_SPECS
from pgcnn_triton.data.safe_pickle import ForbiddenGlobalError, restricted_loads
from pgcnn_triton.training import build_model, save_atomic
from tests.data.formats import write_cifar10
from tests.training.tiny import tiny_spec


class Payload:
    """Unpickling it calls ``call(*args)``: each variant would create ``marker``."""

    def __init__(self, call, args):
        self.call, self.args = call, args

    def __reduce__(self):
        return self.call, self.args


def payloads(marker):
    return {
        "os.system": Payload(os.system, (f"touch {marker}",)),
        "builtins.open": Payload(builtins.open, (str(marker), "w")),
        "builtins.exec": Payload(builtins.exec, (f"open({str(marker)!r}, 'w')",)),
    }


def poison(folder, payload, name="data_batch_1"):
    """Replace one batch of an extracted CIFAR-10 folder with a pickle whose loading runs ``payload``."""
    (folder / name).write_bytes(pickle.dumps({b"data": payload, b"labels": [0]}))
    return folder / name


@pytest.mark.parametrize("kind", ["os.system", "builtins.open", "builtins.exec"])
def test_malicious_batch_is_refused_without_running(tmp_path, kind):
    marker = tmp_path / "pwned"
    folder = write_cifar10(tmp_path / "data", extract=True)
    path = poison(folder, payloads(marker)[kind])
    with pytest.raises(DatasetCorruptError) as info:
        load_cifar("cifar10", tmp_path / "data", verify=False)  # no md5 check: the unpickler alone refuses
    assert str(path) in str(info.value) and "refused" in str(info.value)
    assert isinstance(info.value.__cause__, ForbiddenGlobalError)
    assert not marker.exists(), "the payload ran"
    with pytest.raises(DatasetCorruptError, match="md5"):  # default: the md5 check refuses it first
        load_cifar("cifar10", tmp_path / "data")
    assert not marker.exists()


def test_malicious_member_of_a_tarball_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    blob = pickle.dumps({b"data": payloads(marker)["os.system"], b"labels": [0]})
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = len(blob)
        tar.addfile(info, io.BytesIO(blob))
    with pytest.raises(DatasetCorruptError, match="data_batch_1.*refused"):
        load_cifar("cifar10", tmp_path, verify=False)
    assert not marker.exists()


def test_pgcnn_train_refuses_a_malicious_folder_in_one_line(tmp_path, capsys):
    marker = tmp_path / "pwned"
    poison(write_cifar10(tmp_path / "data", extract=True), payloads(marker)["os.system"])
    for extra in ([], ["--no-verify-data"]):
        code = main(["train", "--dataset", "cifar10", "--data-dir", str(tmp_path / "data"), "--epochs", "1",
                     "--out-dir", str(tmp_path / "run"), "--no-progress", *extra])
        err = capsys.readouterr().err
        assert code != 0 and "data_batch_1" in err and len(err.strip().splitlines()) == 1, err
        assert ("md5" in err and "--no-verify-data" in err) if not extra else "refused" in err
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_eval_cannot_be_pointed_at_a_malicious_folder_by_a_checkpoint(tmp_path, capsys):
    marker = tmp_path / "pwned"
    poison(write_cifar10(tmp_path / "evil", extract=True), payloads(marker)["builtins.open"])
    spec = tiny_spec("cifar10-se2-partial", in_channels=3, num_classes=10)
    # the stored spec even asks to skip the md5 check: only the user's own flag can do that
    save_atomic({"model_spec": spec, "model": build_model(spec).state_dict(), "epoch": 1,
                 "data_spec": {"name": "cifar10", "root": str(tmp_path / "evil"), "options": {"verify": False}}},
                tmp_path / "best.pt")
    assert main(["eval", str(tmp_path / "best.pt")]) != 0
    assert "md5" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "best.pt"), "--no-verify-data"]) != 0
    assert "refused" in capsys.readouterr().err
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_real_format_loads_at_every_protocol(tmp_path, protocol, monkeypatch):
    # the official files are Python 2 pickles (protocol 2); NumPy 2 writes its arrays differently at 5
    folder = write_cifar10(tmp_path / "p", extract=True)
    reference = load_cifar("cifar10", tmp_path / "p", verify=False)
    for name in ("data_batch_1", "test_batch"):
        entry = pickle.loads((folder / name).read_bytes())
        (folder / name).write_bytes(pickle.dumps(entry, protocol=protocol))
    data = load_cifar("cifar10", tmp_path / "p", verify=False)
    assert torch.equal(data.train.images, reference.train.images)
    assert torch.equal(data.test.labels, reference.test.labels)


def test_object_arrays_are_refused():
    blob = pickle.dumps({b"data": np.array([object()], dtype=object)})
    with pytest.raises(pickle.UnpicklingError):
        restricted_loads(blob, encoding="bytes")
    assert restricted_loads(pickle.dumps({"a": [1, 2.5, "x", b"y", (None, True)]})) == {"a": [1, 2.5, "x", b"y",
                                                                                          (None, True)]}


def test_extracted_folder_md5_is_checked_and_can_be_skipped(tmp_path, monkeypatch):
    folder = write_cifar10(tmp_path, extract=True)
    with pytest.raises(DatasetCorruptError) as info:
        load_cifar("cifar10", tmp_path)
    message = str(info.value)
    assert "data_batch_1" in message and "md5" in message and "--no-verify-data" in message
    assert isinstance(info.value, ValueError), "the CLI's one-line handler catches ValueError"
    # files with the official checksums load (here: the checksums made to match the fake files)
    digests = {name: file_digest(folder / name) for name in CIFAR_SPECS["cifar10"]["member_md5"]}
    monkeypatch.setitem(CIFAR_SPECS["cifar10"], "member_md5", digests)
    assert len(load_cifar("cifar10", tmp_path).test) == 6
    blob = bytearray((folder / "test_batch").read_bytes())
    blob[len(blob) // 2] ^= 1  # one pixel changed: still a valid pickle, no longer the official file
    (folder / "test_batch").write_bytes(bytes(blob))
    with pytest.raises(DatasetCorruptError, match="test_batch"):
        load_cifar("cifar10", tmp_path)
    with pytest.raises(TypeError, match="verify"):
        load_cifar("cifar10", tmp_path, verify="no")
