"""The CKResNet of Partial G-CNNs (docs/method.md#ckresnet), exported as ``PartialGCNN``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .._checks import constructor_arguments, integer, positive
from ..nn import GroupConv, GroupInstanceNorm, LiftingConv, PointwiseGroupConv, SpatialMaxPool, make_norm
from ..nn.conv import split_output
from ..nn.pooling import masked_global_max_pool, masked_group_pool
from ..sampling import make_config
from .base import GroupModel, check_model_arguments, conv_stage, pool_stage


def block_widths(hidden: int, num_blocks: int, factors) -> list[int]:
    """Widths of the blocks from (factor, count) pairs, e.g. ``(1, 1, 2, 1)`` → ``[h, 2h]``."""
    if factors is None:
        return [hidden] * num_blocks
    factors = list(factors)
    if len(factors) % 2:
        raise ValueError(f"block_width_factors must hold (factor, count) pairs, got {factors}")
    widths = []
    for factor, count in zip(factors[::2], factors[1::2]):
        positive(factor, "block_width_factors factor")
        integer(count, "block_width_factors count", minimum=0)
        if int(hidden * factor) < 1:
            raise ValueError(f"block_width_factors factor {factor} gives blocks of width {int(hidden * factor)} "
                             f"from hidden={hidden}: every block needs at least 1 channel")
        widths += [int(hidden * factor)] * int(count)
    if len(widths) != num_blocks:
        raise ValueError(f"block_width_factors give {len(widths)} blocks, but num_blocks={num_blocks}")
    return widths


def t2_element(group, device=None):
    """The one input element of the ``last_conv_T2`` layer: ``zeros_like`` of an element, as in the
    original. SE(2): the identity. E(2): the degenerate pair (angle 0, mirror flag 0), whose action
    matrix is [[1, 0], [0, 0]]: the kernel net sees (y, 0, −1, 0), constant along x (docs/method.md#full-cifar-heads)."""
    shape = (1, 1) if group.element_rank == 0 else (1, 1, 2)
    return torch.zeros(shape, dtype=torch.float64, device=device)


class CKResBlock(nn.Module):
    """gconv1 → norm(G,H,W) → ReLU → dropout → gconv2 → norm(G,H,W) → ReLU; + shortcut;
    then Norm, optional 2×2 spatial max pool, ReLU. Call as ``block(x, elements)``; in static shape
    mode as ``block(x, elements, mask)``, returning ``(features, elements, mask)`` like the convs."""

    def __init__(self, in_channels, out_channels, *, norm, dropout, pool, conv_kwargs, shortcut_kwargs):
        super().__init__()
        sampling = conv_kwargs["sampling"]
        self.gconv1 = GroupConv(in_channels, out_channels, **conv_kwargs)
        self.gconv2 = GroupConv(out_channels, out_channels, **conv_kwargs)
        self.inner_norm = GroupInstanceNorm()
        self.dropout = nn.Dropout(dropout)
        needs_map = in_channels != out_channels or sampling.per_layer or sampling.partial
        self.shortcut = PointwiseGroupConv(in_channels, out_channels, **shortcut_kwargs) if needs_map else None
        self.norm = make_norm(norm, out_channels)
        self.pool = SpatialMaxPool(2) if pool else None
        self.static = sampling.shape_mode == "static"

    def forward(self, x, elements, mask=None):
        y, g1, m1 = split_output(self.gconv1(x, elements, mask))
        y = self.dropout(F.relu(self.inner_norm(y, m1)))
        y, g2, m2 = split_output(self.gconv2(y, g1, m1))
        y = F.relu(self.inner_norm(y, m2))
        s = x if self.shortcut is None else self.shortcut(x, elements, g2, mask, m2)[0]
        y = self.norm(y + s, m2)
        if self.pool is not None:
            y = self.pool(y)
        return (F.relu(y), g2, m2) if self.static else (F.relu(y), g2)


class PartialGCNN(GroupModel):
    """CKResNet Partial G-CNN (Romero & Lohit 2022): lifting conv, residual group-conv blocks, a final
    'valid' group conv and a global max over (G, H, W), which makes the logits invariant to the
    transformations each layer keeps.

    Defaults are the CIFAR-10 SE(2)-partial configuration (469,903 parameters); see
    :meth:`from_preset` for every configuration of the paper.

    Args:
        in_channels, num_classes: input channels and classes.
        hidden: width of the lifting layer (``net.no_hidden``).
        num_blocks, block_width_factors: residual blocks and their widths as (factor, count) pairs.
        pool_blocks: 2×2 max pooling after the lifting layer (0) and/or after block i (i ≥ 1).
        norm: ``"batch"`` (BatchNorm3d) or ``"layer"`` (GroupNorm(1, C)).
        dropout: dropout probability inside the blocks.
        kernel_size, kernel_net, kernel_hidden, kernel_layers, omega0, learn_omega0: the kernels.
        learnable_final_pooling, final_spatial_dim: a learned linear pooling over the final
            (G, H, W) positions instead of the max (full equivariance only).
        last_conv_t2: mean over G, then the original's final T(2) conv (one fixed element, see
            :func:`t2_element`; under E(2) all k² taps) instead of a final group conv over G.
        sampling: a :class:`~pgcnn_triton.sampling.SamplingConfig`, or its fields as keyword arguments
            (``group="E2"``, ``num_elements=8``, ``partial=False``, ``shape_mode="static"``, ...).
    """

    def __init__(self, in_channels=3, num_classes=10, hidden=32, num_blocks=2, block_width_factors=(1, 1, 2, 1),
                 pool_blocks=(1, 2), norm="batch", dropout=0.0, kernel_size=7, kernel_net="SIREN",
                 kernel_hidden=32, kernel_layers=3, omega0=10.0, learn_omega0=False,
                 learnable_final_pooling=False, final_spatial_dim=(2, 2), last_conv_t2=False,
                 sampling=None, **sampling_options):
        super().__init__()
        check_model_arguments(in_channels, num_classes, hidden, num_blocks, dropout, pool_blocks=pool_blocks)
        if learnable_final_pooling:
            if not isinstance(final_spatial_dim, (tuple, list)) or len(final_spatial_dim) != 2:
                raise ValueError(f"final_spatial_dim must be a pair (h, w), got {final_spatial_dim!r}")
            for side in final_spatial_dim:
                integer(side, "final_spatial_dim entry")
        self.sampling = make_config(sampling, sampling_options, type(self).__name__, constructor_arguments(type(self)))
        self._eval_mode = self.sampling.eval_mode
        self.in_channels = in_channels
        if learnable_final_pooling and self.sampling.partial:
            raise ValueError("learnable_final_pooling=True needs partial=False: it fixes the number of elements")
        widths = block_widths(hidden, num_blocks, block_width_factors)
        final = widths[-1] if widths else hidden
        kernel = dict(kernel_net=kernel_net, kernel_layers=kernel_layers, omega0=omega0, learn_omega0=learn_omega0)
        conv = dict(kernel, sampling=self.sampling, kernel_size=kernel_size, kernel_hidden=kernel_hidden)
        shortcut = dict(kernel, sampling=self.sampling, kernel_hidden=max(kernel_hidden // 2, 1))
        pools = set(pool_blocks)

        self.lift = LiftingConv(in_channels, hidden, **conv)
        self.lift_norm = make_norm(norm, hidden)
        self.lift_pool = SpatialMaxPool(2) if 0 in pools else None
        self.blocks = nn.ModuleList()
        width = hidden
        for i, out in enumerate(widths):
            self.blocks.append(CKResBlock(width, out, norm=norm, dropout=dropout, pool=(i + 1) in pools,
                                          conv_kwargs=conv, shortcut_kwargs=shortcut))
            width = out
        self.last_conv_t2 = last_conv_t2
        if last_conv_t2:
            # the original's last_conv_T2: a non-partial group conv over one fixed input element,
            # zeros_like(an element) (see t2_element); its output keeps that element. Under E(2) the
            # element (angle 0, mirror 0) squashes every tap into the disk, so all k² taps are live.
            fixed = self.sampling.replace(method="deterministic", partial=False, per_batch_element=False)
            taps = "square" if fixed.group == "E2" else "disk"
            self.last_conv = GroupConv(final, final, **{**conv, "sampling": fixed}, padding="valid", taps=taps)
        else:
            self.last_conv = GroupConv(final, final, **conv, padding="valid")
        self.last_norm = make_norm(norm, final)
        if learnable_final_pooling:
            positions = self.sampling.num_elements * final_spatial_dim[0] * final_spatial_dim[1]
            self.final_pool = nn.Linear(positions, 1)
        else:
            self.final_pool = None
        self.head = nn.Linear(final, num_classes)

    def spatial_stages(self):
        stages = [conv_stage(self.lift)] + ([pool_stage(self.lift_pool)] if self.lift_pool is not None else [])
        for block in self.blocks:
            stages += [conv_stage(block.gconv1), conv_stage(block.gconv2)]
            stages += [pool_stage(block.pool)] if block.pool is not None else []
        return stages + [conv_stage(self.last_conv)]

    def features(self, x):
        """Group features before the final conv: ``([B, C, G, H, W], elements)``; in static shape
        mode ``([B, C, G, H, W], elements, mask)`` (the slot mask, None: all valid)."""
        y, g, mask = self._features(x)
        return (y, g, mask) if self.sampling.shape_mode == "static" else (y, g)

    def _features(self, x):
        y, g, mask = split_output(self.lift(x))
        y = self.lift_norm(y, mask)
        if self.lift_pool is not None:
            y = self.lift_pool(y)
        y = F.relu(y)
        for block in self.blocks:
            y, g, mask = split_output(block(y, g, mask))
        return y, g, mask

    def forward_once(self, x):
        y, g, mask = self._features(x)
        if self.last_conv_t2:
            y = masked_group_pool(y, "mean", mask)[:, :, None]  # [B, C, 1, H, W]: one element
            y, _, mask = split_output(self.last_conv(y, t2_element(self.sampling.group_obj, y.device)))
        else:
            y, _, mask = split_output(self.last_conv(y, g, mask))
        y = F.relu(self.last_norm(y, mask))
        if self.final_pool is not None:
            if y.shape[2] * y.shape[3] * y.shape[4] != self.final_pool.in_features:
                raise ValueError(f"learnable_final_pooling was sized for {self.final_pool.in_features} (G, H, W) "
                                 f"positions but the last layer gives {tuple(y.shape[2:])}: set final_spatial_dim")
            pooled = self.final_pool(rearrange(y, "b c g h w -> b c (g h w)"))[..., 0]
        else:
            pooled = masked_global_max_pool(y, mask)
        return self.head(pooled)
