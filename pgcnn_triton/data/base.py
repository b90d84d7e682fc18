"""In-memory image datasets, the train/val/test bundle every loader returns, and split helpers."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset


def _check_int(value, argument, minimum=0):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{argument} must be an int >= {minimum}, got {value!r}")


class ImageDataset(Dataset):
    """Images ``uint8 [N, C, H, W]`` (or float in [0, 1]) and labels ``int64 [N]``, normalised on access.

    Items are ``(float32 [C, H, W] normalised with mean/std, int label)``.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean, std):
        if not isinstance(images, torch.Tensor) or images.dim() != 4:
            raise ValueError(f"images must be a [N, C, H, W] tensor, got {getattr(images, 'shape', type(images))}")
        if not isinstance(labels, torch.Tensor) or labels.shape != (images.shape[0],):
            raise ValueError(f"labels must be a [N] tensor matching images ({images.shape[0]}), "
                             f"got {getattr(labels, 'shape', type(labels))}")
        c = images.shape[1]
        self.images, self.labels = images, labels.long()
        self.mean = torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1, 1).expand(c, 1, 1).clone()
        self.std = torch.as_tensor(std, dtype=torch.float32).reshape(-1, 1, 1).expand(c, 1, 1).clone()

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index):
        x = self.images[index]
        x = x.float().div(255.0) if x.dtype == torch.uint8 else x.float()
        return (x - self.mean) / self.std, int(self.labels[index])

    def subset(self, indices: torch.Tensor) -> ImageDataset:
        """A new dataset holding the given items (same normalisation)."""
        return ImageDataset(self.images[indices], self.labels[indices], self.mean.flatten(), self.std.flatten())


@dataclass
class DataSplits:
    """What every loader returns: train / validation / test sets plus what a model needs to know."""

    name: str
    train: Dataset
    val: Dataset
    test: Dataset
    num_classes: int
    in_channels: int
    image_size: int

    def sizes(self) -> dict:
        """``{"train": n, "val": n, "test": n}``."""
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def split_indices(n: int, val_size: int, seed: int = 42) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random split of ``range(n)`` into (train, val) index tensors, each sorted."""
    _check_int(n, "n", 1)
    _check_int(val_size, "val_size", 0)
    if val_size >= n:
        raise ValueError(f"val_size must be < n ({n}), got {val_size}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[val_size:].sort().values, perm[:val_size].sort().values


def val_size_for(n: int, official_total: int, official_val: int) -> int:
    """The official validation size if the data has the official size, else the same fraction (≥ 1)."""
    if n == official_total:
        return official_val
    return max(1, round(n * official_val / official_total)) if n > 1 else 0
