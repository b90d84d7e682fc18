"""One named preset per configuration row of docs/method.md#settings-per-dataset (model arguments only).

Names are ``<dataset>-<group>-<partial|full>`` (``t2`` for the N = 1 baseline), e.g.
``PartialGCNN.from_preset("cifar10-se2-partial")``, ``GCNN.from_preset("cifar10-se2-partial")``.
Parameter counts equal docs/method.md#parameter-counts; the full presets without a published count (``cifar100-se2-full``, the
GCNN ``*-se2-full``) have their partial preset's count minus its θs, as the official constructor gives
(θ is a buffer when not partial). Both are checked by ``tests/models/test_presets.py``.
"""

from __future__ import annotations

from .base import T2_SAMPLING

_SE2_PARTIAL = dict(group="SE2", num_elements=8, method="random", partial=True)
_SE2_FULL = dict(group="SE2", num_elements=8, method="random", partial=False, per_layer=True)
_E2_PARTIAL = dict(group="E2", num_elements=8, method="random", partial=True)
_E2_FULL = dict(group="E2", num_elements=8, method="random", partial=False, per_layer=True)

_CK_SIREN = dict(hidden=32, num_blocks=2, block_width_factors=(1, 1, 2, 1), norm="batch", dropout=0.0,
                 kernel_size=7, kernel_net="SIREN", kernel_hidden=32, omega0=10.0)
_CK_MNIST6 = dict(in_channels=1, num_classes=2, hidden=10, num_blocks=2, block_width_factors=None,
                  pool_blocks=(1, 2), norm="batch", kernel_size=7, kernel_net="MAGNet", kernel_hidden=32)


def _ck(in_channels, num_classes, pool_blocks, sampling, **extra):
    return dict(_CK_SIREN, in_channels=in_channels, num_classes=num_classes, pool_blocks=pool_blocks,
                **sampling, **extra)


CKRESNET_PRESETS = {
    "rotmnist-t2": _ck(1, 10, (1, 2), T2_SAMPLING),
    "rotmnist-se2-partial": _ck(1, 10, (0, 1), _SE2_PARTIAL),
    "rotmnist-se2-full": _ck(1, 10, (0, 1), _SE2_FULL),
    "rotmnist-e2-partial": _ck(1, 10, (0, 1), _E2_PARTIAL),
    "rotmnist-e2-full": _ck(1, 10, (0, 1), _E2_FULL),
    "mnist6-180-se2-partial": dict(_CK_MNIST6, **_SE2_PARTIAL, per_batch_element=True),
    "mnist6-180-se2-full": dict(_CK_MNIST6, hidden=20, norm="layer", kernel_net="FourierNet", **_SE2_FULL),
    "mnist6-m-e2-partial": dict(_CK_MNIST6, **_E2_PARTIAL),
    "mnist6-m-e2-full": dict(_CK_MNIST6, **_E2_FULL),
}
for _name, _classes in (("cifar10", 10), ("cifar100", 100)):
    CKRESNET_PRESETS.update({
        f"{_name}-t2": _ck(3, _classes, (1, 2), T2_SAMPLING),
        f"{_name}-se2-partial": _ck(3, _classes, (1, 2), _SE2_PARTIAL),
        f"{_name}-e2-partial": _ck(3, _classes, (1, 2), _E2_PARTIAL),
    })
CKRESNET_PRESETS.update({
    "cifar10-se2-full": _ck(3, 10, (1, 2), _SE2_FULL, learnable_final_pooling=True, final_spatial_dim=(2, 2)),
    "cifar10-e2-full": _ck(3, 10, (1, 2), _E2_FULL, learnable_final_pooling=True, final_spatial_dim=(2, 2)),
    "cifar100-se2-full": _ck(3, 100, (1, 2), _SE2_FULL),
    "cifar100-e2-full": _ck(3, 100, (1, 2), _E2_FULL, last_conv_t2=True),
})

_GCNN = dict(hidden=128, num_blocks=8, block_width_factors=(1, 1, 2, 7), pool_blocks=(2, 5),
             dropout_blocks=(2, 5, 8), norm="batch", kernel_size=3, kernel_net="SIREN", kernel_hidden=8)
