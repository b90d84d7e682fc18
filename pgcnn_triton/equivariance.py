"""Input transformations, their action on group features, and the equivariance error.

A transformation T is a group element t = (angle, mirror) together with its action on images. On group
features f with elements g it acts by the spatial transform and a permutation of the group axis:

    (T′f)[:, :, j] = T(f[:, :, σ(j)]),    σ(j) = index of t·g_j among the elements

(docs/method.md#exact-symmetries; e.g. SE2 N = 4 under rot90: σ(j) = j + 1). An equivariant layer satisfies
``layer(T′x) = T′ layer(x)``; an invariant model ``model(T x) = model(x)``.

Exact transforms (:func:`rot90`, :func:`flip_w`, :func:`flip_h`) permute pixels, so with a deterministic
element grid the error is at float rounding. :func:`rotation` rotates by any angle with bilinear
interpolation inside a centred disk (outside it the image is zeroed, before and after rotating), so its
error is statistical: it measures how equivariant a network is at that angle.
"""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .groups import E2, SE2, Group

__all__ = ["Transform", "rot90", "flip_w", "flip_h", "transpose", "antitranspose", "rotation", "equivariance_error",
           "equivariance_curve", "exact_size_problem", "transform_features"]


@dataclass(frozen=True)
class Transform:
    """A planar transformation: a group element (angle, mirror) and its action on the last two dims."""

    name: str
    angle: float
    mirror: int
    spatial: Callable[[torch.Tensor], torch.Tensor]
    disk: bool = False  # restrict to the centred disk (arbitrary-angle rotations)

    def restrict(self, x: torch.Tensor) -> torch.Tensor:
        """Zero everything outside the centred disk (identity for exact transforms)."""
        return x * disk_mask(x.shape[-2], x.shape[-1], x.device, x.dtype) if self.disk else x

    def image(self, x: torch.Tensor) -> torch.Tensor:
        """T acting on images (or on any tensor over the last two dims, without group permutation)."""
        return self.restrict(self.spatial(self.restrict(x)))

    def element(self, group: Group, dtype=torch.float64, device=None) -> torch.Tensor:
        if self.mirror == -1 and group.element_rank == 0:
            raise ValueError(f"{self.name} contains a mirror: SE2 features have no mirrored elements (use E2)")
        angle = torch.tensor(self.angle, dtype=dtype, device=device)
        return group.make(angle, torch.tensor(float(self.mirror), dtype=dtype, device=device))

    def permutation(self, elements: torch.Tensor, atol: float = 1e-6) -> torch.Tensor:
        """σ as a ``[S, G]`` index tensor: σ(j) = index of t·g_j among the elements of each set."""
        group = _group_of(elements)
        g = elements.detach()
        moved = group.multiply(self.element(group, g.dtype, g.device), g)  # [S, G(, 2)]
        diff = group.angle(moved)[:, :, None] - group.angle(g)[:, None, :]
        dist = (torch.remainder(diff + math.pi, 2 * math.pi) - math.pi).abs()
        dist = dist + (group.mirror(moved)[:, :, None] - group.mirror(g)[:, None, :]).abs()
        best, sigma = dist.min(-1)
        if bool((best > atol).any()):
            raise ValueError(
                f"the element set is not closed under {self.name}: equivariance of group features needs "
                "elements that the transform permutes (e.g. a deterministic C_n grid with n a multiple of 4)"
            )
        return sigma

    def features(self, x: torch.Tensor, elements: torch.Tensor) -> torch.Tensor:
        """T′ on group features ``[B, C, G, H, W]`` with their elements."""
        return transform_features(x, elements, self)


def transform_features(x: torch.Tensor, elements: torch.Tensor, transform: Transform) -> torch.Tensor:
    if x.dim() != 5:
        raise ValueError(f"x must have shape [B, C, G, H, W], got {tuple(x.shape)}")
    if elements.shape[1] != x.shape[2]:
        raise ValueError(f"x has {x.shape[2]} group elements but elements lists {elements.shape[1]}")
    elements = _group_of(elements).as_elements(elements)
    sigma = transform.permutation(elements)  # [S, G]
    y = transform.image(x)
    index = sigma.expand(x.shape[0], -1)[:, None, :, None, None].expand(-1, x.shape[1], -1, *x.shape[-2:])
    return torch.gather(y, 2, index)


def rot90(k: int = 1) -> Transform:
    """Rotation by k·90° (``torch.rot90(x, k, dims=(-2, -1))``); the group element has angle k·π/2."""
    return Transform(f"rot90(k={k})", (k % 4) * math.pi / 2, 1, lambda x: torch.rot90(x, k, (-2, -1)))


def flip_w() -> Transform:
    """Flip along W (x → −x); the E2 element (0, −1)."""
    return Transform("flip_w", 0.0, -1, lambda x: x.flip(-1))


