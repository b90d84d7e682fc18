"""A tiny model and dataset that train in a fraction of a second (for trainer tests)."""

from __future__ import annotations

from pgcnn_triton.data import bundled_mnist6
from pgcnn_triton.training import TrainConfig, model_spec

TINY_MODEL = dict(hidden=2, num_elements=2, kernel_size=3, kernel_hidden=4, per_batch_element=False,
                  kernel_net="SIREN")


def tiny_data(variant="180"):
    return bundled_mnist6(variant, train=8, val=4, test=4)


def tiny_spec(preset="mnist6-180-se2-partial", **extra):
    return model_spec("ckresnet", preset, {**TINY_MODEL, **extra}, label="tiny")


def tiny_config(**overrides):
    values = dict(epochs=2, batch_size=4, lr=1e-2, lr_probs=1e-2, warmup_epochs=1, progress=False, seed=0)
    values.update(overrides)
    return TrainConfig(**values)
