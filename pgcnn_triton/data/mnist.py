"""MNIST from the standard idx files, and MNIST6-180 / MNIST6-M built from it (docs/method.md#datasets).

Files (in ``root``, or ``root/MNIST/raw`` as torchvision lays them out), each raw or ``.gz``:
``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte``.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from .errors import DatasetCorruptError, DatasetNotFoundError
from .mnist6 import MNIST6_VARIANTS, mnist6_splits

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
HOW_TO_GET = ("Get the four MNIST idx files (e.g. from https://ossci-datasets.s3.amazonaws.com/mnist/ or any "
              "MNIST mirror) into that directory; gzipped (.gz) or raw both work.")


def parse_idx(blob: bytes, path, expected_dims: int) -> np.ndarray:
    """Parse an idx file (unsigned-byte data): magic ``0x0000 08 dims``, big-endian int32 sizes, then data."""
    if len(blob) < 4 or blob[0] != 0 or blob[1] != 0 or blob[2] != 0x08 or blob[3] != expected_dims:
        raise DatasetCorruptError("MNIST", path, f"bad idx header (expected ubyte data with {expected_dims} dims)",
                                  HOW_TO_GET)
    header = 4 + 4 * expected_dims
    dims = [int.from_bytes(blob[4 + 4 * i: 8 + 4 * i], "big") for i in range(expected_dims)]
    if len(blob) != header + int(np.prod(dims)):
        raise DatasetCorruptError("MNIST", path, f"size {len(blob)} does not match the header dims {dims}",
                                  HOW_TO_GET)
    return np.frombuffer(blob, dtype=np.uint8, offset=header).reshape(dims)


def _find(root: Path, name: str) -> Path:
    for folder in (root, root / "MNIST" / "raw"):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise DatasetNotFoundError("MNIST", f"{name} (or {name}.gz)", root.resolve(), HOW_TO_GET)


def _read(path: Path) -> bytes:
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        return gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as error:
        raise DatasetCorruptError("MNIST", path, f"not a gzip file: {error}", HOW_TO_GET) from error


def load_mnist_idx(root: str | Path = "data", split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST ``split`` ("train" or "test") as ``(uint8 [N, 28, 28], int64 [N])``."""
    if split not in IDX_FILES:
        raise ValueError(f"split must be one of {sorted(IDX_FILES)}, got {split!r}")
    root = Path(root)
    image_path, label_path = (_find(root, name) for name in IDX_FILES[split])
    images = parse_idx(_read(image_path), image_path, 3)
    labels = parse_idx(_read(label_path), label_path, 1)
    if labels.shape[0] != images.shape[0]:
        raise DatasetCorruptError("MNIST", label_path, f"{labels.shape[0]} labels for {images.shape[0]} images",
                                  HOW_TO_GET)
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def load_mnist6(variant: str = "180", root: str | Path = "data", *, val_fraction: float = 0.1,
                rot_interval: float = 0.0, seed: int = 42):
    """MNIST6-180 (``variant="180"``) or MNIST6-M (``"mirror"``) from the MNIST idx files.

    Keeps the 6s (5,918 train, 958 test); a ``val_fraction`` of the training 6s (seed 42) is held out
    for validation, unlike the official code, which selects on the test set. See
    :func:`~pgcnn_triton.data.mnist6.mnist6_splits`.
    """
    if variant not in MNIST6_VARIANTS:
        raise ValueError(f"variant must be one of {MNIST6_VARIANTS}, got {variant!r}")
    train_x, train_y = load_mnist_idx(root, "train")
    test_x, test_y = load_mnist_idx(root, "test")
    return mnist6_splits(train_x[train_y == 6], test_x[test_y == 6], variant,
                         val_fraction=val_fraction, rot_interval=rot_interval, seed=seed)
