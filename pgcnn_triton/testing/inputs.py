"""Inputs for equivariance checks: sizes that keep a model's pooling exact, and smooth random images.

No hypothesis here: :mod:`pgcnn_triton.testing.strategies` draws from these, and
:func:`~pgcnn_triton.testing.check_equivariance` uses them directly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..equivariance import exact_size_problem

__all__ = ["exact_sizes", "random_images", "example_input", "input_size_problem"]

#: how far above the first candidate :func:`exact_sizes` looks
_SEARCH = 512


def _min_size(model) -> int:
    size = getattr(model, "min_input_size", None)
    return size() if callable(size) else 1


def _name(model) -> str:
    return type(model).__name__


def input_size_problem(model, height: int, width: int | None = None) -> str | None:
    """Why ``model`` refuses an ``height × width`` input, or None if it takes it: a side below its
    ``min_input_size()``, or a final map that its learnable final pooling was not sized for (the
    CIFAR-10 full presets take 32–35 px only: their pooling is a Linear over a 2×2 map)."""
    width = height if width is None else width
    low = _min_size(model)
    if min(height, width) < low:
        return f"its layers need H, W >= {low}"
    unfit = _final_pool_misfit(model, height, width)
    if unfit:
        return f"{unfit}: {_accepted(model, low)}"
    return None


def _final_pool_misfit(model, height: int, width: int) -> str | None:
    pool, out = getattr(model, "final_pool", None), getattr(model, "output_size", None)
    if not (isinstance(pool, torch.nn.Linear) and callable(out)):
        return None
    from ..symmetries import element_grid

    grid = element_grid(model)
    h, w = out(height), out(width)
    if grid is None or h is None or w is None or grid.num_elements * h * w == pool.in_features:
        return None
    return (f"its learnable final pooling `final_pool` takes {pool.in_features} (G, H, W) positions, but a "
            f"{height}x{width} input leaves a {h}x{w} map of {grid.num_elements} elements "
            f"({grid.num_elements * h * w})")


def _accepted(model, low: int) -> str:
    sizes = [s for s in range(low, low + _SEARCH) if _final_pool_misfit(model, s, s) is None]
    if not sizes:
        return "no square input fits it"
    return f"use {sizes[0]}x{sizes[0]}" + (f" to {sizes[-1]}x{sizes[-1]}" if len(sizes) > 1 else "")


def exact_sizes(model, count: int = 3, start: int = 8) -> list[int]:
    """The ``count`` smallest sizes ≥ ``start`` that ``model`` takes (:func:`input_size_problem`: its
    ``min_input_size()``, its learnable final pooling) and at which its max pools split the input
    symmetrically, so rot90 and flips can be exact (:func:`~pgcnn_triton.equivariance.exact_size_problem`).
    The presets: 28, 32, 36; the CIFAR-10 full presets take only 32 of them (fewer than ``count`` are
    returned when the model takes only a few sizes). ``ValueError`` if none is found."""
    first = max(_min_size(model), start, 1)
    sizes = []
    # from `first` on, input_size_problem reduces to the final-pooling check (without its costly hint)
    for s in range(first, first + _SEARCH):
        if _final_pool_misfit(model, s, s) is None and exact_size_problem(model, s, s) is None:
            sizes.append(s)
            if len(sizes) == count:
                break
    if not sizes:
        raise ValueError(f"exact_sizes: {_name(model)} takes no square input from {first} to {first + _SEARCH - 1} "
                         "px at which its pooling is exact: pass sizes explicitly (inputs_for(model, sizes=[...]), "
                         "example_input(model, size=...))")
    return sizes


def check_input_size(model, size: int, caller: str) -> None:
    """Raise a one-line ``ValueError`` naming ``caller`` if ``model`` refuses ``size × size`` inputs."""
    problem = input_size_problem(model, size)
    if problem:
        raise ValueError(f"{caller}: {_name(model)} refuses {size}x{size} inputs: {problem}")


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
    """A batch for ``model``: its input channels, the smallest exact size from 16 up that it takes (or
    ``size``: a ``ValueError`` if the model refuses it, :func:`input_size_problem`), its dtype and device."""
    channels = getattr(model, "input_channels", None) or _first_in_channels(model)
    if size is None:
        size = exact_sizes(model, 1, start=16)[0]
    else:
        check_input_size(model, size, "example_input")
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
