import pytest
import torch

from pgcnn_triton.data import (
    DatasetCorruptError,
    DatasetNotFoundError,
    load_dataset,
    load_mnist6,
    load_mnist_idx,
)
from tests.data.formats import write_mnist_idx

TRAIN_LABELS = [6, 1, 6, 6, 2, 6, 6, 6, 6, 6, 6, 6, 3]  # ten 6s
TEST_LABELS = [6, 0, 6, 6]


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, gz):
    arrays = write_mnist_idx(tmp_path, TRAIN_LABELS, TEST_LABELS, gz=gz)
    images, labels = load_mnist_idx(tmp_path, "train")
    assert torch.equal(images, torch.from_numpy(arrays["train"][0]))
    assert labels.tolist() == TRAIN_LABELS


def test_torchvision_layout(tmp_path):
    write_mnist_idx(tmp_path / "MNIST" / "raw", TRAIN_LABELS, TEST_LABELS)
    assert load_mnist_idx(tmp_path, "test")[1].tolist() == TEST_LABELS


def test_mnist6_180_classes_and_validation_split(tmp_path):
    arrays = write_mnist_idx(tmp_path, TRAIN_LABELS, TEST_LABELS)
    data = load_mnist6("180", tmp_path, val_fraction=0.2)
    # ten training 6s: 8 train + 2 val, each with its rotated copy; three test 6s
    assert data.sizes() == {"train": 16, "val": 4, "test": 6}
    test = data.test
    assert test.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert torch.equal(test.images[3:], torch.rot90(test.images[:3], 2, dims=(-2, -1)))
    sixes = torch.from_numpy(arrays["t10k"][0][[0, 2, 3]])[:, None]
    assert torch.equal(test.images[:3], sixes)
    # an image and its copy stay in the same split
    train_originals = {bytes(x.numpy()) for x in data.train.images[:8]}
    assert not train_originals & {bytes(x.numpy()) for x in data.val.images[:2]}


def test_mnist6_m_is_mirrored(tmp_path):
    write_mnist_idx(tmp_path, TRAIN_LABELS, TEST_LABELS)
    data = load_dataset("mnist6-m", tmp_path)
    n = len(data.test) // 2
    assert torch.equal(data.test.images[n:], torch.flip(data.test.images[:n], dims=(-1,)))


def test_missing_idx_file(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="train-images-idx3-ubyte"):
        load_mnist6("180", tmp_path)


def test_bad_idx_header(tmp_path):
    write_mnist_idx(tmp_path, TRAIN_LABELS, TEST_LABELS, gz=False)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x01" + bytes(8))
    with pytest.raises(DatasetCorruptError, match="idx header"):
        load_mnist_idx(tmp_path, "train")


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="variant"):
        load_mnist6("90", tmp_path)
    with pytest.raises(ValueError, match="split"):
        load_mnist_idx(tmp_path, "valid")
