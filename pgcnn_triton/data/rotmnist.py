"""Rotated MNIST from the LISA lab's ``mnist_rotation_new.zip`` (.amat text files).

The zip holds ``mnist_all_rotation_normalized_float_train_valid.amat`` (12,000 rows) and
``mnist_all_rotation_normalized_float_test.amat`` (50,000 rows); each row is 784 pixel values in
[0, 1] followed by the label. The 12k are split 10,000 train / 2,000 validation (seed 42).
Pixels become ``uint8`` as ``round(255·v)`` (the official ``×256`` would overflow at v = 1.0).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import torch

from .base import DataSplits, ImageDataset, split_indices, val_size_for
from .errors import DatasetCorruptError, DatasetFormatError, DatasetNotFoundError

ARCHIVE = "mnist_rotation_new.zip"
TRAIN_FILE = "mnist_all_rotation_normalized_float_train_valid.amat"
TEST_FILE = "mnist_all_rotation_normalized_float_test.amat"
URL = "http://www.iro.umontreal.ca/~lisa/icml2007data/mnist_rotation_new.zip"
MEAN, STD = (0.13,), (0.297,)
HOW_TO_GET = f"Download {URL} into that directory (the zip or its two extracted .amat files both work)."
OFFICIAL_TRAIN, OFFICIAL_VAL = 12_000, 2_000


def parse_amat(text: bytes | str, path) -> tuple[torch.Tensor, torch.Tensor]:
    """Parse an .amat file: rows of 784 pixels in [0, 1] then the label → (uint8 [N, 1, 28, 28], int64 [N])."""
    try:
        rows = np.loadtxt(io.BytesIO(text if isinstance(text, bytes) else text.encode()), dtype=np.float32, ndmin=2)
    except ValueError as error:
        raise DatasetCorruptError("RotMNIST", path, f"not an .amat table: {error}", HOW_TO_GET) from error
    if rows.shape[1] != 785:
        raise DatasetCorruptError("RotMNIST", path, f"rows have {rows.shape[1]} values, expected 785", HOW_TO_GET)
    values, labels = rows[:, :784], rows[:, 784]
    if not np.isfinite(values).all() or values.min(initial=0.0) < 0 or values.max(initial=0.0) > 1:
        found = (f"pixel values {values.min():g}..{values.max():g}" if np.isfinite(values).all()
                 else "non-finite pixel values (NaN or inf)")
        raise DatasetFormatError("RotMNIST", path, found,
                                 "784 pixel values in [0, 1] then the label on each row",
                                 "Scale the pixels to [0, 1].")
    if not np.isfinite(labels).all() or (labels != np.round(labels)).any() or labels.min() < 0 or labels.max() > 9:
        bad = next(v for v in labels if not (np.isfinite(v) and v == round(v) and 0 <= v <= 9))
        raise DatasetFormatError("RotMNIST", path, f"label {bad:g}", "an integer label 0..9 as each row's last value")
    pixels = np.rint(values * 255.0).astype(np.uint8).reshape(-1, 1, 28, 28)
    return torch.from_numpy(pixels), torch.from_numpy(labels.astype(np.int64))


def _read(root: Path, name: str):
    extracted = root / name
    if extracted.is_file():
        return parse_amat(extracted.read_bytes(), extracted)
    archive = root / ARCHIVE
    if not archive.is_file():
        raise DatasetNotFoundError("RotMNIST", f"{ARCHIVE} (or {name})", root.resolve(), HOW_TO_GET)
    try:
        with zipfile.ZipFile(archive) as z:
            member = next((m for m in z.namelist() if m.endswith(name)), None)
            if member is None:
                raise DatasetCorruptError("RotMNIST", archive, f"{name} is not in the zip", HOW_TO_GET)
            return parse_amat(z.read(member), f"{archive}:{member}")
    except zipfile.BadZipFile as error:
        raise DatasetCorruptError("RotMNIST", archive, f"not a zip file: {error}", HOW_TO_GET) from error


def load_rotmnist(root: str | Path = "data", *, seed: int = 42) -> DataSplits:
    """RotMNIST as train (10k) / val (2k) / test (50k) splits, from ``root/mnist_rotation_new.zip``."""
    root = Path(root)
    x, y = _read(root, TRAIN_FILE)
    test_x, test_y = _read(root, TEST_FILE)
    full = ImageDataset(x, y, MEAN, STD)
    train_idx, val_idx = split_indices(len(full), val_size_for(len(full), OFFICIAL_TRAIN, OFFICIAL_VAL), seed)
    return DataSplits("rotmnist", full.subset(train_idx), full.subset(val_idx), ImageDataset(test_x, test_y, MEAN, STD),
                      num_classes=10, in_channels=1, image_size=28)
