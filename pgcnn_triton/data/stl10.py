"""STL-10 from the official binary release (``stl10_binary.tar.gz``, optionally downloaded).

Files (in ``root``): the tarball or its extracted ``stl10_binary/`` folder with ``train_X.bin``,
``train_y.bin``, ``test_X.bin`` and ``test_y.bin`` (the unlabeled images are not read). An ``*_X.bin``
holds ``uint8`` images of 3×96×96 bytes each, channel by channel, each channel **column-major** (the
release was written from MATLAB); an ``*_y.bin`` holds one ``uint8`` label in 1..10 per image, read as
0..9. Train 5,000 → 4,500 train + 500 validation (seeded random split, seed 42), test 8,000.
Normalisation: the ImageNet mean / std, as the CIFAR-10 loader.
"""

from __future__ import annotations

import tarfile
from functools import partial
from pathlib import Path

import numpy as np
import torch

from .base import DataSplits, ImageDataset, split_indices, val_size_for
from .cifar import IMAGENET_MEAN, IMAGENET_STD, VARIANT_HINT
from .errors import DatasetCorruptError, DatasetNotFoundError
from .files import download, verify_file

TITLE, ARCHIVE, FOLDER = "STL-10", "stl10_binary.tar.gz", "stl10_binary"
URL = "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz"
#: md5 of the tarball and of each file read from it (published with the dataset's standard loaders).
ARCHIVE_MD5 = "91f7769df0f17e558f3565bffb0c7dfb"
MEMBER_MD5 = {"train_X.bin": "918c2871b30a85fa023e0c44e0bee87f", "train_y.bin": "5a34089d4802c674881badbb80307741",
              "test_X.bin": "7f263ba9f9e0b06b93213547f721ac82", "test_y.bin": "36f9794fa4beb8a2c72628de14fa638e"}
SIZE, CLASSES = 96, 10
IMAGE_BYTES = 3 * SIZE * SIZE
OFFICIAL_TRAIN, OFFICIAL_VAL = 5_000, 500


def _how_to_get() -> str:
    return (f"Download {URL} into that directory (or pass download=True / --download); "
            "the tarball or its extracted folder both work.")


#: Read without the md5 check, a file is taken as the user's own: advice to download the release would mislead.
OWN_FILE_HINT = ("The md5 check was skipped (--no-verify-data / load_stl10(..., verify=False)), so the file is "
                 "taken as your own: write it again in the release's format (uint8, 3x96x96 column-major per "
                 "channel; labels 1..10).")


def _fix(verify: bool) -> str:
    return _how_to_get() if verify else OWN_FILE_HINT


def decode_images(blob: bytes, path, verify: bool = True) -> torch.Tensor:
    """``uint8 [N, 3, 96, 96]`` (row-major, upright) from the bytes of an ``*_X.bin`` file."""
    if len(blob) == 0 or len(blob) % IMAGE_BYTES:
        raise DatasetCorruptError(TITLE, path, f"{len(blob)} bytes is not a whole number of 3x96x96 uint8 images",
                                  _fix(verify))
    # each channel is stored column-major: the bytes read as [N, C, W, H]
    images = np.frombuffer(blob, dtype=np.uint8).reshape(-1, 3, SIZE, SIZE).transpose(0, 1, 3, 2)
    return torch.from_numpy(np.ascontiguousarray(images))


def decode_labels(blob: bytes, path, verify: bool = True) -> torch.Tensor:
    """``int64 [N]`` labels 0..9 from the bytes of a ``*_y.bin`` file (stored as 1..10)."""
    labels = np.frombuffer(blob, dtype=np.uint8).astype(np.int64)
    if labels.size == 0 or labels.min() < 1 or labels.max() > CLASSES:
        found = "no labels" if labels.size == 0 else f"labels in {labels.min()}..{labels.max()}"
        raise DatasetCorruptError(TITLE, path, f"{found}, expected 1..{CLASSES}", _fix(verify))
    return torch.from_numpy(labels - 1)


def _read_file(root: Path, name: str, verify: bool) -> tuple[bytes, str]:
    path = root / FOLDER / name
    if not path.is_file():
        raise DatasetNotFoundError(TITLE, f"{FOLDER}/{name}", root.resolve(), _how_to_get())
    if verify:
        verify_file(path, MEMBER_MD5[name], TITLE, "md5", f"{_how_to_get()} {VARIANT_HINT}")
    return path.read_bytes(), str(path)


#: What reading the tarball may raise: each becomes a one-line DatasetCorruptError naming the member.
_ARCHIVE_ERRORS = (tarfile.TarError, KeyError, EOFError, OSError, AttributeError)


