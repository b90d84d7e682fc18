import random

import numpy as np
import pytest
import torch

from pgcnn_triton.training import load_checkpoint, rng_state, save_atomic, set_rng_state


def test_crash_mid_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_atomic({"epoch": 1, "w": torch.ones(3)}, path)

    def crashing_save(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(torch, "save", crashing_save)
    with pytest.raises(KeyboardInterrupt):
        save_atomic({"epoch": 2, "w": torch.zeros(3)}, path)
    monkeypatch.undo()
    state = load_checkpoint(path)
    assert state["epoch"] == 1 and torch.equal(state["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"], "no temporary file may be left behind"


def test_save_replaces_and_loads(tmp_path):
    path = tmp_path / "sub" / "c.pt"
    save_atomic({"a": 1}, path)
    save_atomic({"a": 2}, path)
    assert load_checkpoint(path) == {"a": 2}
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_rng_state_round_trip_through_a_checkpoint(tmp_path):
    state = rng_state()
    expected = (random.random(), float(np.random.rand()), float(torch.rand(())))
    save_atomic({"rng": state}, tmp_path / "r.pt")
    random.random(), np.random.rand(), torch.rand(())
    set_rng_state(load_checkpoint(tmp_path / "r.pt")["rng"])
    assert (random.random(), float(np.random.rand()), float(torch.rand(()))) == expected
