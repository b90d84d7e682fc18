"""MNIST6-180 and MNIST6-M: 6s against their 180°-rotated (or mirrored) copies (docs/method.md#datasets).

Class 0 = the original 6s; class 1 = the same images rotated by 180° (``variant="180"``) or
mirrored along the width axis (``variant="mirror"``, MNIST6-M). The validation split is taken from the
training 6s *before* duplication, so an image and its transformed copy are always in the same split.
Normalisation: mean 0.1307, std 0.3081. No augmentation.
"""

from __future__ import annotations

import torch

from .base import DataSplits, ImageDataset, split_indices
from .transforms import random_angles, rotate

MNIST6_VARIANTS = ("180", "mirror")
MEAN, STD = (0.1307,), (0.3081,)


def transform_pair(images: torch.Tensor, variant: str) -> torch.Tensor:
    """The class-1 copy of ``[N, 1, H, W]`` images: rotated by 180° or mirrored along W."""
    if variant == "180":
        return torch.rot90(images, 2, dims=(-2, -1))
    if variant == "mirror":
        return torch.flip(images, dims=(-1,))
    raise ValueError(f"variant must be one of {MNIST6_VARIANTS}, got {variant!r}")


def mnist6_dataset(sixes: torch.Tensor, variant: str, rot_interval: float = 0.0, seed: int = 0) -> ImageDataset:
    """[originals; transformed copies] with labels [0…; 1…] from uint8 ``[N, 28, 28]`` (or ``[N, 1, H, W]``) 6s.

    ``rot_interval`` > 0 first rotates each original once by an angle uniform in ±rot_interval degrees.
    """
    x = sixes if sixes.dim() == 4 else sixes[:, None]
    if rot_interval:
        x = rotate(x, random_angles(x.shape[0], rot_interval, seed))
    images = torch.cat([x, transform_pair(x, variant)])
    labels = torch.cat([torch.zeros(x.shape[0], dtype=torch.long), torch.ones(x.shape[0], dtype=torch.long)])
    return ImageDataset(images, labels, MEAN, STD)


def mnist6_splits(train_sixes: torch.Tensor, test_sixes: torch.Tensor, variant: str, *, val_fraction: float = 0.1,
                  val_size: int | None = None, rot_interval: float = 0.0, seed: int = 42, name: str | None = None
                  ) -> DataSplits:
    """Train / val / test MNIST6 sets; the validation 6s (``val_size`` or ``val_fraction``) come from training."""
    if variant not in MNIST6_VARIANTS:
        raise ValueError(f"variant must be one of {MNIST6_VARIANTS}, got {variant!r}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n = train_sixes.shape[0]
    if val_size is None:
        val_size = max(1, round(n * val_fraction))
    train_idx, val_idx = split_indices(n, val_size, seed)
    splits = [mnist6_dataset(part, variant, rot_interval, seed + i)
              for i, part in enumerate((train_sixes[train_idx], train_sixes[val_idx], test_sixes))]
    return DataSplits(name or f"mnist6-{'m' if variant == 'mirror' else '180'}", *splits,
                      num_classes=2, in_channels=1, image_size=int(splits[0].images.shape[-1]))
