import csv
import json

import pytest
import torch

from pgcnn_triton.training import (
    NonFiniteLossError,
    TrainConfig,
    Trainer,
    build_model,
    load_checkpoint,
)
from tests.training.tiny import tiny_config, tiny_data, tiny_spec


def make_trainer(tmp_path, spec=None, **config):
    torch.manual_seed(0)
    spec = spec or tiny_spec()
    return Trainer(build_model(spec), tiny_data(), tiny_config(**config), tmp_path, model_spec=spec,
                   data_spec={"name": "bundled-mnist6-180", "root": "data",
                              "options": {"train": 8, "val": 4, "test": 4}})


def test_fit_writes_everything(tmp_path):
    summary = make_trainer(tmp_path, epochs=2).fit()
    for name in ("last.pt", "best.pt", "metrics.csv", "summary.json", "curves.png", "learned_equivariance.png"):
        assert (tmp_path / name).is_file(), name
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert {"train_loss", "val_acc", "lr", "theta/last_conv"} <= set(rows[0])
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["epochs_run"] == 2 and 0.0 <= saved["test_acc"] <= 1.0
    assert summary["best_epoch"] in (1, 2) and len(summary["learned_equivariance"]) == 6
    last = load_checkpoint(tmp_path / "last.pt")
    assert last["epoch"] == 2 and len(last["sampler_steps"]) == 6
    assert {"model", "optimizer", "scheduler", "rng", "best", "history", "model_spec"} <= set(last)


def test_resume_continues_exactly(tmp_path):
    straight = make_trainer(tmp_path / "a", epochs=3)
    straight.fit()
    first = make_trainer(tmp_path / "b", epochs=3)
    first.config.epochs = 1  # stop after one epoch, as if interrupted
    first.fit()
    resumed = make_trainer(tmp_path / "b", epochs=3)
    assert resumed.resume() == 2
    resumed.fit()
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed run must match an uninterrupted one bit for bit"
    ha, hb = straight.history, resumed.history
    assert [r["train_loss"] for r in ha] == [r["train_loss"] for r in hb]


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    trainer = make_trainer(tmp_path, epochs=3)
    trainer.config.epochs = 1
    trainer.fit()
    trainer.config.epochs = 3
    before = (tmp_path / "last.pt").read_bytes()
    original = trainer.model.forward_once
    trainer.model.forward_once = lambda x: original(x) * float("nan")
    with pytest.raises(NonFiniteLossError) as info:
        trainer.fit()
    message = str(info.value)
    assert "epoch 2" in message and "last.pt" in message and "end of epoch 1" in message
    assert (tmp_path / "last.pt").read_bytes() == before
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1


def test_non_finite_loss_in_first_epoch_says_no_checkpoint(tmp_path):
    trainer = make_trainer(tmp_path, epochs=1)
    trainer.model.forward_once = lambda x: torch.full((x.shape[0], 2), float("inf"))
    with pytest.raises(NonFiniteLossError, match="No checkpoint was written yet"):
        trainer.fit()
    assert not (tmp_path / "last.pt").exists()


def test_best_selection_ties_go_to_lower_loss_and_early_stopping(tmp_path, monkeypatch):
    trainer = make_trainer(tmp_path, epochs=6, patience=2)
    results = iter([(0.5, 0.9), (0.75, 0.8), (0.75, 0.7), (0.75, 0.7), (0.5, 0.1), (1.0, 0.0)])

    def fake_evaluate(dataset, desc="eval"):
        if desc == "test":
            return {"loss": 0.0, "acc": 0.25, "count": 4}
        acc, loss = next(results)
        return {"loss": loss, "acc": acc, "count": 4}

    monkeypatch.setattr(trainer, "evaluate", fake_evaluate)
    summary = trainer.fit()
    assert summary["best_epoch"] == 3 and summary["val_loss"] == 0.7   # tie at 0.75 → lower loss
    assert summary["stopped"] == "early_stopping" and summary["epochs_run"] == 5


def test_optimizer_param_groups_and_gumbel_steps(tmp_path):
    trainer = make_trainer(tmp_path, spec=tiny_spec("mnist6-m-e2-partial"), lr=1e-3, lr_probs=1e-4, epochs=3)
    lrs = {g["name"]: g["lr"] for g in trainer.optimizer.param_groups}
    assert lrs["probs"] < lrs["weights"]
    assert all(s.anneal_steps == 3 * trainer.steps_per_epoch for s in trainer.model.samplers())
    trainer.config.epochs = 1
    trainer.fit()
    # the Gumbel counter of each partial E2 layer advanced once per training forward
    steps = load_checkpoint(tmp_path / "last.pt")["sampler_steps"]
    assert steps["last_conv.sampler"] == trainer.steps_per_epoch


def test_config_validation():
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="scheduler"):
        TrainConfig(scheduler="step")
    with pytest.raises(TypeError, match="lr"):
        TrainConfig(lr="fast")
    with pytest.raises(ValueError, match="lr_probs"):
        TrainConfig(lr_probs=0.0)
    with pytest.raises(TypeError, match="model"):
        Trainer("not a model", tiny_data(), TrainConfig(), "x")


def test_max_batches_limits_evaluation_too(tmp_path):
    data = tiny_data()
    limited = make_trainer(tmp_path / "a", max_batches=1, eval_batch_size=2)
    assert limited.evaluate(data.val)["count"] == 2
    assert limited.evaluate(data.test)["count"] == 2
    kept = limited._limited(data.test, 2)
    assert {int(kept[i][1]) for i in range(2)} == {0, 1}     # spread over the split: both classes
    full = make_trainer(tmp_path / "b", eval_batch_size=2)
    assert full.evaluate(data.val)["count"] == len(data.val) > 2
