"""The stabilizer groups of SE(2) and E(2): elements, group law, action on R² and kernel coordinates.

Conventions (docs/method.md#group-law; these are the conventions of the official code, under which the
lifting and group convolutions are exactly equivariant, docs/method.md#exact-symmetries):

* **SE2** (stabilizer SO(2)). An element is an angle φ ∈ [0, 2π), a float64 tensor ``[S, N]``.
  Product ``φ1·φ2 = (φ1 + φ2) mod 2π``; inverse ``φ⁻¹ = −φ mod 2π``.
* **E2** (stabilizer O(2)). An element is a pair (φ, m), m ∈ {+1, −1}, stored as a float64 tensor
  ``[S, N, 2]`` (``[..., 0]`` the angle, ``[..., 1]`` the mirror flag). The element means "mirror m,
  then rotate φ". Product ``(φ1, m1)·(φ2, m2) = ((φ2 + m2·φ1) mod 2π, m1·m2)`` (the official code's
  formula; its docstring states ``φ1 + m1·φ2``, which is *not* what it computes);
  inverse ``(φ, m)⁻¹ = (−m·φ mod 2π, m)``.
* **Reduced vs unreduced inverse.** The official code keeps the inverse's angle unreduced (``−φ``,
  ``−m·φ``); the product then takes it mod 2π, so every value agrees. Gradients differ in one place:
  the straight-through gradient of an *input* mirror flag flows through the relative angle
  ``φ_in + m_in·(−m_out·φ_out)``, so ``∂/∂m_in`` is the inverse's angle: ``−m_out·φ_out ∈ (−2π, 2π)``
  unreduced, ``(−m_out·φ_out) mod 2π ∈ [0, 2π)`` reduced. ``estimator="reference"`` uses the unreduced
  inverse (the original's mirror-logit gradients). ``estimator="clean"`` uses the reduced one: its
  gradient is a function of the group elements alone, not of which representative of the angle a
  sampler happened to produce, the same choice that makes every element's angle live in [0, 2π).
* **Action on R².** Coordinates are (y, x) = (row, column), PyTorch order. An element acts by the
  matrix ``M(φ, m) = [[cos φ, sin φ], [−m·sin φ, m·cos φ]]`` on the column vector (y, x) (for SE2,
  m = 1: the transpose of the textbook rotation, because of the (y, x) order). Layers evaluate
  kernels at ``M(g_out⁻¹)·(y, x)``.
* **Relative element** ``h = g_out⁻¹·g_in``; its angle enters the kernel net as ``h_φ/π − 1 ∈ [−1, 1)``
  (the identity maps to −1; not periodic, docs/method.md#relative-elements), and for E2 the mirror product
  ``m_out·m_in`` follows unnormalised. ``coordinate="periodic"`` replaces the angle by
  ``(cos h_φ, sin h_φ)`` (an extension, not in the paper).
* **Angles within :data:`ANGLE_TOLERANCE` of 2π are the identity.** The official coordinate jumps
  from +1 to −1 where the relative angle wraps from 2π to 0, and an identity pair's relative angle
  is computed as ``(−φ mod 2π) + φ``, which rounding puts on either side (0 or 2π − 1 ulp). Left
  alone, the side would decide the identity's kernel value: elements shifted by 1e-9 rad, or rounded
  to float32, changed a layer's output by 30–60 %. So a relative angle in
  ``(2π − ANGLE_TOLERANCE, 2π)`` is replaced by the equal angle ``h_φ − 2π`` (a tiny negative number
  next to 0), which keeps the coordinate continuous at the identity. ``ANGLE_TOLERANCE = 1e-6`` rad:
  about two float32 ulps at 2π (4.8e-7), so elements that went through float32 still land on the
  identity, and far below the spacing of any element grid (2π/N).
* **Element dtype.** Group maths runs in float64. Layers accept elements in any floating dtype and
  convert them to float64 at their boundary (:meth:`Group.as_elements`); integer and bool elements
  are rejected (a TypeError), since truncated angles are not the elements a layer produced.
  Callers cast the kernel-net inputs once.
"""

from __future__ import annotations

import math

import torch

TWO_PI = 2.0 * math.pi

_COORDINATES = ("official", "periodic")

#: Relative angles in (2π − ANGLE_TOLERANCE, 2π) count as the identity (see the module docstring), rad.
ANGLE_TOLERANCE = 1e-6


