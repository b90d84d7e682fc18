"""STL-10 from its tarball: the four files come out of one pass through the archive (the real one is
2.6 GB of gzip; reading each member by name decompresses it again and again)."""

import builtins
import io
import tarfile

import pytest
import torch

from pgcnn_triton.data import DatasetCorruptError, load_stl10
from tests.data.test_stl10 import write_stl10


def test_tarball_is_opened_once_per_load(tmp_path, monkeypatch):
    write_stl10(tmp_path, tarball=True)
    opens, real_open = [], tarfile.open
    monkeypatch.setattr(tarfile, "open", lambda *a, **k: opens.append(a) or real_open(*a, **k))
    load_stl10(tmp_path, verify=False)
    assert len(opens) == 1


def test_tarball_bytes_are_read_once(tmp_path, monkeypatch):
    write_stl10(tmp_path, tarball=True)
    archive = tmp_path / "stl10_binary.tar.gz"
    counted, real_open = [0], builtins.open

    class Counting(io.FileIO):
        def readinto(self, buffer):
            n = super().readinto(buffer)
            counted[0] += n or 0
            return n

    def counting_open(file, mode="r", *args, **kwargs):
        if str(file) == str(archive) and mode == "rb":
            return io.BufferedReader(Counting(file, "rb"))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    data = load_stl10(tmp_path, verify=False)
    monkeypatch.undo()
    assert 0 < counted[0] <= archive.stat().st_size  # never rewound and decompressed again
    assert torch.equal(data.test.images, load_stl10(tmp_path, verify=False).test.images)


def test_missing_member_in_the_tarball_names_it(tmp_path):
    write_stl10(tmp_path, tarball=True)
    archive = tmp_path / "stl10_binary.tar.gz"
    with tarfile.open(archive) as tar:
        kept = [(m, tar.extractfile(m).read()) for m in tar if not m.name.endswith("test_y.bin")]
    with tarfile.open(archive, "w:gz") as tar:
        for member, blob in kept:
            tar.addfile(member, io.BytesIO(blob))
    with pytest.raises(DatasetCorruptError) as info:
        load_stl10(tmp_path, verify=False)
    assert "cannot read stl10_binary/test_y.bin: \"filename 'stl10_binary/test_y.bin' not found\"" in str(info.value)
    assert "\n" not in str(info.value)
