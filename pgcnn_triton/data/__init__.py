"""Datasets: real on-disk formats with clear errors, and offline sets from the bundled digits.

* CIFAR-10 / CIFAR-100 python tarballs (:func:`load_cifar`, optional md5-checked download);
* RotMNIST ``mnist_rotation_new.zip`` (:func:`load_rotmnist`);
* MNIST idx files (:func:`load_mnist_idx`) and MNIST6-180 / MNIST6-M from them (:func:`load_mnist6`);
* PatchCamelyon HDF5 files (:func:`load_pcam`, needs ``h5py``);
* STL-10 binary release ``stl10_binary.tar.gz`` (:func:`load_stl10`, optional md5-checked download);
* the bundled digits, 5,000 real MNIST images (:func:`load_bundled_digits`; CC BY-SA 3.0, see
  ``NOTICE.md``), and offline MNIST6 / rotated MNIST built from them (:func:`bundled_mnist6`,
  :func:`bundled_rotmnist`).

:func:`load_dataset` dispatches by name; every loader returns :class:`DataSplits` (train / val / test).
"""

from .base import DataSplits, ImageDataset, split_indices
from .bundled import (
    BUNDLED_DIGITS,
    BUNDLED_DIGITS_SHA256,
    bundled_mnist6,
    bundled_rotmnist,
    load_bundled_digits,
)
from .cifar import load_cifar
from .errors import DatasetCorruptError, DatasetFormatError, DatasetNotFoundError
from .files import download, file_digest, verify_file
from .mnist import load_mnist6, load_mnist_idx
from .mnist6 import mnist6_dataset, mnist6_splits
from .pcam import load_pcam
from .registry import DATASETS, OFFICIAL_TRAIN_SIZES, load_dataset
from .rotmnist import load_rotmnist
from .stl10 import load_stl10
from .transforms import rotate

__all__ = [
    "BUNDLED_DIGITS", "BUNDLED_DIGITS_SHA256", "DATASETS", "OFFICIAL_TRAIN_SIZES", "DataSplits",
    "DatasetCorruptError", "DatasetFormatError", "DatasetNotFoundError", "ImageDataset", "bundled_mnist6", "bundled_rotmnist",
    "download", "file_digest", "load_bundled_digits", "load_cifar", "load_dataset", "load_mnist6",
    "load_mnist_idx", "load_pcam", "load_rotmnist", "load_stl10", "mnist6_dataset", "mnist6_splits", "rotate",
    "split_indices", "verify_file",
]
