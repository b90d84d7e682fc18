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
from .errors import DatasetCorruptError, DatasetFormatError, DatasetNotFoundError
from .files import download, verify_file
from .safe_pickle import ForbiddenGlobalError, restricted_loads

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


#: Added to an unreadable file read without the md5 check: it is taken as the user's own, so no download advice.
OWN_FILE_HINT = ("The md5 check was skipped (--no-verify-data / load_cifar(..., verify=False)), so the file is taken "
                 "as your own: write it again")


def _reason(error: Exception) -> str:
    """A read error on one line (tarfile lists each compression it tried on a line of its own)."""
    if isinstance(error, tarfile.ReadError) and "could not be opened" in str(error):
        return "not a gzip, bzip2, xz or plain tar file"
    return " ".join(str(error).split())


def _truncated(error: Exception) -> bool:
    """Whether a read error means the data ends early (pickle, gzip and tar say it differently)."""
    text = _reason(error).lower()
    return isinstance(error, EOFError) or any(word in text for word in ("truncated", "ended before", "end of data",
                                                                        "ran out of input", "unexpected end"))


def _unreadable_own_file(spec, path, size: int, error: Exception, kind: str, expected: str) -> DatasetFormatError:
    """The error for a file read without the md5 check that cannot be read as a ``kind`` (``"pickle"``,
    ``"tar archive"``): its size, truncated or unreadable, what it should hold; no download advice."""
    if _truncated(error):
        found, fix = f"{size:,} bytes, truncated: they end inside the {kind} ({_reason(error)})", f"{OWN_FILE_HINT} in full."
    else:
        found, fix = f"{size:,} bytes that are not a readable {kind} ({_reason(error)})", f"{OWN_FILE_HINT}."
    return DatasetFormatError(spec["title"], path, found, expected, fix)


#: What a batch file is, stated when one cannot be read.
EXPECTED_BATCH = ("a complete pickle of a dict with b'data' (3,072 bytes per image: an official 10,000-image batch "
                  "is about 31 MB) and b'{labels}'")


