"""Layers of group features ``[B, C, G, H, W]``; convolutions return ``(features, elements)``."""

from .conv import GroupConv, LiftingConv, PointwiseGroupConv
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
    "LiftingConv",
    "PointwiseGroupConv",
    "SpatialMaxPool",
    "make_norm",
]
