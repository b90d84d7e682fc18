"""The bundled digits (5,000 real MNIST images, 500 per class; see NOTICE.md) and offline datasets from them.

* :func:`load_bundled_digits` — the raw digits, sha256-checked;
* :func:`bundled_mnist6` — offline MNIST6-180 / MNIST6-M from the 500 sixes
  (default 300 train / 50 val / 150 test sixes → 600 / 100 / 300 images);
* :func:`bundled_rotmnist` — a small rotated MNIST: every digit rotated once by a uniform random angle
  (default 3,000 train / 500 val / 1,500 test).
"""

from __future__ import annotations

import hashlib
import io
import math
from importlib import resources

import numpy as np
import torch

from .base import DataSplits, ImageDataset, split_indices
from .mnist6 import MNIST6_VARIANTS, mnist6_splits
from .rotmnist import MEAN as ROTMNIST_MEAN
from .rotmnist import STD as ROTMNIST_STD
from .transforms import rotate

BUNDLED_DIGITS = "mnist_5k.npz"
BUNDLED_DIGITS_SHA256 = "246e0c30eeea57c8d0037d3f38c8e00651ec204cc61b8022563e9aeeb9d756f4"


def load_bundled_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """The bundled digits as ``(images uint8 [5000, 28, 28], labels int64 [5000])``, sorted by label."""
    blob = resources.files(__package__).joinpath(BUNDLED_DIGITS).read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != BUNDLED_DIGITS_SHA256:
        raise RuntimeError(f"{BUNDLED_DIGITS} is corrupt (sha256 {digest}, expected {BUNDLED_DIGITS_SHA256}): "
                           "reinstall pgcnn_triton")
    with np.load(io.BytesIO(blob)) as data:
        return torch.from_numpy(data["images"].copy()), torch.from_numpy(data["labels"].astype(np.int64))


def _check_sizes(sizes: dict, total: int):
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if sum(sizes.values()) > total:
        raise ValueError(f"{' + '.join(sizes)} = {sum(sizes.values())} exceeds the {total} available digits")


def bundled_mnist6(variant: str = "180", *, train: int = 300, val: int = 50, test: int = 150, seed: int = 42,
                   rot_interval: float = 0.0) -> DataSplits:
    """Offline MNIST6-180 (``variant="180"``) or MNIST6-M (``"mirror"``) from the 500 bundled sixes.

    ``train`` / ``val`` / ``test`` count *sixes*; each split holds them and their transformed copies.
    """
    if variant not in MNIST6_VARIANTS:
        raise ValueError(f"variant must be one of {MNIST6_VARIANTS}, got {variant!r}")
    images, labels = load_bundled_digits()
    sixes = images[labels == 6]
    _check_sizes({"train": train, "val": val, "test": test}, sixes.shape[0])
    perm = torch.randperm(sixes.shape[0], generator=torch.Generator().manual_seed(seed))
    train_val, test_six = sixes[perm[:train + val]], sixes[perm[train + val: train + val + test]]
    name = f"bundled-mnist6-{'m' if variant == 'mirror' else '180'}"
    return mnist6_splits(train_val, test_six, variant, val_size=val, rot_interval=rot_interval, seed=seed, name=name)


def bundled_rotmnist(*, train: int = 3000, val: int = 500, test: int = 1500, seed: int = 42) -> DataSplits:
    """A small rotated MNIST: each bundled digit rotated once (uniform angle, bilinear), then split."""
    images, labels = load_bundled_digits()
    _check_sizes({"train": train, "val": val, "test": test}, images.shape[0])
    g = torch.Generator().manual_seed(seed)
    angles = torch.rand(images.shape[0], generator=g) * 2 * math.pi
    rotated = rotate(images[:, None], angles)
    perm = torch.randperm(images.shape[0], generator=g)
    full = ImageDataset(rotated[perm], labels[perm], ROTMNIST_MEAN, ROTMNIST_STD)
    train_idx, val_idx = split_indices(train + val, val, seed)
    test_idx = torch.arange(train + val, train + val + test)
    return DataSplits("bundled-rotmnist", full.subset(train_idx), full.subset(val_idx), full.subset(test_idx),
                      num_classes=10, in_channels=1, image_size=28)
