"""CIFAR-10 / CIFAR-100 from the standard python-pickle tarballs (optionally downloaded).

Files (in ``root``): ``cifar-10-python.tar.gz`` or its extracted ``cifar-10-batches-py/``;
``cifar-100-python.tar.gz`` or ``cifar-100-python/``. Train 50,000 → 45,000 train + 5,000 validation
(seeded random split, seed 42), test 10,000. Normalisation as the official code (docs/method.md#datasets).
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import torch

from .base import DataSplits, ImageDataset, split_indices, val_size_for
from .errors import DatasetCorruptError, DatasetNotFoundError
from .files import download, verify_file
from .safe_pickle import restricted_loads

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CIFAR100_MEAN, CIFAR100_STD = (0.4914, 0.4824, 0.4467), (0.2471, 0.2435, 0.2616)

CIFAR_SPECS = {
    "cifar10": dict(
        title="CIFAR-10", archive="cifar-10-python.tar.gz", folder="cifar-10-batches-py",
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", md5="c58f30108f718f92721af3b95e74349a",
        train=[f"data_batch_{i}" for i in range(1, 6)], test=["test_batch"], label_key="labels", classes=10,
        mean=IMAGENET_MEAN, std=IMAGENET_STD,
        # md5 of each file of the extracted folder (published with the dataset)
        member_md5={"data_batch_1": "c99cafc152244af753f735de768cd75f", "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
                    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751", "data_batch_4": "634d18415352ddfa80567beed471001a",
                    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb", "test_batch": "40351d587109b95175f43aff81a1287e"}),
    "cifar100": dict(
        title="CIFAR-100", archive="cifar-100-python.tar.gz", folder="cifar-100-python",
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", md5="eb9058c3a382ffc7106e4002c42a8d85",
        train=["train"], test=["test"], label_key="fine_labels", classes=100,
        mean=CIFAR100_MEAN, std=CIFAR100_STD,
        member_md5={"train": "16019d7e3df5f24257cddd939b257f8d", "test": "f0ef6b0ae62326f3e7ffdfab6717acfc"}),
}
OFFICIAL_TRAIN, OFFICIAL_VAL = 50_000, 5_000


def _how_to_get(spec) -> str:
    return (f"Download {spec['url']} into that directory (or pass download=True / --download); "
            "the tarball or its extracted folder both work.")


#: Added to a checksum mismatch: how to read files that differ from the official ones on purpose.
VARIANT_HINT = ("If these are your own variant of the files, skip the check with --no-verify-data "
                "(load_cifar(..., verify=False)).")


def _unpickle(blob: bytes, path, spec) -> tuple[np.ndarray, np.ndarray]:
    try:
        # never pickle.loads: a batch file could name os.system; only arrays, containers and strings load
        entry = restricted_loads(blob, encoding="bytes")
        data = np.asarray(entry[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(entry[spec["label_key"].encode()], dtype=np.int64)
    except Exception as error:  # any decoding problem is a corrupt file
        raise DatasetCorruptError(spec["title"], path, f"cannot read a CIFAR batch: {error}", _how_to_get(spec)) from error
    if labels.shape != (data.shape[0],):
        raise DatasetCorruptError(spec["title"], path, "labels do not match images", _how_to_get(spec))
    return data, labels


def _read_batches(root: Path, spec, names, verify: bool) -> tuple[torch.Tensor, torch.Tensor]:
    folder, archive = root / spec["folder"], root / spec["archive"]
    parts = []
    if folder.is_dir():
        for name in names:
            path = folder / name
            if not path.is_file():
                raise DatasetNotFoundError(spec["title"], f"{spec['folder']}/{name}", root, _how_to_get(spec))
            if verify:
                verify_file(path, spec["member_md5"][name], spec["title"], "md5",
                            f"{_how_to_get(spec)} {VARIANT_HINT}")
            parts.append(_unpickle(path.read_bytes(), path, spec))
    else:
        try:
            with tarfile.open(archive, "r:*") as tar:
                for name in names:
                    member = tar.extractfile(f"{spec['folder']}/{name}")
                    parts.append(_unpickle(member.read(), f"{archive}:{spec['folder']}/{name}", spec))
        except (tarfile.TarError, KeyError, EOFError, OSError) as error:
            raise DatasetCorruptError(spec["title"], archive, f"cannot read the tarball: {error}",
                                      _how_to_get(spec)) from error
    images = torch.from_numpy(np.concatenate([p[0] for p in parts]))
    labels = torch.from_numpy(np.concatenate([p[1] for p in parts]))
    return images, labels


def load_cifar(name: str = "cifar10", root: str | Path = "data", *, download_missing: bool = False,
               verify: bool = True, seed: int = 42, progress: bool = True, url: str | None = None) -> DataSplits:
    """CIFAR-10 (``name="cifar10"``) or CIFAR-100 (``"cifar100"``) as train / val / test splits.

    The batch files are read with a restricted unpickler (:mod:`.safe_pickle`): a file that would run
    code is refused with :class:`DatasetCorruptError` before anything of it runs.

    Args:
        root: directory holding the tarball or its extracted folder.
        download_missing: download the tarball (md5-checked, progress bar) if neither is in ``root``.
        verify: check the md5 of the files found (the tarball, or each file of the extracted folder)
            against the official ones before reading them; a mismatch raises :class:`DatasetCorruptError`.
            ``False`` (``--no-verify-data``) reads your own variants of the files.
        seed: seed of the 45k / 5k train / validation split (the official protocol uses 42).
        url: override the download address (mirrors, tests).
    """
    if name not in CIFAR_SPECS:
        raise ValueError(f"name must be one of {sorted(CIFAR_SPECS)}, got {name!r}")
    spec, root = CIFAR_SPECS[name], Path(root)
    if not isinstance(verify, bool):
        raise TypeError(f"verify must be True or False, got {verify!r}")
    archive = root / spec["archive"]
    if not (root / spec["folder"]).is_dir():
        if not archive.is_file():
            if not download_missing:
                raise DatasetNotFoundError(spec["title"], spec["archive"], root.resolve(), _how_to_get(spec))
            download(url or spec["url"], archive, dataset=spec["title"], md5=spec["md5"], progress=progress)
        elif verify:
            verify_file(archive, spec["md5"], spec["title"], "md5", f"{_how_to_get(spec)} {VARIANT_HINT}")
    train_x, train_y = _read_batches(root, spec, spec["train"], verify)
    test_x, test_y = _read_batches(root, spec, spec["test"], verify)
    full = ImageDataset(train_x, train_y, spec["mean"], spec["std"])
    train_idx, val_idx = split_indices(len(full), val_size_for(len(full), OFFICIAL_TRAIN, OFFICIAL_VAL), seed)
    return DataSplits(name, full.subset(train_idx), full.subset(val_idx),
                      ImageDataset(test_x, test_y, spec["mean"], spec["std"]),
                      num_classes=spec["classes"], in_channels=3, image_size=32)
