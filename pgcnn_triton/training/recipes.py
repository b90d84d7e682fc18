"""Default training settings per dataset and model (method.md §7.2); command-line flags override them."""

from __future__ import annotations

_CIFAR = dict(epochs=300, batch_size=64, lr=1e-3, lr_probs=1e-4, weight_decay=1e-4, scheduler="cosine")
_CIFAR_GCNN = dict(_CIFAR, epochs=205, batch_size=128)
_ROTMNIST = dict(epochs=300, batch_size=64, lr=1e-3, weight_decay=0.0, scheduler="cosine")
_MNIST6 = dict(epochs=300, batch_size=64, lr=1e-3, weight_decay=0.0, scheduler="constant")


def recipe(dataset: str, family: str = "ckresnet", group: str = "se2", partial: bool = True) -> dict:
    """The paper's :class:`~pgcnn_triton.training.TrainConfig` fields for a dataset / model combination."""
    base = dataset.removeprefix("bundled-")
    if base in ("cifar10", "cifar100", "pcam"):
        return dict(_CIFAR_GCNN if family == "gcnn" else _CIFAR)
    if base == "rotmnist":
        if family == "gcnn":
            return dict(epochs=205, batch_size=128, lr=1e-2, lr_probs=1e-3, weight_decay=0.0, scheduler="cosine")
        out = dict(_ROTMNIST)
        if group == "se2" and partial:
            out["monotonic_decay"] = 1e-3
        if group == "e2":
            out["lr_probs"] = 1e-4
        return out
    if base in ("mnist6-180", "mnist6-m"):
        return dict(_MNIST6)
    raise ValueError(f"no training recipe for dataset {dataset!r}")
