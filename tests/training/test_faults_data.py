"""Own data is checked, never cast: CIFAR batches and tarballs (also read with ``--no-verify-data``) and the
in-memory ``ImageDataset`` / ``DataSplits``; each refusal is one line naming the file or argument and what
to do."""

import pickle

import numpy as np
import pytest
import torch

from pgcnn_triton.cli import main
from pgcnn_triton.data import load_cifar
from tests.data.formats import write_cifar10
from tests.training.tiny_cli import one_line_error, run_cli


# -- own data: validated, never cast ------------------------------------------------------------------
def cifar_folder(tmp_path, **changes):
    folder = write_cifar10(tmp_path / "data", extract=True)
    data, labels = changes.get("data"), changes.get("labels")
    if changes:
        entry = pickle.loads((folder / "data_batch_1").read_bytes())
        if data is not None:
            entry[b"data"] = data
        if labels is not None:
            entry[b"labels"] = labels
        if "labels" in changes and labels is None:
            del entry[b"labels"]
        (folder / "data_batch_1").write_bytes(pickle.dumps(entry))
    return folder / "data_batch_1"


RNG = np.random.default_rng(0)
BAD_DATA = {
    "float in [0, 1]": (dict(data=RNG.random((4, 3072))), ("float64", "uint8", "* 255")),
    "value 300": (dict(data=np.full((4, 3072), 300, dtype=np.int64)), ("int64", "300", "uint8")),
    "NHWC": (dict(data=RNG.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)), ("NHWC", "transpose(0, 3, 1, 2)")),
    "odd shape": (dict(data=RNG.integers(0, 256, (4, 3000), dtype=np.uint8)), ("(4, 3000)", "(N, 3072)")),
    "label 12": (dict(labels=[0, 1, 12, 3]), ("label 12", "0..9")),
    "label -1": (dict(labels=[0, -1, 2, 3]), ("label -1", "0..9")),
    "label count": (dict(labels=[0, 1, 2]), ("3 labels for 4 images",)),
    "float labels": (dict(labels=[0.0, 1.5, 2.0, 3.0]), ("non-integer label", "integer labels")),
    "no labels": (dict(labels=None), ("b'labels'",)),
}


@pytest.mark.parametrize("case", BAD_DATA)
def test_own_cifar_data_is_checked_never_cast(tmp_path, case):
    changes, words = BAD_DATA[case]
    path = cifar_folder(tmp_path, **changes)
    with pytest.raises(ValueError) as info:
        load_cifar("cifar10", tmp_path / "data", verify=False)
    message = str(info.value)
    assert "\n" not in message and str(path) in message, message
    for word in words:
        assert word in message, (word, message)


def test_own_cifar_nchw_and_official_layout_load_the_same_images(tmp_path):
    path = cifar_folder(tmp_path)
    official = load_cifar("cifar10", tmp_path / "data", verify=False)
    entry = pickle.loads(path.read_bytes())
    entry[b"data"] = entry[b"data"].reshape(-1, 3, 32, 32)  # NCHW: taken as it is
    path.write_bytes(pickle.dumps(entry))
    nchw = load_cifar("cifar10", tmp_path / "data", verify=False)
    assert torch.equal(official.train.images, nchw.train.images)


def test_pgcnn_train_refuses_float_cifar_from_outside(tmp_path):
    path = cifar_folder(tmp_path, data=RNG.random((4, 3072)))
    out = tmp_path / "out"
    result = run_cli("train", "--dataset", "cifar10", "--data-dir", str(tmp_path / "data"), "--no-verify-data",
                     "--out-dir", str(out), "--epochs", "1", "--max-batches", "1", "--no-progress")
    err = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(err) == 1 and "Traceback" not in result.stderr, result.stderr
    assert str(path) in err[0] and "float64" in err[0] and "uint8" in err[0]
    assert not out.exists()


# -- own files read without the md5 check: what is wrong with them, no re-download advice ------------------
def test_a_truncated_own_batch_says_what_is_wrong_without_advising_a_download(tmp_path, capsys):
    path = cifar_folder(tmp_path)
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError) as info:
        load_cifar("cifar10", tmp_path / "data", verify=False)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "truncated" in message, message
    assert f"{len(blob) // 2:,} bytes" in message and "3,072 bytes per image" in message, message
    assert "get it again" not in message and "Download" not in message, message
    assert main(["train", "--dataset", "cifar10", "--data-dir", str(tmp_path / "data"), "--no-verify-data",
                 "--out-dir", str(tmp_path / "out"), "--epochs", "1", "--no-progress"]) == 1
    err = one_line_error(capsys)
    assert "truncated" in err and "get it again" not in err and "--no-verify-data" in err, err


def test_a_truncated_own_tarball_says_what_is_wrong_without_advising_a_download(tmp_path):
    tarball = write_cifar10(tmp_path)
    tarball.write_bytes(tarball.read_bytes()[:-200])
    with pytest.raises(ValueError) as info:
        load_cifar("cifar10", tmp_path, verify=False)
    message = str(info.value)
    assert "\n" not in message and str(tarball) in message and "truncated" in message, message
    assert "get it again" not in message and "Download" not in message, message


# -- ImageDataset: the in-memory data of the Python API is checked, never cast ----------------------------
IMAGES = torch.zeros(4, 1, 8, 8, dtype=torch.uint8)
LABELS = torch.tensor([0, 1, 0, 1])
BAD_IN_MEMORY = {
    "floats 0..255": (dict(images=torch.full((4, 1, 8, 8), 255.0)), ("images", "0..255", "/ 255")),
    "normalised floats": (dict(images=torch.full((4, 1, 8, 8), -0.5)), ("images", "-0.5", "[0, 1]")),
    "NaN pixel": (dict(images=torch.full((4, 1, 8, 8), float("nan"))), ("images", "NaN")),
    "int64 pixels": (dict(images=torch.zeros(4, 1, 8, 8, dtype=torch.long)), ("images", "int64", "uint8")),
    "float labels": (dict(labels=torch.tensor([0.0, 1.5, 0.0, 1.0])), ("labels", "float32", "integer")),
    "negative label": (dict(labels=torch.tensor([0, -1, 0, 1])), ("labels", "-1")),
    "mean of 3 for 1 channel": (dict(mean=(0.5, 0.5, 0.5)), ("mean", "3 values", "1 channel")),
    "zero std": (dict(std=0.0), ("std", "> 0")),
}


@pytest.mark.parametrize("case", BAD_IN_MEMORY)
def test_image_dataset_refuses_what_it_would_cast_naming_the_argument(case):
    from pgcnn_triton.data import ImageDataset

    changes, words = BAD_IN_MEMORY[case]
    kwargs = {"images": IMAGES, "labels": LABELS, "mean": 0.5, "std": 0.25, **changes}
    with pytest.raises(ValueError) as info:
        ImageDataset(**kwargs)
    message = str(info.value)
    assert message.startswith("ImageDataset") and "\n" not in message, message
    for word in words:
        assert word in message, (word, message)


def test_data_splits_refuse_labels_beyond_num_classes():
    from pgcnn_triton.data import DataSplits, ImageDataset

    good = ImageDataset(IMAGES.float() / 255, LABELS, 0.5, 0.25)  # floats in [0, 1] are taken as they are
    with pytest.raises(ValueError, match=r"DataSplits: the test labels go up to 2.*num_classes=2"):
        DataSplits("mine", good, good, ImageDataset(IMAGES, LABELS * 2, 0.5, 0.25), num_classes=2,
                   in_channels=1, image_size=8)
