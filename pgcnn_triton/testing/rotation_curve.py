"""``rotation_curve``: a model's outputs as its input turns continuously (how far a learned invariance reaches).

    from pgcnn_triton.testing import rotation_curve
    angles = torch.arange(-180, 181, 5)
    logits = rotation_curve(model, images, angles)              # [A, B, K]
    p_true = logits.softmax(-1)[..., 0].mean(1)                  # probability of class 0 per angle

An exactly equivariant check (:func:`~pgcnn_triton.testing.assert_invariant`) answers yes or no for one
transform; a partially invariant model is invariant over a *range* of angles, and this curve shows the range.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["rotate_images", "rotation_curve"]


def rotate_images(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """Turn ``[..., H, W]`` images counter-clockwise by ``degrees`` about their centre: bilinear, zeros outside.

    The same resampling as the datasets' rotations (:func:`pgcnn_triton.data.rotate`: ``grid_sample`` with
    ``align_corners=False``), exact at multiples of 90° on square images, whose pixels are then permuted
    (``rotate_images(x, 90)`` is ``torch.rot90(x, 1, (-2, -1))``; bilinear sampling would blend in ~1e-6 of
    the neighbours through the float32 grid).
    """
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor [..., H, W], got "
                        f"{type(x).__name__ if not isinstance(x, torch.Tensor) else (x.dtype, tuple(x.shape))}")
    quarter, rest = divmod(float(degrees), 90.0)
    if rest == 0.0 and x.shape[-1] == x.shape[-2]:
        return torch.rot90(x, int(quarter) % 4, dims=(-2, -1))
    shape = x.shape
    flat = x.reshape(-1, 1, *shape[-2:])
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    theta = torch.tensor([[c, -s, 0.0], [s, c, 0.0]], dtype=torch.float64, device=x.device)
    grid = F.affine_grid(theta.expand(flat.shape[0], 2, 3), list(flat.shape), align_corners=False)
    out = F.grid_sample(flat, grid.to(x.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.reshape(shape)


def rotation_curve(model, x: torch.Tensor, angles, *, preprocess=None, batch_size: int = 256,
                   seed: int = 0) -> torch.Tensor:
    """``model``'s outputs for ``x`` turned by each of ``angles`` (degrees, counter-clockwise): ``[A, *out]``.

    Args:
        model: any callable on image batches (an ``nn.Module`` is run in eval mode and restored after);
            outputs are stacked along a new first axis, so ``out[i]`` is ``model(turn(x, angles[i]))``.
        x: images ``[B, C, H, W]`` (floating point). They are turned with zeros filling the corners
            (:func:`rotate_images`), so pass them with a zero background, e.g. before normalisation, and
            normalise in ``preprocess``.
        angles: degrees (a sequence or 1-D tensor), e.g. ``torch.arange(-180, 181, 5)``.
        preprocess: applied to each turned batch before the model (e.g. ``lambda z: (z - mean) / std``).
        batch_size: images per forward pass.
        seed: seeds the RNG for the passes (and restores it after), so a model that samples in eval mode
            gives the same curve every call.

    Runs without gradients. At multiples of 90° the turn is exact (:func:`rotate_images`), so a model that is
    exactly invariant to 90° turns gives a curve that repeats every 90° there, and at every other angle too
    up to rounding: ``turn(x, a + 90) = rot90(turn(x, a))`` on square images.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
        raise TypeError("rotation_curve: x must be a floating-point image batch [B, C, H, W], got "
                        f"{type(x).__name__ if not isinstance(x, torch.Tensor) else (x.dtype, tuple(x.shape))}")
    angles = [float(a) for a in torch.as_tensor(angles, dtype=torch.float64).reshape(-1)]
    if not angles or not all(math.isfinite(a) for a in angles):
        raise ValueError("rotation_curve: angles must be a non-empty sequence of finite degrees")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"rotation_curve: batch_size must be a positive int, got {batch_size!r}")
    module = model if isinstance(model, torch.nn.Module) else None
    was_training = module.training if module is not None else False
    devices = [x.device] if x.is_cuda else []
    try:
        if module is not None:
            module.eval()
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            curve = []
            for angle in angles:
                turned = rotate_images(x, angle)
                parts = []
                for start in range(0, turned.shape[0], batch_size):
                    batch = turned[start:start + batch_size]
                    parts.append(model(preprocess(batch) if preprocess is not None else batch))
                curve.append(torch.cat(parts))
            return torch.stack(curve)
    finally:
        if module is not None:
            module.train(was_training)
