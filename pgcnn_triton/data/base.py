"""In-memory image datasets, the train/val/test bundle every loader returns, and split helpers."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset


def _check_int(value, argument, minimum=0):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{argument} must be an int >= {minimum}, got {value!r}")


class ImageDataset(Dataset):
    """Images ``uint8 [N, C, H, W]`` (0..255) or float in [0, 1], and integer labels ``[N]`` (class indices
    ≥ 0), normalised on access with ``mean`` / ``std`` (one value, or one per channel).

    Items are ``(float32 [C, H, W] normalised with mean/std, int label)``. Nothing is cast behind the
    caller's back: other image dtypes (int64, bool, ...), floats outside [0, 1] (0..255 floats, images
    already normalised), NaN / inf pixels, non-integer or negative labels raise a ``ValueError`` naming
    the argument and the fix.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean, std):
        _check_images(images)
        _check_labels(labels, images.shape[0])
        c = images.shape[1]
        self.images, self.labels = images, labels.long()
        self.mean = _channel_values(mean, "mean", c)
        self.std = _channel_values(std, "std", c)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index):
        x = self.images[index]
        x = x.float().div(255.0) if x.dtype == torch.uint8 else x.float()
        return (x - self.mean) / self.std, int(self.labels[index])

    def subset(self, indices: torch.Tensor) -> ImageDataset:
        """A new dataset holding the given items (same normalisation)."""
        part = copy.copy(self)  # items of checked data: no second pass over the pixels
        part.images, part.labels = self.images[indices], self.labels[indices]
        return part


def _check_images(images) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise ValueError(f"ImageDataset: images must be a [N, C, H, W] tensor, got "
                         f"{tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}")
    if images.dtype == torch.uint8 or images.numel() == 0:
        return
    if not images.is_floating_point():
        raise ValueError(f"ImageDataset: images must be uint8 (0..255) or float in [0, 1], got {images.dtype}: "
                         "pass images.to(torch.uint8) if every value is 0..255")
    if not torch.isfinite(images).all():
        raise ValueError("ImageDataset: images hold NaN or inf values; expected uint8 (0..255) or float in [0, 1]")
    low, high = float(images.min()), float(images.max())
    if low < 0 or high > 1:
        fix = ("pass images / 255 (or uint8 images)" if low >= 0 and high <= 255 else
               "pass the images before normalisation: ImageDataset normalises with mean / std itself")
        raise ValueError(f"ImageDataset: images hold float values {low:g}..{high:g} ({images.dtype}); expected "
                         f"uint8 (0..255) or float in [0, 1]: {fix}")


def _check_labels(labels, count: int) -> None:
    if not isinstance(labels, torch.Tensor) or labels.shape != (count,):
        raise ValueError(f"ImageDataset: labels must be a [N] tensor matching images (N = {count}), got "
                         f"{tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__}")
    if labels.dtype == torch.bool or labels.is_floating_point() or labels.is_complex():
        raise ValueError(f"ImageDataset: labels must be an integer tensor of class indices, got {labels.dtype}: "
                         "pass labels.long() if every value is a whole number")
    if count and int(labels.min()) < 0:
        raise ValueError(f"ImageDataset: labels must be class indices ≥ 0, got {int(labels.min())}")


def _channel_values(values, name: str, channels: int) -> torch.Tensor:
    """``mean`` / ``std`` as ``float32 [C, 1, 1]``: one value for every channel, or one per channel."""
    try:
        tensor = torch.as_tensor(values, dtype=torch.float32).reshape(-1)
    except (TypeError, ValueError, RuntimeError) as error:
        raise ValueError(f"ImageDataset: {name} must be a number or a sequence of numbers, got {values!r}") from error
    if tensor.numel() not in (1, channels):
        raise ValueError(f"ImageDataset: {name} has {tensor.numel()} values for images of {channels} channel"
                         f"{'s' if channels != 1 else ''}: pass one value, or one per channel")
    if not torch.isfinite(tensor).all() or (name == "std" and (tensor <= 0).any()):
        raise ValueError(f"ImageDataset: {name} must be finite{' and > 0' if name == 'std' else ''}, "
                         f"got {tensor.tolist()}")
    return tensor.reshape(-1, 1, 1).expand(channels, 1, 1).clone()


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

    def __post_init__(self):
        # a label beyond the class count would only show up as an index error inside the loss
        for split in ("train", "val", "test"):
            labels = getattr(getattr(self, split), "labels", None)
            if isinstance(labels, torch.Tensor) and labels.numel() and int(labels.max()) >= self.num_classes:
                raise ValueError(f"DataSplits: the {split} labels go up to {int(labels.max())}, beyond "
                                 f"num_classes={self.num_classes} (labels are class indices 0..{self.num_classes - 1}): "
                                 f"pass num_classes={int(labels.max()) + 1} or fix the labels")

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
