"""One entry point for every dataset: ``load_dataset(name, root, ...)`` → :class:`DataSplits`."""

from __future__ import annotations

from pathlib import Path

from .base import DataSplits
from .bundled import bundled_mnist6, bundled_rotmnist
from .cifar import load_cifar
from .mnist import load_mnist6
from .pcam import load_pcam
from .rotmnist import load_rotmnist

#: Dataset names accepted by :func:`load_dataset` (and ``--dataset`` on the command line).
DATASETS = ("cifar10", "cifar100", "rotmnist", "mnist6-180", "mnist6-m", "pcam",
            "bundled-mnist6-180", "bundled-mnist6-m", "bundled-rotmnist")

#: Number of training images per epoch of the official datasets (the official DATASET_SIZES).
OFFICIAL_TRAIN_SIZES = {"cifar10": 45_000, "cifar100": 45_000, "rotmnist": 10_000, "mnist6-180": 11_836,
                        "mnist6-m": 11_836, "pcam": 262_144}


def load_dataset(name: str, root: str | Path = "data", *, download: bool = False, progress: bool = True,
                 seed: int = 42, verify: bool = True, **options) -> DataSplits:
    """Load a dataset by name (see :data:`DATASETS`) as train / val / test splits.

    Args:
        name: dataset name; the ``bundled-*`` ones need no files (they use the packaged digits).
        root: directory with the dataset files.
        download: download missing files where the loader supports it (CIFAR).
        seed: seed of the train / validation split.
        verify: check the md5 of the standard files found against the official ones (CIFAR, the
            datasets with published checksums here); ``False`` reads your own variants.
        options: passed to the loader (e.g. ``rot_interval`` for MNIST6, ``train=`` sizes for bundled sets).
    """
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}")
    if name in ("cifar10", "cifar100"):
        return load_cifar(name, root, download_missing=download, progress=progress, seed=seed, verify=verify,
                          **options)
    if name == "rotmnist":
        return load_rotmnist(root, seed=seed, **options)
    if name in ("mnist6-180", "mnist6-m"):
        return load_mnist6("180" if name == "mnist6-180" else "mirror", root, seed=seed, **options)
    if name == "pcam":
        return load_pcam(root, **options)
    if name == "bundled-rotmnist":
        return bundled_rotmnist(seed=seed, **options)
    return bundled_mnist6("180" if name == "bundled-mnist6-180" else "mirror", seed=seed, **options)
