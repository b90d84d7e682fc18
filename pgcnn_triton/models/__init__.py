"""Models: the CKResNet ``PartialGCNN`` and the deeper ``GCNN``, their Augerino baselines, with the paper's presets."""

from . import control
from .augerino import Augerino, AugerinoCKResNet, AugerinoGCNN
from .base import T2_SAMPLING, GroupModel
from .ckresnet import CKResBlock, PartialGCNN
from .control import learned_equivariance, set_eval_mode, set_gumbel_anneal_steps
from .gcnn import GCNN
from .presets import AUGERINO_CKRESNET_PRESETS, AUGERINO_GCNN_PRESETS, CKRESNET_PRESETS, GCNN_PRESETS

PartialGCNN.PRESETS = CKRESNET_PRESETS
GCNN.PRESETS = GCNN_PRESETS
AugerinoCKResNet.PRESETS = AUGERINO_CKRESNET_PRESETS
AugerinoGCNN.PRESETS = AUGERINO_GCNN_PRESETS

__all__ = ["AUGERINO_CKRESNET_PRESETS", "AUGERINO_GCNN_PRESETS", "Augerino", "AugerinoCKResNet", "AugerinoGCNN",
           "CKRESNET_PRESETS", "CKResBlock", "GCNN", "GCNN_PRESETS", "GroupModel", "PartialGCNN", "T2_SAMPLING",
           "control", "learned_equivariance", "set_eval_mode", "set_gumbel_anneal_steps"]