class Group:
    """Common interface of the stabilizer groups. Use :data:`SE2` and :data:`E2`."""

    name: str
    #: number of trailing components of one element (0: a scalar angle, 1: (angle, mirror))
    element_rank: int
    #: number of kernel-net input channels the relative element contributes (official coordinate)
    dim_stabilizer: int

    # -- elements -----------------------------------------------------------------------------
    def check_elements(self, elements: torch.Tensor, argument: str = "elements") -> None:
        if not isinstance(elements, torch.Tensor):
            raise TypeError(f"{argument} must be a torch.Tensor of {self.name} elements, got {type(elements).__name__}")
        want = 2 + self.element_rank
        if elements.dim() != want or (self.element_rank and elements.shape[-1] != 2):
            shape = "[S, N]" if self.element_rank == 0 else "[S, N, 2]"
            raise ValueError(f"{argument} must have shape {shape} for {self.name}, got {tuple(elements.shape)}")
        if not elements.is_floating_point():
            raise TypeError(f"{argument} must be a floating-point tensor of {self.name} elements (angles in "
                            f"radians; converted to float64), got dtype {elements.dtype}")

    def as_elements(self, elements: torch.Tensor, argument: str = "elements") -> torch.Tensor:
        """``elements`` checked (:meth:`check_elements`) and converted to float64, the dtype of the group maths."""
        self.check_elements(elements, argument)
        return elements.to(torch.float64)

    def angle(self, g: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def mirror(self, g: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def make(self, angle: torch.Tensor, mirror: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def grid(self, n: int, dtype=torch.float64, device=None) -> torch.Tensor:
        """Deterministic grid C_n (SE2) or D_{n/2} (E2) as a ``[1, n(, 2)]`` tensor."""
        raise NotImplementedError

    # -- group law ------------------------------------------------------------------------------
    def multiply(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Elementwise (broadcasting) product ``a·b``."""
        raise NotImplementedError

    def inverse(self, g: torch.Tensor, reduce: bool = True) -> torch.Tensor:
        """``g⁻¹``; ``reduce=False`` leaves the angle unreduced (the official code, see module doc)."""
        raise NotImplementedError

    def product(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Outer product over two element lists: ``[S, N1(,2)]`` × ``[S, N2(,2)]`` → ``[S, N1, N2(,2)]``."""
        if self.element_rank == 0:
            return self.multiply(a[:, :, None], b[:, None, :])
        return self.multiply(a[:, :, None, :], b[:, None, :, :])

    def relative(self, g_out: torch.Tensor, g_in: torch.Tensor, reduce: bool = True) -> torch.Tensor:
        """All relative elements ``g_out⁻¹·g_in``: ``[S, N_out, N_in(, 2)]`` (``reduce``: of the inverse)."""
        return self.product(self.inverse(g_out, reduce), g_in)

    # -- action on R² ---------------------------------------------------------------------------
    def matrix(self, g: torch.Tensor) -> torch.Tensor:
        """``M(g)`` acting on column vectors (y, x): shape ``[..., 2, 2]``."""
        phi = self.angle(g)
        m = self.mirror(g)
        c, s = torch.cos(phi), torch.sin(phi)
        return torch.stack([torch.stack([c, s], -1), torch.stack([-m * s, m * c], -1)], -2)

    def act(self, g: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """``M(g)·p`` for every element and point: g ``[...]``, points ``[T, 2]`` → ``[..., T, 2]``."""
        mat = self.matrix(g).to(points.dtype)
        return torch.einsum("...ij,tj->...ti", mat, points)

    # -- kernel-net coordinates -----------------------------------------------------------------
    def coordinate_dim(self, coordinate: str = "official") -> int:
        _check_coordinate(coordinate)
        return self.dim_stabilizer + (1 if coordinate == "periodic" else 0)

    def relative_coordinates(self, h: torch.Tensor, coordinate: str = "official") -> torch.Tensor:
        """Kernel-net coordinates of relative elements: ``[...]`` → ``[..., coordinate_dim]``."""
        _check_coordinate(coordinate)
        phi = self.angle(h)
        if coordinate == "official":
            # the identity must not flip to +1 under rounding (module docstring): 2π − ε → −ε
            phi = torch.where(phi > TWO_PI - ANGLE_TOLERANCE, phi - TWO_PI, phi)
            parts = [phi / math.pi - 1.0]
        else:
            parts = [torch.cos(phi), torch.sin(phi)]
        if self.element_rank:
            parts.append(self.mirror(h))
        return torch.stack(parts, -1)

    def kernel_inputs(
        self,
        g_out: torch.Tensor,
        g_in: torch.Tensor | None,
        points: torch.Tensor | None,
        coordinate: str = "official",
        reduce_inverse: bool = True,
    ) -> torch.Tensor:
        """Kernel-net input points of one layer, ``[S, N_out, N_in, T, D]`` in float64.

        * lifting (``g_in=None``): the in-disk taps acted on by ``g_out⁻¹``; N_in = 1, D = 2;
        * group conv: those taps broadcast over N_in, then the relative-element coordinates
          broadcast over the taps; D = 2 + ``coordinate_dim``;
        * pointwise (``points=None``): the relative-element coordinates only; T = 1.

        ``reduce_inverse=False`` computes ``g_out⁻¹`` as the official code does (same values, the
        original's mirror-flag gradients; see the module docstring).
        """
        parts = []
        if points is not None:
            spatial = self.act(self.inverse(g_out, reduce_inverse), points.to(torch.float64))  # [S, N_out, T, 2]
            n_in = 1 if g_in is None else g_in.shape[1]
            s = spatial.shape[0] if g_in is None else max(spatial.shape[0], g_in.shape[0])
            parts.append(spatial[:, :, None].expand(s, -1, n_in, -1, -1))
        if g_in is not None:
            rel = self.relative_coordinates(self.relative(g_out, g_in, reduce_inverse), coordinate)  # [S, N_out, N_in, d]
            t = 1 if points is None else points.shape[0]
            if parts:
                rel = rel.expand(parts[0].shape[0], -1, -1, -1)
            parts.append(rel[:, :, :, None].expand(-1, -1, -1, t, -1))
        if not parts:
            raise ValueError("kernel_inputs needs tap points, input elements, or both")
        return torch.cat(parts, -1)

    def __repr__(self) -> str:
        return self.name


class _SE2(Group):
    name = "SE2"
    element_rank = 0
    dim_stabilizer = 1

    def angle(self, g):
        return g

    def mirror(self, g):
        return torch.ones_like(g)

    def make(self, angle, mirror=None):
        return torch.remainder(angle, TWO_PI)

    def grid(self, n, dtype=torch.float64, device=None):
        return (TWO_PI * torch.arange(n, dtype=dtype, device=device) / n)[None]

    def multiply(self, a, b):
        return torch.remainder(a + b, TWO_PI)

    def inverse(self, g, reduce=True):
        return torch.remainder(-g, TWO_PI) if reduce else -g


class _E2(Group):
    name = "E2"
    element_rank = 1
    dim_stabilizer = 2

    def angle(self, g):
        return g[..., 0]

    def mirror(self, g):
        return g[..., 1]

    def make(self, angle, mirror=None):
        if mirror is None:
            mirror = torch.ones_like(angle)
        angle, mirror = torch.broadcast_tensors(angle, mirror)
        return torch.stack([torch.remainder(angle, TWO_PI), mirror.to(angle.dtype)], -1)

    def grid(self, n, dtype=torch.float64, device=None):
        if n % 2:
            raise ValueError(f"num_elements must be even for E2 (rotations × 2 mirrors), got {n}")
        rot = TWO_PI * torch.arange(n // 2, dtype=dtype, device=device) / (n // 2)
        return self.mirrored(rot[None])

    def mirrored(self, angles: torch.Tensor, mirror: torch.Tensor | float = -1.0) -> torch.Tensor:
        """``[S, R]`` angles → ``[S, 2R, 2]``: the rotations with m = +1, then the same with m = ``mirror``."""
        plus = self.make(angles, torch.ones_like(angles))
        minus = self.make(angles, torch.ones_like(angles) * mirror)
        return torch.cat([plus, minus], 1)

    def multiply(self, a, b):
        phi1, m1 = a[..., 0], a[..., 1]
        phi2, m2 = b[..., 0], b[..., 1]
        return torch.stack([torch.remainder(phi2 + m2 * phi1, TWO_PI), m1 * m2], -1)

    def inverse(self, g, reduce=True):
        phi, m = g[..., 0], g[..., 1]
        angle = -m * phi
        return torch.stack([torch.remainder(angle, TWO_PI) if reduce else angle, m], -1)


#: R² ⋊ SO(2): translations and rotations.
SE2: Group = _SE2()
#: R² ⋊ O(2): translations, rotations and mirrors.
E2: Group = _E2()

GROUPS = {"SE2": SE2, "E2": E2}


def get_group(name: str | Group) -> Group:
    """Look a group up by name (``"SE2"`` or ``"E2"``)."""
    if isinstance(name, Group):
        return name
    if not isinstance(name, str):
        raise TypeError(f"group must be 'SE2' or 'E2', got {type(name).__name__}")
    try:
        return GROUPS[name.upper()]
    except KeyError:
        raise ValueError(f"unknown group {name!r}: expected one of {sorted(GROUPS)}") from None


def _check_coordinate(coordinate: str) -> None:
    if coordinate not in _COORDINATES:
        raise ValueError(f"coordinate must be one of {_COORDINATES}, got {coordinate!r}")
