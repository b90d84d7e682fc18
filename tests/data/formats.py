"""Write tiny dataset files in the real on-disk formats (for loader, training and example tests)."""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np


def _tar_add(tar: tarfile.TarFile, name: str, blob: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(blob)
    tar.addfile(info, io.BytesIO(blob))


def cifar_arrays(n: int, classes: int, seed: int) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8), [int(v) for v in rng.integers(0, classes, n)]


def write_cifar10(root: Path, per_batch: int = 4, test: int = 6, extract: bool = False) -> Path:
    """``cifar-10-python.tar.gz`` with 5 data batches of ``per_batch`` images and a test batch."""
    root.mkdir(parents=True, exist_ok=True)
    batches = {f"data_batch_{i}": cifar_arrays(per_batch, 10, i) for i in range(1, 6)}
    batches["test_batch"] = cifar_arrays(test, 10, 99)
    blobs = {name: pickle.dumps({b"data": x, b"labels": y, b"batch_label": name.encode()})
             for name, (x, y) in batches.items()}
    if extract:
        folder = root / "cifar-10-batches-py"
        folder.mkdir(exist_ok=True)
        for name, blob in blobs.items():
            (folder / name).write_bytes(blob)
        return folder
    path = root / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, blob in blobs.items():
            _tar_add(tar, f"cifar-10-batches-py/{name}", blob)
    return path


def write_cifar100(root: Path, train: int = 20, test: int = 5) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "cifar-100-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, n, seed in (("train", train, 1), ("test", test, 2)):
            x, y = cifar_arrays(n, 100, seed)
            _tar_add(tar, f"cifar-100-python/{name}", pickle.dumps({b"data": x, b"fine_labels": y,
                                                                    b"coarse_labels": [0] * n}))
    return path


def amat_text(n: int, seed: int) -> tuple[str, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pixels = rng.random((n, 784)).astype(np.float32)
    pixels[0, 0] = 1.0  # the ×256 overflow case
    labels = rng.integers(0, 10, n)
    lines = [" ".join(f"{v:.6f}" for v in row) + f" {float(label):.1f}" for row, label in zip(pixels, labels)]
    return "\n".join(lines) + "\n", pixels, labels


def write_rotmnist(root: Path, train: int = 12, test: int = 5) -> tuple[Path, dict]:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "mnist_rotation_new.zip"
    arrays = {}
    with zipfile.ZipFile(path, "w") as z:
        for name, n, seed in (("mnist_all_rotation_normalized_float_train_valid.amat", train, 1),
                              ("mnist_all_rotation_normalized_float_test.amat", test, 2)):
            text, pixels, labels = amat_text(n, seed)
            z.writestr(name, text)
            arrays[name] = (pixels, labels)
    return path, arrays


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist_idx(root: Path, train_labels, test_labels, gz: bool = True, seed: int = 0) -> dict:
    """The four MNIST idx files with random images and the given labels."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    for prefix, labels in (("train", train_labels), ("t10k", test_labels)):
        labels = np.asarray(labels, dtype=np.uint8)
        images = rng.integers(0, 256, size=(len(labels), 28, 28), dtype=np.uint8)
        for kind, array in (("images-idx3-ubyte", images), ("labels-idx1-ubyte", labels)):
            blob = idx_bytes(array)
            name = f"{prefix}-{kind}"
            if gz:
                (root / f"{name}.gz").write_bytes(gzip.compress(blob))
            else:
                (root / name).write_bytes(blob)
        out[prefix] = (images, labels)
    return out


def write_pcam(root: Path, sizes=None) -> dict:
    import h5py

    root.mkdir(parents=True, exist_ok=True)
    sizes = sizes or {"train": 6, "valid": 3, "test": 4}
    rng = np.random.default_rng(0)
    out = {}
    for split, n in sizes.items():
        x = rng.integers(0, 256, size=(n, 96, 96, 3), dtype=np.uint8)
        y = rng.integers(0, 2, size=(n, 1, 1, 1), dtype=np.uint8)
        with h5py.File(root / f"camelyonpatch_level_2_split_{split}_x.h5", "w") as f:
            f["x"] = x
        with h5py.File(root / f"camelyonpatch_level_2_split_{split}_y.h5", "w") as f:
            f["y"] = y
        out[split] = (x, y)
    return out