def _archive_reader(archive: Path, verify: bool):
    """``read(name) -> (bytes, where)`` for the members of ``archive``, all read in one pass through it.

    Asking the tarball for each member by name would scan and decompress the whole 2.6 GB gzip stream
    once to find it and again to read it. The errors stay those of reading each member by name: a failure
    to open or scan the archive is reported for the first member asked for, a member that is missing or not
    a regular file for that member, when it is asked for (after the members before it were decoded).
    """
    wanted = {f"{FOLDER}/{name}" for name in MEMBER_MD5}
    found: dict[str, bytes | Exception] = {}
    failure = None
    try:
        with tarfile.open(archive, "r:*") as tar:
            # members in archive order, each read right after its header: the stream is never rewound
            for member in tar:
                if member.name in wanted:
                    try:  # a later member of the same name replaces it, as in TarFile.getmember
                        found[member.name] = tar.extractfile(member).read()
                    except (KeyError, AttributeError) as error:  # a link to nothing, or not a regular file
                        found[member.name] = error
    except _ARCHIVE_ERRORS as error:
        failure = error

    def read(name: str) -> tuple[bytes, str]:
        member = f"{FOLDER}/{name}"
        # popped: each member's bytes are freed once decoded
        content = found.pop(member, KeyError(f"filename {member!r} not found"))  # TarFile.getmember's message
        if failure is not None or isinstance(content, Exception):
            error = failure or content
            raise DatasetCorruptError(TITLE, archive, f"cannot read {member}: {error}", _fix(verify)) from error
        return content, f"{archive}:{member}"

    return read


def _read_split(read, split: str, verify: bool) -> tuple[torch.Tensor, torch.Tensor]:
    images = decode_images(*read(f"{split}_X.bin"), verify)
    blob, path = read(f"{split}_y.bin")
    labels = decode_labels(blob, path, verify)
    if labels.shape[0] != images.shape[0]:
        raise DatasetCorruptError(TITLE, path, f"{labels.shape[0]} labels for {images.shape[0]} images",
                                  _fix(verify))
    return images, labels


def load_stl10(root: str | Path = "data", *, download_missing: bool = False, verify: bool = True, seed: int = 42,
               progress: bool = True, url: str | None = None) -> DataSplits:
    """STL-10 (96×96 RGB, 10 classes) as train / val / test splits from the binary release.

    Args:
        root: directory holding ``stl10_binary.tar.gz`` or its extracted ``stl10_binary/`` folder.
        download_missing: download the tarball (2.6 GB, md5-checked, progress bar) if neither is in ``root``.
        verify: check the md5 of the files found (the tarball, or each file read from the extracted folder)
            against the official ones; a mismatch raises :class:`DatasetCorruptError`. ``False``
            (``--no-verify-data``) reads your own files in the same format.
        seed: seed of the 4,500 / 500 train / validation split.
        url: override the download address (mirrors, tests).

    Raises :class:`DatasetNotFoundError` naming the missing file and :data:`URL`, and
    :class:`DatasetCorruptError` for a wrong checksum, a size that is not whole images, labels outside
    1..10 or label and image counts that differ.
    """
    root = Path(root)
    if not isinstance(verify, bool):
        raise TypeError(f"verify must be True or False, got {verify!r}")
    archive = root / ARCHIVE
    if not (root / FOLDER).is_dir():
        if not archive.is_file():
            if not download_missing:
                raise DatasetNotFoundError(TITLE, ARCHIVE, root.resolve(), _how_to_get())
            download(url or URL, archive, dataset=TITLE, md5=ARCHIVE_MD5, progress=progress)
        elif verify:
            verify_file(archive, ARCHIVE_MD5, TITLE, "md5", f"{_how_to_get()} {VARIANT_HINT}")
    read = partial(_read_file, root, verify=verify) if (root / FOLDER).is_dir() else _archive_reader(archive, verify)
    train_x, train_y = _read_split(read, "train", verify)
    test_x, test_y = _read_split(read, "test", verify)
    full = ImageDataset(train_x, train_y, IMAGENET_MEAN, IMAGENET_STD)
    train_idx, val_idx = split_indices(len(full), val_size_for(len(full), OFFICIAL_TRAIN, OFFICIAL_VAL), seed)
    return DataSplits("stl10", full.subset(train_idx), full.subset(val_idx),
                      ImageDataset(test_x, test_y, IMAGENET_MEAN, IMAGENET_STD),
                      num_classes=CLASSES, in_channels=3, image_size=SIZE)
