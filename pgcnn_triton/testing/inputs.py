"""Inputs for equivariance checks: sizes that keep a model's pooling exact, and smooth random images.

No hypothesis here: :mod:`pgcnn_triton.testing.strategies` draws from these, and
:func:`~pgcnn_triton.testing.check_equivariance` uses them directly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..equivariance import exact_size_problem

__all__ = ["exact_sizes", "random_images", "example_input"]


def _min_size(model) -> int:
    size = getattr(model, "min_input_size", None)
    return size() if callable(size) else 1


def exact_sizes(model, count: int = 3, start: int = 8) -> list[int]:
    """The ``count`` smallest sizes ≥ ``start`` and ≥ the model's ``min_input_size()`` at which the
    model's max pools split the input symmetrically, so rot90 and flips can be exact
    (:func:`~pgcnn_triton.equivariance.exact_size_problem`). The presets: 28, 32, 36."""
    size = max(_min_size(model), start, 1)
    sizes = []
    while len(sizes) < count:
        if exact_size_problem(model, size, size) is None:
            sizes.append(size)
        size += 1
    return sizes


def random_images(batch: int, channels: int, height: int, width: int | None = None, *, smooth: bool = False,
                  seed: int = 0, dtype=torch.float32, device=None) -> torch.Tensor:
    """Standard-normal images ``[batch, channels, H, W]`` from a seeded generator.

    ``smooth=True`` band-limits them: noise on a grid 4× coarser, upsampled bicubically, then
    standardised. Rotating white noise by 0.3–0.5 rad and back (bilinear) loses ~60 % of it inside the
    disk, so tests at arbitrary angles would measure the interpolation, not the model; smooth images
    lose 8–17 % (12–32 px)."""
    width = height if width is None else width
    gen = torch.Generator().manual_seed(int(seed))
    if not smooth:
        x = torch.randn(batch, channels, height, width, generator=gen, dtype=torch.float64)
    else:
        coarse = torch.randn(batch, channels, height // 4 + 2, width // 4 + 2, generator=gen, dtype=torch.float64)
        x = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=True)
        x = (x - x.mean()) / x.std()
    return x.to(dtype=dtype, device=device)


def example_input(model, batch: int = 2, size: int | None = None, *, smooth: bool = True, seed: int = 0,
                  dtype=None, device=None) -> torch.Tensor:
    """A batch for ``model``: its input channels, the smallest exact size from 16 up (or ``size``), its
    dtype and device."""
    channels = getattr(model, "input_channels", None) or _first_in_channels(model)
    size = exact_sizes(model, 1, start=16)[0] if size is None else size
    if dtype is None or device is None:
        param = next(iter(model.parameters()), None)
        dtype = dtype or (param.dtype if param is not None else torch.float32)
        device = device or (param.device if param is not None else None)
    return random_images(batch, channels, size, smooth=smooth, seed=seed, dtype=dtype, device=device)


def _first_in_channels(model) -> int:
    from ..nn import LiftingConv

    lift = next((m for m in model.modules() if isinstance(m, LiftingConv)), None)
    if lift is None:
        raise ValueError(f"cannot tell the input channels of {type(model).__name__}: pass x explicitly")
    return lift.in_channels
