"""Layers of group features ``[B, C, G, H, W]``; convolutions return ``(features, elements)``."""

from .augment import LearnedAugmentation
from .conv import GroupConv, LiftingConv, PointwiseGroupConv
from .kernel_norms import collect_kernel_norms
from .norms import GroupBatchNorm, GroupInstanceNorm, GroupLayerNorm, make_norm
from .pooling import GlobalMaxPool, GlobalMeanPool, GroupPool, SpatialMaxPool

__all__ = [
    "GlobalMaxPool",
    "GlobalMeanPool",
    "GroupBatchNorm",
    "GroupConv",
    "GroupInstanceNorm",
    "GroupLayerNorm",
    "GroupPool",
    "LearnedAugmentation",
    "LiftingConv",
    "PointwiseGroupConv",
    "SpatialMaxPool",
    "collect_kernel_norms",
    "make_norm",
]