def flip_h() -> Transform:
    """Flip along H (y → −y); the E2 element (π, −1)."""
    return Transform("flip_h", math.pi, -1, lambda x: x.flip(-2))


def transpose() -> Transform:
    """Flip about the main diagonal (``x.transpose(-2, -1)``): the E2 element (π/2, −1)."""
    return Transform("transpose", math.pi / 2, -1, lambda x: x.transpose(-2, -1))


def antitranspose() -> Transform:
    """Flip about the anti-diagonal (``rot90(x, 2).transpose(-2, -1)``): the E2 element (3π/2, −1)."""
    return Transform("antitranspose", 3 * math.pi / 2, -1, lambda x: torch.rot90(x, 2, (-2, -1)).transpose(-2, -1))


def rotation(angle: float) -> Transform:
    """Rotation by ``angle`` radians about the image centre (bilinear), restricted to the centred disk.

    Same direction as :func:`rot90`: ``rotation(math.pi / 2)`` equals ``rot90(1)`` inside the disk.
    """
    angle = float(angle)
    return Transform(f"rotation({angle:.4f})", angle % (2 * math.pi), 1, lambda x: _rotate(x, angle), disk=True)


def _rotate(x: torch.Tensor, angle: float) -> torch.Tensor:
    shape = x.shape
    flat = x.reshape(-1, 1, *shape[-2:])
    c, s = math.cos(angle), math.sin(angle)
    theta = torch.tensor([[c, -s, 0.0], [s, c, 0.0]], dtype=x.dtype, device=x.device)
    grid = F.affine_grid(theta.expand(flat.shape[0], 2, 3), list(flat.shape), align_corners=True)
    return F.grid_sample(flat, grid, mode="bilinear", padding_mode="zeros", align_corners=True).reshape(shape)


