"""Plain-dict descriptions of a model and a dataset, stored in checkpoints so a run can be rebuilt."""

from __future__ import annotations

from ..data import DATASETS, DataSplits, load_dataset
from ..models import GCNN, T2_SAMPLING, AugerinoCKResNet, AugerinoGCNN, PartialGCNN
from .custom_spec import CUSTOM, build_custom

FAMILIES = {"ckresnet": PartialGCNN, "gcnn": GCNN, "augerino-ckresnet": AugerinoCKResNet, "augerino-gcnn": AugerinoGCNN}
#: The Augerino families: a T(2) network behind a learned augmentation (no T(2) variant of their own).
AUGERINO_FAMILIES = ("augerino-ckresnet", "augerino-gcnn")
GROUPS = ("se2", "e2", "t2")

#: Which preset family a dataset uses (docs/method.md#settings-per-dataset); PatchCamelyon and STL-10 have no
#: official command.
PRESET_BASE = {"cifar10": "cifar10", "cifar100": "cifar100", "rotmnist": "rotmnist", "bundled-rotmnist": "rotmnist",
               "mnist6-180": "mnist6-180", "bundled-mnist6-180": "mnist6-180", "mnist6-m": "mnist6-m",
               "bundled-mnist6-m": "mnist6-m", "pcam": "cifar10", "stl10": "cifar10"}
#: Extra model arguments per dataset beyond the preset (PCam, STL-10: 96×96 inputs, pool after the lifting layer
#: too, as the original's STL-10 runs).
DATASET_OVERRIDES = {"pcam": {"pool_blocks": (0, 1, 2)}, "stl10": {"pool_blocks": (0, 1, 2)}}


def resolve_preset(family: str, dataset: str, group: str, partial: bool) -> tuple[str, dict]:
    """The preset closest to (family, dataset, group, partial), and the overrides that make it exact.

    E.g. ``("ckresnet", "cifar10", "se2", True)`` → ``("cifar10-se2-partial", {})``; a combination the paper
    has no preset for (e.g. E(2) on MNIST6-180) starts from the dataset's partial preset and overrides
    the group and the partial flag.
    """
    if family not in FAMILIES:
        raise ValueError(f"model must be one of {sorted(FAMILIES)}, got {family!r}")
    if group not in GROUPS:
        raise ValueError(f"group must be one of {GROUPS}, got {group!r}")
    if dataset not in PRESET_BASE:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    presets = FAMILIES[family].PRESETS
    base = PRESET_BASE[dataset]
    name = f"{base}-t2" if group == "t2" else f"{base}-{group}-{'partial' if partial else 'full'}"
    if name in presets:
        return name, {}
    fallback = next((p for p in sorted(presets) if p.startswith(base) and p.endswith("-partial")), None)
    if fallback is None:
        raise ValueError(f"no {family} preset for dataset {dataset!r}")
    overrides = dict(T2_SAMPLING) if group == "t2" else {"group": group.upper(), "partial": partial}
    return fallback, overrides


def model_spec(family: str, preset: str | None, overrides: dict | None = None, label: str | None = None) -> dict:
    """``{"family", "preset", "overrides", "label"}``: enough to rebuild the model with :func:`build_model`."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {sorted(FAMILIES)}, got {family!r}")
    return {"family": family, "preset": preset, "overrides": dict(overrides or {}), "label": label or preset or family}


def build_model(spec: dict, path=None, caller: str = "pgcnn eval"):
    """Build the model a :func:`model_spec` describes, or a network of your own that a checkpoint
    describes (:func:`~pgcnn_triton.training.custom_spec.custom_model_spec`; ``path`` and ``caller``
    word the error when it cannot be rebuilt)."""
    if not isinstance(spec, dict) or "family" not in spec:
        raise TypeError("spec must be a dict made by model_spec()")
    if spec["family"] == CUSTOM:
        return build_custom(spec, path, caller)
    if spec["family"] not in FAMILIES:
        raise ValueError(f"unknown model family {spec['family']!r}: expected one of {sorted(FAMILIES)}")
    cls = FAMILIES[spec["family"]]
    overrides = dict(spec.get("overrides") or {})
    for key in ("pool_blocks", "block_width_factors", "final_spatial_dim", "dropout_blocks"):
        if isinstance(overrides.get(key), list):
            overrides[key] = tuple(overrides[key])
    if spec.get("preset"):
        return cls.from_preset(spec["preset"], **overrides)
    return cls(**overrides)


def data_spec(name: str, root: str = "data", **options) -> dict:
    """``{"name", "root", "options"}`` for :func:`load_from_spec`."""
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}")
    return {"name": name, "root": str(root), "options": options}


def load_from_spec(spec: dict, root: str | None = None, download: bool = False, progress: bool = True,
                   verify: bool = True) -> DataSplits:
    """Load the dataset a :func:`data_spec` describes (``root`` overrides the stored directory).

    ``verify``: check the md5 of the standard files (see :func:`~pgcnn_triton.data.load_dataset`); only
    the caller decides it, a stored spec (e.g. read from a checkpoint) cannot switch it off."""
    options = {k: v for k, v in (spec.get("options") or {}).items() if k != "verify"}
    return load_dataset(spec["name"], root or spec["root"], download=download, progress=progress, verify=verify,
                        **options)
