"""Checkpoints are checked (sha256) and run files are written atomically: bit flips, empty / truncated /
foreign files, a full disk, leftovers of killed saves, file modes, no empty run directories."""

import errno
import os
import shutil
import stat

import pytest
import torch

from pgcnn_triton.training import (
    CheckpointCorruptError,
    Trainer,
    build_model,
    load_checkpoint,
    remove_stale_temps,
    save_atomic,
    write_atomic,
)
from pgcnn_triton.training.records import write_json, write_metrics_csv
from tests.training.tiny import tiny_config, tiny_data, tiny_spec

DATA_SPEC = {"name": "bundled-mnist6-180", "root": "data", "options": {"train": 8, "val": 4, "test": 4}}


def make_trainer(out_dir, **config):
    torch.manual_seed(0)
    spec = tiny_spec()
    return Trainer(build_model(spec), tiny_data(), tiny_config(**config), out_dir, model_spec=spec,
                   data_spec=DATA_SPEC)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A one-epoch run directory (last.pt, best.pt, metrics.csv, summary.json, plots); copy before changing it."""
    out = tmp_path_factory.mktemp("run") / "run"
    old = os.umask(0o022)
    try:
        make_trainer(out, epochs=1).fit()
    finally:
        os.umask(old)
    return out


def copy_run(finished_run, tmp_path):
    return shutil.copytree(finished_run, tmp_path / "run")


def flip(path, offset, bit=0):
    blob = bytearray(path.read_bytes())
    blob[offset] ^= 1 << bit
    path.write_bytes(bytes(blob))


def test_every_single_bit_flip_is_detected_or_harmless(tmp_path):
    weights = torch.arange(64, dtype=torch.float32)
    path = tmp_path / "c.pt"
    save_atomic({"w": weights, "epoch": 3}, path)
    good = path.read_bytes()
    data_at = good.find(weights.numpy().tobytes())
    assert data_at > 0
    mark_at = good.rfind(b"pgcnn_triton-sha256:")
    harmless = 0
    offsets = range(0, len(good), 11)  # every region of the file: zip headers, pickle, tensor data, trailer
    for offset in offsets:
        path.write_bytes(good)
        flip(path, offset, bit=offset % 8)
        if mark_at <= offset < mark_at + 20:
            # a damaged mark only hides the checksum: the payload is intact, it loads with a warning
            with pytest.warns(UserWarning, match="no checksum"):
                state = load_checkpoint(path)
            assert torch.equal(state["w"], weights) and state["epoch"] == 3
            harmless += 1
            continue
        with pytest.raises(CheckpointCorruptError) as info:
            load_checkpoint(path)
        assert info.value.path == str(path) and "\n" not in str(info.value)
    assert harmless == sum(mark_at <= o < mark_at + 20 for o in offsets) < 3
    # the tensor bytes themselves are covered (every bit of one float)
    for bit in range(8):
        path.write_bytes(good)
        flip(path, data_at + 4 * 10 + 2, bit)
        with pytest.raises(CheckpointCorruptError, match="checksum mismatch"):
            load_checkpoint(path)


def test_bit_flip_in_trainer_checkpoint_refuses_resume_and_names_best(finished_run, tmp_path):
    run = copy_run(finished_run, tmp_path)
    blob = (run / "last.pt").read_bytes()
    flip(run / "last.pt", len(blob) // 2, bit=3)
    with pytest.raises(CheckpointCorruptError) as info:
        make_trainer(run, epochs=2).resume()
    message = str(info.value)
    assert "\n" not in message and str(run / "last.pt") in message and "checksum" in message
    assert str(run / "best.pt") in message, "the alternative to a corrupt last.pt is named"


class NotAllowed:  # torch.save pickles it; weights_only=True must refuse it
    pass


@pytest.mark.parametrize("content, problem", [
    (b"", "empty"),
    ("truncated", "truncated"),
    (b"epoch=3\nthis is a text file\n", "not a torch checkpoint"),
    ("foreign object", "weights_only"),
])
def test_unreadable_checkpoints_are_one_line_errors_naming_the_file(finished_run, tmp_path, content, problem):
    run = copy_run(finished_run, tmp_path)
    path = run / "last.pt"
    if content == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    elif content == "foreign object":
        torch.save({"thing": NotAllowed()}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointCorruptError, match=problem) as info:
        load_checkpoint(path)
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)
    assert str(path) in str(info.value) and str(run / "best.pt") in str(info.value)


def test_best_pt_corrupt_names_last_pt(finished_run, tmp_path):
    run = copy_run(finished_run, tmp_path)
    flip(run / "best.pt", 100)
    with pytest.raises(CheckpointCorruptError, match="last.pt holds the weights"):
        load_checkpoint(run / "best.pt")


def test_checkpoint_without_checksum_loads_with_a_warning(tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "old.pt")
    with pytest.warns(UserWarning, match="no checksum"):
        assert torch.equal(load_checkpoint(tmp_path / "old.pt")["w"], torch.ones(2))


def test_checked_checkpoint_is_still_a_plain_torch_file(finished_run):
    state = torch.load(finished_run / "last.pt", weights_only=True)
    assert state["epoch"] == 1 and "model" in state


@pytest.fixture
def full_disk(monkeypatch):
    """Writes to the atomic writer's temporary files fail with ENOSPC (other writes go through)."""
    real_write = os.write

    def write(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".tmp"):
            real_write(fd, bytes(data)[: len(data) // 2])  # part of it lands, as on a real full disk
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)


def snapshot(directory):
    return {p.name: p.read_bytes() for p in directory.iterdir()}


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to tell the temporary files apart")
def test_full_disk_during_training_keeps_every_previous_file(finished_run, tmp_path, monkeypatch, request):
    run = copy_run(finished_run, tmp_path)
    trainer = make_trainer(run, epochs=2)
    trainer.resume()
    before = snapshot(run)
    request.getfixturevalue("full_disk")
    with pytest.raises(OSError) as info:
        trainer.fit()
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC and str(run) in str(info.value) and "unchanged" in str(info.value)
    assert snapshot(run) == before, "a full disk must change no file and leave no temporary file"
    assert load_checkpoint(run / "last.pt")["epoch"] == 1


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to tell the temporary files apart")
def test_full_disk_for_metrics_and_json(tmp_path, full_disk):
    csv_path, json_path = tmp_path / "metrics.csv", tmp_path / "summary.json"
    csv_path.write_text("epoch\n1\n")
    json_path.write_text("{}\n")
    with pytest.raises(OSError, match="metrics.csv was not written"):
        write_metrics_csv([{"epoch": 1}, {"epoch": 2}], csv_path)
    with pytest.raises(OSError, match="summary.json was not written"):
        write_json({"a": 1}, json_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv", "summary.json"]
    assert csv_path.read_text() == "epoch\n1\n" and json_path.read_text() == "{}\n"


def test_resume_removes_leftover_temporary_files_only(finished_run, tmp_path):
    run = copy_run(finished_run, tmp_path)
    leftovers = [run / ".last.pt.4242.0a1b2c3d.tmp", run / ".best.pt.4242.deadbeef.tmp", run / ".metrics.csv.tmp"]
    for path in leftovers:
        path.write_bytes(b"half a save")
    (run / "notes.txt").write_text("mine")
    make_trainer(run, epochs=2).resume()
    assert not any(p.exists() for p in leftovers)
    assert (run / "notes.txt").read_text() == "mine" and (run / "last.pt").is_file()
    assert remove_stale_temps(tmp_path / "missing") == []


def test_every_artefact_has_the_same_mode(finished_run):
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in finished_run.iterdir()}
    assert {"last.pt", "best.pt", "metrics.csv", "summary.json", "curves.png"} <= set(modes)
    assert set(modes.values()) == {0o644}, modes


def test_temporary_names_are_unique(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def replace(src, dst):
        seen.append(os.path.basename(src))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    for i in range(3):
        write_atomic(tmp_path / "summary.json", f"{i}")
    assert len(set(seen)) == 3 and all(n.startswith(".summary.json.") and n.endswith(".tmp") for n in seen)
    assert (tmp_path / "summary.json").read_text() == "2"


def test_run_that_dies_before_its_first_epoch_leaves_no_directory(tmp_path):
    out = tmp_path / "runs" / "never"
    trainer = make_trainer(out, epochs=1)

    def killed(x):
        raise KeyboardInterrupt

    trainer.model.forward_once = killed
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    assert not out.exists()