def _unpickle(blob: bytes, path, spec, verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    try:
        # never pickle.loads: a batch file could name os.system; only arrays, containers and strings load
        entry = restricted_loads(blob, encoding="bytes")
    except Exception as error:  # any decoding problem is a corrupt file
        if not verify and not isinstance(error, ForbiddenGlobalError):
            raise _unreadable_own_file(spec, path, len(blob), error, "pickle",
                                       EXPECTED_BATCH.format(labels=spec["label_key"])) from error
        raise DatasetCorruptError(spec["title"], path, f"cannot read a CIFAR batch: {error}", _how_to_get(spec)) from error
    keys = (b"data", spec["label_key"].encode())
    if not isinstance(entry, dict) or any(key not in entry for key in keys):
        found = (f"a dict with keys {sorted(entry)}" if isinstance(entry, dict) else f"a {type(entry).__name__}")
        raise DatasetFormatError(spec["title"], path, found, f"a dict with the keys {keys[0]!r} and {keys[1]!r}")
    data, labels = entry[keys[0]], entry[keys[1]]
    images = check_images(data, path, spec["title"])
    return images, check_labels(labels, images.shape[0], spec["classes"], path, spec["title"])


#: What a batch's ``data`` must be (the official layout); stated in every refusal.
EXPECTED_IMAGES = ("a uint8 array of shape (N, 3072) (each row: the 1024 red, then green, then blue values of a "
                   "32x32 image, row-major) or (N, 3, 32, 32) (NCHW), values 0..255")


def _describe(array) -> str:
    if not isinstance(array, np.ndarray):
        return f"a {type(array).__name__}"
    text = f"{'an' if str(array.dtype)[0] in 'aeiou' else 'a'} {array.dtype} array of shape {array.shape}"
    if array.size and np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        text += ", non-finite values (NaN or inf)"
    elif array.size and (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        low, high = array.min(), array.max()
        text += f", values {low:g}..{high:g}" if np.issubdtype(array.dtype, np.floating) else f", values {low}..{high}"
    return text


def check_images(data, path, title: str = "CIFAR") -> np.ndarray:
    """The images of a CIFAR batch as ``uint8 [N, 3, 32, 32]``, or :class:`DatasetFormatError` naming ``path``.

    Taken as they are: ``uint8`` ``(N, 3072)`` (the official layout: per image the 1024 red, green, blue
    values, each a 32x32 row-major plane) or ``uint8`` ``(N, 3, 32, 32)`` (NCHW). Everything else is refused,
    never cast: floats (also in [0, 1]), other integer types, NHWC ``(N, 32, 32, 3)`` (the message says how to
    convert each), an empty batch.
    """
    # described only for a refusal: min / max of a whole valid batch on every load is wasted work
    if not isinstance(data, np.ndarray):
        raise DatasetFormatError(title, path, _describe(data), EXPECTED_IMAGES, "Store the images as a numpy array.")
    if data.dtype != np.uint8:
        if np.issubdtype(data.dtype, np.floating) and data.size and 0 <= data.min() and data.max() <= 1:
            fix = "Floats in [0, 1]: store (x * 255).round().astype(np.uint8)."
        elif np.issubdtype(data.dtype, np.integer) and data.size and 0 <= data.min() and data.max() <= 255:
            fix = "Store x.astype(np.uint8) (every value fits)."
        else:
            fix = "Scale the values to 0..255 and store them as uint8."
        raise DatasetFormatError(title, path, _describe(data), EXPECTED_IMAGES, fix)
    if data.ndim == 4 and data.shape[1:] == (32, 32, 3):
        raise DatasetFormatError(title, path, _describe(data) + " (NHWC)", EXPECTED_IMAGES,
                                 "Convert NHWC with x.transpose(0, 3, 1, 2) (or .reshape(N, 3072) after it).")
    if data.ndim == 2 and data.shape[1] == 3072:
        data = data.reshape(-1, 3, 32, 32)
    elif not (data.ndim == 4 and data.shape[1:] == (3, 32, 32)):
        raise DatasetFormatError(title, path, _describe(data), EXPECTED_IMAGES)
    if data.shape[0] == 0:
        raise DatasetFormatError(title, path, "no images", EXPECTED_IMAGES)
    return data


def check_labels(labels, count: int, classes: int, path, title: str = "CIFAR") -> np.ndarray:
    """``labels`` as ``int64 [count]``, or :class:`DatasetFormatError`: a list or 1-D array of ints in
    ``0..classes-1``, one per image (floats, bools, negative or too large values are refused)."""
    expected = f"{count} integer labels in 0..{classes - 1}, one per image"
    if isinstance(labels, (list, tuple)) and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                                 for v in labels):
        array = np.asarray(labels, dtype=np.int64) if labels else np.zeros(0, np.int64)
        found = f"{len(labels)} labels"
    elif isinstance(labels, np.ndarray) and labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer):
        array, found = labels.astype(np.int64), f"{labels.size} labels ({labels.dtype})"
    else:
        what = _describe(labels) if isinstance(labels, np.ndarray) else f"labels as a {type(labels).__name__}"
        if isinstance(labels, (list, tuple)):
            bad = next(v for v in labels if not isinstance(v, (int, np.integer)) or isinstance(v, bool))
            what = f"a non-integer label {bad!r}"
        raise DatasetFormatError(title, path, what, expected)
    if array.shape[0] != count:
        raise DatasetFormatError(title, path, f"{found} for {count} images", expected)
    if array.size and (array.min() < 0 or array.max() >= classes):
        bad = int(array.min()) if array.min() < 0 else int(array.max())
        raise DatasetFormatError(title, path, f"label {bad} (labels {array.min()}..{array.max()})", expected)
    return array


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
            parts.append(_unpickle(path.read_bytes(), path, spec, verify))
    else:
        try:
            with tarfile.open(archive, "r:*") as tar:
                for name in names:
                    member = tar.extractfile(f"{spec['folder']}/{name}")
                    parts.append(_unpickle(member.read(), f"{archive}:{spec['folder']}/{name}", spec, verify))
        except (tarfile.TarError, KeyError, EOFError, OSError) as error:
            expected = f"a (gzipped) tar archive holding {spec['folder']}/ with {', '.join(spec['train'] + spec['test'])}"
            if not verify and isinstance(error, KeyError):  # it reads: a member is missing
                raise DatasetFormatError(spec["title"], archive, f"a tar archive without {error}", expected,
                                         f"{OWN_FILE_HINT} with every file.") from error
            if not verify:
                raise _unreadable_own_file(spec, archive, archive.stat().st_size, error, "tar archive",
                                           expected) from error
            raise DatasetCorruptError(spec["title"], archive, f"cannot read the tarball: {_reason(error)}",
                                      _how_to_get(spec)) from error
    images = torch.from_numpy(np.concatenate([p[0] for p in parts]))
    labels = torch.from_numpy(np.concatenate([p[1] for p in parts]))
    return images, labels


def load_cifar(name: str = "cifar10", root: str | Path = "data", *, download_missing: bool = False,
               verify: bool = True, seed: int = 42, progress: bool = True, url: str | None = None) -> DataSplits:
    """CIFAR-10 (``name="cifar10"``) or CIFAR-100 (``"cifar100"``) as train / val / test splits.

    The batch files are read with a restricted unpickler (:mod:`.safe_pickle`): a file that would run
    code is refused with :class:`DatasetCorruptError` before anything of it runs.
    With or without ``verify``, each batch's content is checked, never cast: ``data`` must be ``uint8``
    ``(N, 3072)`` (the official layout) or ``uint8`` ``(N, 3, 32, 32)`` (NCHW); NHWC ``(N, 32, 32, 3)``,
    floats (also in [0, 1]) and other integer types are refused. Labels must be N integers in
    ``0..classes-1``. A file that breaks a rule raises :class:`~.errors.DatasetFormatError` naming it,
    what it holds, what is expected and how to convert it (:func:`check_images`, :func:`check_labels`).

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
