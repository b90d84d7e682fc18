"""PatchCamelyon from the official HDF5 files (needs the optional ``h5py``: ``pip install pgcnn_triton[pcam]``).

Files (in ``root``, optionally gzipped copies must be decompressed first):
``camelyonpatch_level_2_split_{train,valid,test}_{x,y}.h5``; ``x`` holds ``uint8 [N, 96, 96, 3]`` under
the key ``"x"``, ``y`` holds ``[N, 1, 1, 1]`` labels under ``"y"``. Images are read lazily.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .base import DataSplits
from .errors import DatasetCorruptError, DatasetFormatError, DatasetNotFoundError

MEAN, STD = (0.701, 0.538, 0.692), (0.235, 0.277, 0.213)
SPLITS = {"train": "train", "val": "valid", "test": "test"}
HOW_TO_GET = ("Get the PatchCamelyon HDF5 files from https://github.com/basveeling/pcam (Zenodo record 2546921) "
              "and gunzip them into that directory.")


def _h5py():
    try:
        import h5py
    except ImportError as error:
        raise ImportError("PatchCamelyon needs h5py: pip install 'pgcnn_triton[pcam]'") from error
    return h5py


def pcam_file(split: str, kind: str) -> str:
    """File name of a split (``train``/``val``/``test``) and kind (``x``/``y``)."""
    return f"camelyonpatch_level_2_split_{SPLITS[split]}_{kind}.h5"


class PCamDataset(Dataset):
    """One PCam split, read lazily from its two HDF5 files (each worker opens its own handle)."""

    def __init__(self, root: str | Path, split: str):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
        h5py = _h5py()
        root = Path(root)
        self.paths = [root / pcam_file(split, kind) for kind in ("x", "y")]
        for path in self.paths:
            if not path.is_file():
                raise DatasetNotFoundError("PatchCamelyon", path.name, root.resolve(), HOW_TO_GET)
        try:
            with h5py.File(self.paths[0], "r") as fx, h5py.File(self.paths[1], "r") as fy:
                x_shape, x_dtype, y_len = fx["x"].shape, fx["x"].dtype, fy["y"].shape[0]
                labels = fy["y"][:] if y_len == x_shape[0] else None  # small: 1 byte a patch
        except (OSError, KeyError) as error:
            raise DatasetCorruptError("PatchCamelyon", root / pcam_file(split, "x"), str(error), HOW_TO_GET) from error
        if len(x_shape) != 4 or x_shape[-1] != 3 or y_len != x_shape[0]:
            raise DatasetCorruptError("PatchCamelyon", self.paths[0], f"shapes x {x_shape}, y {y_len}", HOW_TO_GET)
        if x_dtype != np.uint8 or tuple(x_shape[1:]) != (96, 96, 3):
            raise DatasetFormatError("PatchCamelyon", self.paths[0], f"a {x_dtype} dataset 'x' of shape {x_shape}",
                                     "uint8 patches of shape (N, 96, 96, 3), values 0..255")
        if labels is not None and labels.size and not np.isin(labels, (0, 1)).all():
            bad = labels.reshape(-1)[~np.isin(labels.reshape(-1), (0, 1))][0]
            raise DatasetFormatError("PatchCamelyon", self.paths[1], f"label {bad}", "labels 0 or 1")
        self.length = x_shape[0]
        self.mean = torch.tensor(MEAN).reshape(3, 1, 1)
        self.std = torch.tensor(STD).reshape(3, 1, 1)
        self._files = None

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index):
        if self._files is None:
            h5py = _h5py()
            self._files = [h5py.File(p, "r") for p in self.paths]
        x = torch.from_numpy(self._files[0]["x"][index]).permute(2, 0, 1).float().div(255.0)
        y = int(self._files[1]["y"][index].reshape(-1)[0])
        return (x - self.mean) / self.std, y

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_files"] = None  # handles do not cross process boundaries
        return state


def load_pcam(root: str | Path = "data") -> DataSplits:
    """PatchCamelyon train / val / test (262,144 / 32,768 / 32,768 patches of 96×96 RGB, 2 classes)."""
    return DataSplits("pcam", PCamDataset(root, "train"), PCamDataset(root, "val"), PCamDataset(root, "test"),
                      num_classes=2, in_channels=3, image_size=96)