_GCNN_FULL = dict(group="SE2", num_elements=8, method="random", partial=False, per_layer=False)


def _gcnn(in_channels, num_classes, sampling, dropout, omega0=10.0):
    return dict(_GCNN, in_channels=in_channels, num_classes=num_classes, dropout=dropout, omega0=omega0,
                **sampling)


GCNN_PRESETS = {
    "rotmnist-t2": _gcnn(1, 10, T2_SAMPLING, 0.3),
    "rotmnist-se2-partial": _gcnn(1, 10, _SE2_PARTIAL, 0.3),
    "rotmnist-se2-full": _gcnn(1, 10, _GCNN_FULL, 0.3),
    "cifar10-t2": _gcnn(3, 10, T2_SAMPLING, 0.1, omega0=30.0),
    "cifar10-se2-partial": _gcnn(3, 10, _SE2_PARTIAL, 0.3),
    "cifar10-se2-full": _gcnn(3, 10, _GCNN_FULL, 0.3, omega0=30.0),
    "cifar100-t2": _gcnn(3, 100, T2_SAMPLING, 0.1, omega0=30.0),
    "cifar100-se2-partial": _gcnn(3, 100, _SE2_PARTIAL, 0.3),
    "cifar100-se2-full": _gcnn(3, 100, _GCNN_FULL, 0.3),
}

# Augerino (the original's AugerinoCKResNet / AugerinoGCNN rows): the T(2) network of the dataset's partial
# preset (same widths, kernels and pooling) behind a learned augmentation of N = 8 random elements. The
# network's own sampling is always T(2); these dicts hold the augmentation's group, N and partial flag.
_AUG_SE2 = dict(group="SE2", num_elements=8, method="random", partial=True)
_AUG_E2 = dict(group="E2", num_elements=8, method="random", partial=True)


def _augerino(preset: dict, sampling: dict) -> dict:
    network = {k: v for k, v in preset.items() if k not in _SE2_PARTIAL and k != "per_batch_element"}
    return dict(network, **sampling)


#: The original's CKResNet Augerino rows. ``cifar10-e2-partial`` is the E(2) row the paper labels; the
#: original's command for it runs ``base_group.name=SE2`` (its number is a second SE(2) run:
#: ``from_preset("cifar10-e2-partial", group="SE2")`` reproduces that command). The MNIST6 presets are
#: not in the original (its Augerino rows are rotated MNIST and CIFAR); they wrap the T(2) version of
#: the MNIST6 partial presets with one element set per batch.
AUGERINO_CKRESNET_PRESETS = {
    "rotmnist-se2-partial": _augerino(CKRESNET_PRESETS["rotmnist-se2-partial"], _AUG_SE2),
    "rotmnist-e2-partial": _augerino(CKRESNET_PRESETS["rotmnist-e2-partial"], _AUG_E2),
    "cifar10-se2-partial": _augerino(CKRESNET_PRESETS["cifar10-se2-partial"], _AUG_SE2),
    "cifar10-e2-partial": _augerino(CKRESNET_PRESETS["cifar10-e2-partial"], _AUG_E2),
    "cifar100-se2-partial": _augerino(CKRESNET_PRESETS["cifar100-se2-partial"], _AUG_SE2),
    "cifar100-e2-partial": _augerino(CKRESNET_PRESETS["cifar100-e2-partial"], _AUG_E2),
    "mnist6-180-se2-partial": _augerino(CKRESNET_PRESETS["mnist6-180-se2-partial"], _AUG_SE2),
    "mnist6-m-e2-partial": _augerino(CKRESNET_PRESETS["mnist6-m-e2-partial"], _AUG_E2),
}
#: The original's GCNN Augerino rows (SE(2) only; ω0 = 10, dropout 0.3, as its commands).
AUGERINO_GCNN_PRESETS = {
    f"{name}-se2-partial": _augerino(GCNN_PRESETS[f"{name}-se2-partial"], _AUG_SE2)
    for name in ("rotmnist", "cifar10", "cifar100")
}
