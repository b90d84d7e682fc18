"""STL-10 binary release: tiny files in the real layout (uint8, 3×96×96 per image, each channel column-major;
labels 1..10) load to the right pixels, orientation and labels 0..9; every mistake is a one-line error."""

import argparse
import io
import tarfile

import numpy as np
import pytest
import torch

from pgcnn_triton.data import DatasetCorruptError, DatasetNotFoundError, load_dataset, load_stl10
from pgcnn_triton.data.stl10 import URL
from pgcnn_triton.training.args import add_train_arguments, model_spec_from_args

SIDE = 96


def stl_bytes(marks):
    """The bytes of an ``*_X.bin``: for image n, the pixel (channel c, row y, column x) is byte
    ``n·27648 + c·9216 + x·96 + y`` (column-major per channel, as the release's MATLAB writer)."""
    blob = bytearray(len(marks) * 3 * SIDE * SIDE)
    for n, (c, y, x, value) in enumerate(marks):
        blob[n * 3 * SIDE * SIDE + c * SIDE * SIDE + x * SIDE + y] = value
    return bytes(blob)


def marks_for(count, seed):
    rng = np.random.default_rng(seed)
    return [(int(rng.integers(3)), int(rng.integers(SIDE)), int(rng.integers(SIDE)), int(rng.integers(1, 256)))
            for _ in range(count)]


def write_stl10(root, train=10, test=4, tarball=False, files=None):
    """Write the four files under ``root/stl10_binary`` (or as ``root/stl10_binary.tar.gz``); return the marks
    and labels (1..10) written."""
    written = {"train": (marks_for(train, 1), [1 + i % 10 for i in range(train)]),
               "test": (marks_for(test, 2), [10 - i % 10 for i in range(test)])}
    blobs = {}
    for split, (marks, labels) in written.items():
        blobs[f"{split}_X.bin"] = stl_bytes(marks)
        blobs[f"{split}_y.bin"] = bytes(labels)
    blobs.update(files or {})
    root.mkdir(parents=True, exist_ok=True)
    if tarball:
        with tarfile.open(root / "stl10_binary.tar.gz", "w:gz") as tar:
            for name, blob in blobs.items():
                info = tarfile.TarInfo(f"stl10_binary/{name}")
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
    else:
        (root / "stl10_binary").mkdir(exist_ok=True)
        for name, blob in blobs.items():
            (root / "stl10_binary" / name).write_bytes(blob)
    return written


def test_real_layout_loads_upright_pixels_and_labels_0_to_9(tmp_path):
    written = write_stl10(tmp_path)
    data = load_stl10(tmp_path, verify=False)  # hand-made files: not the official md5s
    assert (data.num_classes, data.in_channels, data.image_size) == (10, 3, 96)
    assert data.sizes() == {"train": 9, "val": 1, "test": 4}  # the official 4,500 / 500 proportion
    for split, dataset in (("test", data.test),):
        marks, labels = written[split]
        assert dataset.images.dtype == torch.uint8 and dataset.images.shape == (4, 3, 96, 96)
        for n, (c, y, x, value) in enumerate(marks):
            image = dataset.images[n]
            assert image[c, y, x] == value and int(image.sum()) == value  # one lit pixel, at (row y, column x)
        assert dataset.labels.tolist() == [label - 1 for label in labels]
    # train + val together hold every training image once, labels 0..9
    both = torch.cat([data.train.labels, data.val.labels]).sort().values
    assert both.tolist() == sorted(label - 1 for label in written["train"][1])
    x, y = data.test[0]
    assert x.shape == (3, 96, 96) and x.dtype == torch.float32 and y == 9


def test_orientation_is_not_transposed(tmp_path):
    # an image with its top row lit: a reader that forgets the column-major order would light the left column
    blob = bytearray(3 * SIDE * SIDE)
    for c in range(3):
        for x in range(SIDE):
            blob[c * SIDE * SIDE + x * SIDE + 0] = 200  # row y = 0 of every column x
    root = tmp_path
    write_stl10(root, train=2, test=1, files={"test_X.bin": bytes(blob), "test_y.bin": bytes([3])})
    image = load_stl10(root, verify=False).test.images[0]
    assert bool((image[:, 0, :] == 200).all()) and int(image[:, 1:, :].sum()) == 0


def test_tarball_equals_folder_and_load_dataset_dispatches(tmp_path):
    write_stl10(tmp_path / "dir")
    write_stl10(tmp_path / "tar", tarball=True)
    a = load_dataset("stl10", tmp_path / "dir", verify=False)
    b = load_dataset("stl10", tmp_path / "tar", verify=False)
    assert torch.equal(a.test.images, b.test.images) and torch.equal(a.train.labels, b.train.labels)


def one_line(error):
    return "\n" not in str(error)


def test_missing_files_name_the_file_and_the_url(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_stl10(tmp_path)
    assert "stl10_binary.tar.gz" in str(info.value) and URL in str(info.value) and one_line(info.value)
    write_stl10(tmp_path)
    (tmp_path / "stl10_binary" / "test_y.bin").unlink()
    with pytest.raises(DatasetNotFoundError, match="stl10_binary/test_y.bin"):
        load_stl10(tmp_path, verify=False)


@pytest.mark.parametrize("name, blob, problem", [
    ("train_X.bin", b"\x00" * 1000, "not a whole number of 3x96x96 uint8 images"),
    ("train_y.bin", bytes([0] * 10), r"labels in 0\.\.0, expected 1\.\.10"),
    ("train_y.bin", bytes([11] * 10), r"labels in 11\.\.11, expected 1\.\.10"),
    ("test_y.bin", bytes([1] * 5), "5 labels for 4 images"),
])
def test_bad_files_are_one_line_errors(tmp_path, name, blob, problem):
    write_stl10(tmp_path, files={name: blob})
    with pytest.raises(DatasetCorruptError, match=problem) as info:
        load_stl10(tmp_path, verify=False)
    assert name in str(info.value) and one_line(info.value)
    # read without the md5 check the files are the user's own: no advice to download the release again
    assert "Download" not in str(info.value) and "write it again" in str(info.value)


def test_md5_checked_unless_told_not_to(tmp_path):
    write_stl10(tmp_path / "dir")
    with pytest.raises(DatasetCorruptError, match=r"train_X\.bin is corrupt \(md5 .*--no-verify-data") as info:
        load_stl10(tmp_path / "dir")
    assert one_line(info.value)
    write_stl10(tmp_path / "tar", tarball=True)
    with pytest.raises(DatasetCorruptError, match=r"stl10_binary\.tar\.gz is corrupt \(md5"):
        load_stl10(tmp_path / "tar")


def test_cli_model_for_stl10_pools_after_the_lifting_layer():
    # no official STL-10 command: the CIFAR-10 presets, with the 96×96 pooling of the original's STL-10 runs
    parser = add_train_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--dataset", "stl10", "--group", "e2", "--num-elements", "16"])
    spec = model_spec_from_args(args, in_channels=3, num_classes=10, image_size=96)
    assert spec["preset"] == "cifar10-e2-partial"
    assert spec["overrides"]["pool_blocks"] == (0, 1, 2) and spec["overrides"]["num_elements"] == 16