def disk_mask(h: int, w: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """1 inside the disk inscribed in the h×w grid (pixel centres on [-1, 1]²), else 0."""
    ys = torch.linspace(-1.0, 1.0, h, device=device, dtype=torch.float64)
    xs = torch.linspace(-1.0, 1.0, w, device=device, dtype=torch.float64)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return ((yy**2 + xx**2) <= 1.0 + 1e-9).to(dtype)


def _group_of(elements: torch.Tensor) -> Group:
    if not isinstance(elements, torch.Tensor) or elements.dim() not in (2, 3):
        raise ValueError("elements must be a [S, G] (SE2) or [S, G, 2] (E2) tensor")
    return SE2 if elements.dim() == 2 else E2


def _call(module, x, elements):
    return module(x) if elements is None else module(x, elements)


def equivariance_error(module, x: torch.Tensor, transform: Transform, elements: torch.Tensor | None = None,
                       seed: int = 0) -> float:
    """Relative equivariance error ``‖f(T x) − T′ f(x)‖ / ‖T′ f(x)‖`` of a layer, block or model.

    * ``x`` an image ``[B, C, H, W]`` (``elements=None``), or group features ``[B, C, G, H, W]`` with their
      ``elements`` (then the input is transformed by T′ and the module is called as ``module(x, elements)``);
    * a module returning ``(features, elements)`` is compared on its group features (equivariance);
      one returning a tensor, e.g. logits, is compared unchanged (invariance).

    Both forwards run with the same random seed, so random samplers draw the same offsets; the output
    elements must then be permuted by the transform (always true for deterministic grids whose size
    is a multiple of the rotation order), else a ``ValueError`` explains why.

    The measurement leaves ``module`` as it was: in train mode the forwards would advance BatchNorm
    running statistics and the Gumbel-temperature counters, so every buffer is restored afterwards
    (and the global RNG state, which the seeded forwards fork).

    For an exact transform (:func:`rot90`, :func:`flip_w`, :func:`flip_h`) on an input whose size the
    module's max pools cannot split symmetrically (e.g. the presets' two 2×2 pools need H and W
    divisible by 4), a ``UserWarning`` says that the error cannot be at rounding level
    (:func:`exact_size_problem`). So does an exact transform that does not permute the model's group
    elements (:func:`pgcnn_triton.symmetries.symmetry_problem`: rot90 on E2 with N = 4, whose rotations
    are multiples of 180°; any flip on SE2), naming the group and N.

    What to expect (fp32): exact transforms on an exactly equivariant module, ~1e-7 (≤ 3e-6 measured on
    the presets); arbitrary angles, a statistical error (README, "Measuring equivariance").
    """
    if not isinstance(transform, Transform):
        raise TypeError(f"transform must be a Transform (rot90(), flip_w(), ...), got {type(transform).__name__}")
    if not transform.disk:
        warn_if_size_breaks_exactness(module, x.shape[-2], x.shape[-1], transform)
        warn_if_not_a_symmetry(module, transform, elements)
    with _state_restored(module):
        actual, expected = transformed_outputs(module, x, transform, elements, seed)
    return float((actual - expected).detach().norm() / expected.detach().norm())


def warn_if_not_a_symmetry(module, transform: Transform, elements=None) -> None:
    """Warn (``UserWarning``) if ``transform`` does not permute the group elements of ``module``
    (:func:`pgcnn_triton.symmetries.symmetry_problem`). Given ``elements``, the permutation itself checks them."""
    from .symmetries import symmetry_problem

    problem = None if elements is not None else symmetry_problem(module, transform)
    if problem:
        warnings.warn(f"{transform.name} is not an exact symmetry of this model: {problem}. The measured error "
                      "is not expected to be at rounding level.", UserWarning, stacklevel=3)


def transformed_outputs(module, x, transform, elements=None, seed: int = 0):
    """``(f(T x), T′ f(x))`` as tensors (group features restricted to the disk for arbitrary angles),
    from two forwards with the same seed; the module's buffers are *not* restored (see
    :func:`equivariance_error`, which does)."""
    if elements is None:
        x0 = transform.restrict(x)
        tx = transform.image(x0)
    else:
        x0 = transform.restrict(x)
        tx = transform.features(x0, elements)
    out = _seeded(module, x0, elements, seed)
    out_t = _seeded(module, tx, elements, seed)
    if isinstance(out, tuple):
        feats, g_out = out[:2]  # (features, elements[, mask])
        feats_t, g_out_t = out_t[:2]
        if g_out.shape != g_out_t.shape or not torch.allclose(g_out.detach(), g_out_t.detach()):
            raise ValueError("the module drew different output elements for x and T x; use eval mode or a "
                             "deterministic grid")
        expected = transform.features(feats, g_out)
        actual = transform.restrict(feats_t)
    else:
        expected, actual = out, out_t
    return actual, expected


def exact_size_problem(module, height: int, width: int) -> str | None:
    """Why an ``height × width`` input cannot give exact rot90 / flip equivariance, or None if it can.

    A max pool with window k and stride s is symmetric under rot90 and flips only if it tiles its
    input exactly, (size − k) % s == 0 (2×2 pools: an even size); otherwise the last rows or columns
    are dropped on one side only. The sizes are followed through the module's spatial stages
    (:func:`pgcnn_triton.models.control.spatial_stages`); 'same' and 'valid' convs with odd kernels
    are symmetric at any size.
    """
    from .models.control import spatial_stages

    if not isinstance(module, torch.nn.Module):  # a plain callable: no layers to read the pooling from
        return None
    stages = spatial_stages(module)
    pools = [(k, s) for kind, k, s in stages if kind == "pool"]
    if not pools:
        return None
    for side, size in (("H", height), ("W", width)):
        for kind, k, p in stages:
            if kind == "conv":
                size = size + 2 * p - k + 1
            elif size >= k and (size - k) % p:
                rule = _size_rule(stages)
                return (f"{side} = {height if side == 'H' else width} reaches a {k}x{k} max pool (stride {p}) at "
                        f"size {size}, which it cannot split evenly{rule}")
            else:
                size = (size - k) // p + 1 if size >= k else 0
    return None


def _size_rule(stages) -> str:
    """E.g. ``": use H and W divisible by 4"`` when, up to the last pool, every conv keeps the size and
    every pool's window is its stride; else ``""``."""
    last = max(i for i, (kind, _, _) in enumerate(stages) if kind == "pool")
    before = stages[:last + 1]
    if all(k == s if kind == "pool" else 2 * s == k - 1 for kind, k, s in before):
        factor = math.prod(k for kind, k, _ in before if kind == "pool")
        return f": use H and W divisible by {factor}"
    return ""


def warn_if_size_breaks_exactness(module, height: int, width: int, transform: Transform) -> None:
    """Warn (``UserWarning``) if :func:`exact_size_problem` finds one for an exact ``transform``."""
    problem = exact_size_problem(module, height, width)
    if problem:
        warnings.warn(f"{transform.name} equivariance cannot be exact for a {height}x{width} input: {problem}. "
                      "The measured error includes the asymmetric pooling.", UserWarning, stacklevel=3)


@contextmanager
def _state_restored(module):
    """Restore every buffer of ``module`` (BatchNorm statistics, sampler counters) on exit."""
    saved = [(b, b.detach().clone()) for b in module.buffers()] if isinstance(module, torch.nn.Module) else []
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)


def equivariance_curve(module, x: torch.Tensor, angles, elements: torch.Tensor | None = None,
                       seed: int = 0) -> list[tuple[float, float]]:
    """``[(angle, equivariance_error at rotation(angle)), ...]``: how equivariant a (partial) network is
    as a function of the rotation angle (docs/method.md#measuring-equivariance). Angles in radians."""
    return [(float(a), equivariance_error(module, x, rotation(float(a)), elements, seed)) for a in angles]


def _seeded(module, x, elements, seed):
    devices = [x.device] if x.is_cuda else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return _call(module, x, elements)
