"""pgcnn_triton: Partial G-CNNs (Romero & Lohit, NeurIPS 2022) in PyTorch, with Triton kernels.

>>> from pgcnn_triton import PartialGCNN
>>> model = PartialGCNN.from_preset("cifar10-se2-partial")
"""

from ._kernels_path import ensure_kernels_importable

ensure_kernels_importable()

from . import (  # noqa: E402
    deploy,  # noqa: E402
    equivariance,
    kernels,
    precision,
)
from ._version import package_version  # noqa: E402
from .freeze import FrozenConv, freeze  # noqa: E402
from .groups import E2, SE2, Group, get_group  # noqa: E402
from .kernelnets import MLP, SIREN, FourierNet, GaborNet, MAGNet, make_kernel_net, parse_kernel_net  # noqa: E402
from .models import (  # noqa: E402
    GCNN,
    AugerinoCKResNet,
    AugerinoGCNN,
    GroupModel,
    PartialGCNN,
    learned_equivariance,
    set_eval_mode,
    set_gumbel_anneal_steps,
)
from .nn import (  # noqa: E402
    GlobalMaxPool,
    GroupBatchNorm,
    GroupConv,
    GroupInstanceNorm,
    GroupLayerNorm,
    GroupPool,
    LiftingConv,
    PointwiseGroupConv,
    SpatialMaxPool,
)
from .portable import portable  # noqa: E402
from .sampling import SamplingConfig  # noqa: E402

#: The installed distribution's version (pyproject.toml's, when run from a checkout without an install).
__version__ = package_version()

__all__ = [
    "AugerinoCKResNet", "AugerinoGCNN",
    "E2", "GCNN", "deploy", "FrozenConv", "SE2", "SIREN", "FourierNet", "GaborNet", "MLP", "GlobalMaxPool", "Group",
    "GroupBatchNorm", "GroupConv", "GroupInstanceNorm", "GroupLayerNorm", "GroupModel", "GroupPool", "LiftingConv",
    "MAGNet", "PartialGCNN",
    "PointwiseGroupConv", "SamplingConfig", "SpatialMaxPool", "equivariance", "freeze", "get_group", "kernels",
    "learned_equivariance", "make_kernel_net", "parse_kernel_net", "portable", "precision", "set_eval_mode",
    "set_gumbel_anneal_steps",
]
