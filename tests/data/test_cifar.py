import pytest
import torch

from pgcnn_triton.data import (
    DatasetCorruptError,
    DatasetNotFoundError,
    file_digest,
    load_cifar,
    load_dataset,
)
from pgcnn_triton.data.cifar import CIFAR_SPECS, IMAGENET_MEAN, IMAGENET_STD
from tests.data.formats import write_cifar10, write_cifar100


def test_cifar10_tarball_splits_and_normalisation(tmp_path):
    write_cifar10(tmp_path, per_batch=4, test=6)
    data = load_cifar("cifar10", tmp_path, verify=False)  # fake files: not the official md5s
    # 20 training images: the official 45k/5k proportion gives 18 / 2
    assert data.sizes() == {"train": 18, "val": 2, "test": 6}
    assert (data.num_classes, data.in_channels, data.image_size) == (10, 3, 32)
    x, y = data.test[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and isinstance(y, int)
    raw = data.test.images[0].float() / 255
    expected = (raw - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None, None]
    assert torch.allclose(x, expected)


def test_cifar10_split_is_seeded_and_disjoint(tmp_path):
    write_cifar10(tmp_path)
    a, b, c = (load_cifar("cifar10", tmp_path, verify=False, seed=s) for s in (42, 42, 1))
    assert torch.equal(a.val.images, b.val.images)
    assert not torch.equal(a.val.images, c.val.images)
    train = {bytes(im.numpy()) for im in a.train.images}
    assert not train & {bytes(im.numpy()) for im in a.val.images}


def test_cifar10_extracted_folder_equals_tarball(tmp_path):
    write_cifar10(tmp_path / "tar")
    write_cifar10(tmp_path / "dir", extract=True)
    a, b = load_cifar("cifar10", tmp_path / "tar", verify=False), load_cifar("cifar10", tmp_path / "dir", verify=False)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.test.labels, b.test.labels)


def test_cifar100_fine_labels(tmp_path):
    write_cifar100(tmp_path, train=20, test=5)
    data = load_dataset("cifar100", tmp_path, verify=False)
    assert data.num_classes == 100 and data.sizes() == {"train": 18, "val": 2, "test": 5}


def test_missing_cifar_names_file_place_and_download(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_cifar("cifar10", tmp_path)
    message = str(info.value)
    assert "cifar-10-python.tar.gz" in message and str(tmp_path) in message and "download" in message.lower()


def test_corrupt_tarball(tmp_path):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"not a tarball at all")
    with pytest.raises(DatasetCorruptError, match="cifar-10-python.tar.gz"):
        load_cifar("cifar10", tmp_path, verify=False)


def test_verify_rejects_wrong_checksum(tmp_path):
    write_cifar10(tmp_path)
    with pytest.raises(DatasetCorruptError, match="md5"):
        load_cifar("cifar10", tmp_path)  # verified by default, not only after a download


def test_download_checks_md5_and_keeps_nothing_on_failure(tmp_path, monkeypatch):
    source = write_cifar10(tmp_path / "mirror")
    url = source.resolve().as_uri()
    target = tmp_path / "data"
    with pytest.raises(DatasetCorruptError, match="checksum"):
        load_cifar("cifar10", target, download_missing=True, url=url, progress=False)
    assert not list(target.glob("*")), "a failed download must leave no file behind"
    monkeypatch.setitem(CIFAR_SPECS["cifar10"], "md5", file_digest(source, "md5"))
    data = load_cifar("cifar10", target, download_missing=True, url=url, progress=False)
    assert (target / "cifar-10-python.tar.gz").is_file() and len(data.test) == 6


def test_bad_name():
    with pytest.raises(ValueError, match="name"):
        load_cifar("cifar11")


def test_file_digest_algorithms(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    assert file_digest(p, "md5") == "900150983cd24fb0d6963f7d28e17f72"
    assert file_digest(p, "sha256").startswith("ba7816bf")
    with pytest.raises(ValueError, match="algorithm"):
        file_digest(p, "crc32")
