import pytest
import torch

from pgcnn_triton.data import DatasetCorruptError, DatasetNotFoundError, load_rotmnist
from pgcnn_triton.data.rotmnist import TEST_FILE, TRAIN_FILE
from tests.data.formats import amat_text, write_rotmnist


def test_zip_splits_pixels_and_labels(tmp_path):
    _, arrays = write_rotmnist(tmp_path, train=12, test=5)
    data = load_rotmnist(tmp_path)
    assert data.sizes() == {"train": 10, "val": 2, "test": 5}  # the official 10k / 2k proportion
    pixels, labels = arrays[TEST_FILE]
    assert torch.equal(data.test.labels, torch.as_tensor(labels).long())
    expected = torch.from_numpy(pixels).mul(255).round().clamp(0, 255).to(torch.uint8).reshape(-1, 1, 28, 28)
    assert torch.equal(data.test.images, expected)
    all_train = torch.cat([data.train.images, data.val.images])
    assert all_train.shape == (12, 1, 28, 28)
    assert int(load_rotmnist(tmp_path).train.images.max()) <= 255


def test_extracted_amat_files(tmp_path):
    for name, n in ((TRAIN_FILE, 12), (TEST_FILE, 3)):
        (tmp_path / name).write_text(amat_text(n, 0)[0])
    assert load_rotmnist(tmp_path).sizes()["test"] == 3


def test_missing_zip(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="mnist_rotation_new.zip"):
        load_rotmnist(tmp_path)


def test_wrong_row_length_is_corrupt(tmp_path):
    (tmp_path / TRAIN_FILE).write_text("0.1 0.2 3\n")
    (tmp_path / TEST_FILE).write_text("0.1 0.2 3\n")
    with pytest.raises(DatasetCorruptError, match="785"):
        load_rotmnist(tmp_path)


def test_bad_zip_is_corrupt(tmp_path):
    (tmp_path / "mnist_rotation_new.zip").write_bytes(b"garbage")
    with pytest.raises(DatasetCorruptError, match="zip"):
        load_rotmnist(tmp_path)
