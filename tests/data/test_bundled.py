import math

import pytest
import torch

from pgcnn_triton.data import (
    bundled_mnist6,
    bundled_rotmnist,
    load_bundled_digits,
    load_dataset,
    rotate,
)


def test_bundled_digits_checksum_and_shape():
    images, labels = load_bundled_digits()
    assert images.shape == (5000, 28, 28) and images.dtype == torch.uint8
    assert torch.bincount(labels).tolist() == [500] * 10


def test_bundled_mnist6_180_splits_are_disjoint_and_paired():
    data = bundled_mnist6("180", train=20, val=5, test=10)
    assert data.sizes() == {"train": 40, "val": 10, "test": 20}
    t = data.test
    assert torch.equal(t.images[10:], torch.rot90(t.images[:10], 2, dims=(-2, -1)))
    keys = [{bytes(x.numpy()) for x in getattr(data, s).images} for s in ("train", "val", "test")]
    assert not keys[0] & keys[1] and not keys[0] & keys[2] and not keys[1] & keys[2]


def test_bundled_mnist6_m_default_sizes():
    data = load_dataset("bundled-mnist6-m")
    assert data.sizes() == {"train": 600, "val": 100, "test": 300}
    assert torch.equal(data.val.images[50:], torch.flip(data.val.images[:50], dims=(-1,)))


def test_bundled_rotmnist():
    data = bundled_rotmnist(train=50, val=10, test=20)
    assert data.sizes() == {"train": 50, "val": 10, "test": 20} and data.num_classes == 10


def test_bundled_sizes_validated():
    with pytest.raises(ValueError, match="exceeds"):
        bundled_mnist6("180", train=400, val=100, test=100)
    with pytest.raises(ValueError, match="train"):
        bundled_mnist6("180", train=0)


def test_rotate_quarter_turn_equals_rot90():
    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 1, 4] = 1.0
    x[0, 0, 2, 6] = 0.5
    assert torch.allclose(rotate(x, torch.tensor([math.pi / 2])), torch.rot90(x, 1, (-2, -1)), atol=1e-5)
    with pytest.raises(ValueError, match="angles"):
        rotate(x, torch.tensor([0.0, 1.0]))


def test_unknown_dataset():
    with pytest.raises(ValueError, match="dataset"):
        load_dataset("imagenet")
