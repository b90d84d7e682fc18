"""The deeper 9-layer G-CNN without residuals (docs/method.md#gcnn)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from .._checks import constructor_arguments
from ..nn import GroupConv, LiftingConv, SpatialMaxPool, make_norm
from ..nn.conv import split_output
from ..nn.pooling import masked_global_mean_pool
from ..sampling import make_config
from .base import GroupModel, check_model_arguments, conv_stage, pool_stage
from .ckresnet import block_widths


class GCNN(GroupModel):
    """Lifting conv → Norm → ReLU, then ``num_blocks`` × [GroupConv → Norm → ReLU (→ 2×2 max pool)
    (→ channel dropout)], then the mean over (G, H, W) and a linear classifier.

    Defaults are the CIFAR-10 SE(2)-partial configuration (3,994,418 parameters).

    Args:
        in_channels, num_classes, hidden: input channels, classes, lifting width.
        num_blocks, block_width_factors: group-conv blocks and their widths as (factor, count) pairs.
        pool_blocks, dropout_blocks: 1-based block indices followed by pooling / ``Dropout3d(dropout)``.
        norm, kernel_size, kernel_net, kernel_hidden, kernel_layers, omega0, learn_omega0: as
            :class:`~pgcnn_triton.PartialGCNN`.
        sampling: a :class:`~pgcnn_triton.sampling.SamplingConfig`, or its fields as keyword arguments.
    """

    def __init__(self, in_channels=3, num_classes=10, hidden=128, num_blocks=8, block_width_factors=(1, 1, 2, 7),
                 pool_blocks=(2, 5), dropout=0.3, dropout_blocks=(2, 5, 8), norm="batch", kernel_size=3,
                 kernel_net="SIREN", kernel_hidden=8, kernel_layers=3, omega0=10.0, learn_omega0=False,
                 sampling=None, **sampling_options):
        super().__init__()
        check_model_arguments(in_channels, num_classes, hidden, num_blocks, dropout, pool_blocks=pool_blocks,
                              dropout_blocks=dropout_blocks)
        self.sampling = make_config(sampling, sampling_options, type(self).__name__, constructor_arguments(type(self)))
        self._eval_mode = self.sampling.eval_mode
        self.in_channels = in_channels
        widths = block_widths(hidden, num_blocks, block_width_factors)
        conv = dict(sampling=self.sampling, kernel_size=kernel_size, kernel_net=kernel_net,
                    kernel_hidden=kernel_hidden, kernel_layers=kernel_layers, omega0=omega0,
                    learn_omega0=learn_omega0)
        self.lift = LiftingConv(in_channels, hidden, **conv)
        self.lift_norm = make_norm(norm, hidden)
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        self.pools = nn.ModuleList()
        self.dropouts = nn.ModuleList()
        width = hidden
        for i, out in enumerate(widths, start=1):
            self.convs.append(GroupConv(width, out, **conv))
            self.norms.append(make_norm(norm, out))
            self.pools.append(SpatialMaxPool(2) if i in pool_blocks else nn.Identity())
            self.dropouts.append(nn.Dropout3d(dropout) if i in dropout_blocks else nn.Identity())
            width = out
        self.head = nn.Linear(width, num_classes)

    def spatial_stages(self):
        stages = [conv_stage(self.lift)]
        for conv, pool in zip(self.convs, self.pools):
            stages.append(conv_stage(conv))
            if isinstance(pool, SpatialMaxPool):
                stages.append(pool_stage(pool))
        return stages

    def forward_once(self, x):
        y, g, mask = split_output(self.lift(x))
        y = F.relu(self.lift_norm(y, mask))
        for conv, norm, pool, dropout in zip(self.convs, self.norms, self.pools, self.dropouts):
            y, g, mask = split_output(conv(y, g, mask))
            y = dropout(pool(F.relu(norm(y, mask))))
        return self.head(masked_global_mean_pool(y, mask))
