"""Hypothesis strategies for equivariance tests, and a settings profile for CI.

This is the one module of the library that imports hypothesis (``pip install hypothesis``, in the
``test`` extra). Model-level:

* :func:`exact_transforms` — the rot90 / flip compositions that can be exact for a model: its element
  grid permutes under them and no layer breaks them (a learnable final pooling or a translation-only
  last conv removes them, :mod:`pgcnn_triton.layer_symmetry`);
* :func:`inputs_for` — batches of the model's channels at sizes that it takes and that keep its pooling
  exact, optionally smooth (band-limited) for arbitrary-angle tests;
* :func:`rotation_angles` — arbitrary angles (radians), away from the exact multiples of 90°.

Layer-level, for your own blocks: :func:`sampling_configs`, :func:`thetas`, :func:`group_elements`.

**CI profile.** ``CI_SETTINGS`` (also registered as the profile ``"pgcnn-ci"``) is deterministic
(``derandomize=True``: the same examples on every run and machine, no example database), has no
deadline (first calls compile and warm caches), no shrinking (a failure is reported at once: the drawn
inputs are seeds and sizes, which shrinking would not make clearer, and on a preset it took ~25 s) and
5 examples: a forward of a preset costs ~0.1–0.6 s on
2 CPU cores and each example takes 2, so 5 examples of a preset take ~2–6 s. Use it as a decorator,
``@CI_SETTINGS``, or ``settings.load_profile("pgcnn-ci")`` in your ``conftest.py``; raise
``max_examples`` for small custom models, where a forward is milliseconds.
"""

from __future__ import annotations

import math

import torch
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from ..groups import get_group
from ..sampling import SamplingConfig
from ..symmetries import exact_transforms_of, excluded_transforms_of
from .inputs import _first_in_channels, check_input_size, exact_sizes, random_images

__all__ = ["CI_SETTINGS", "exact_transforms", "inputs_for", "rotation_angles", "sampling_configs", "thetas",
           "group_elements"]

CI_SETTINGS = settings(max_examples=5, deadline=None, derandomize=True, database=None, print_blob=True,
                       phases=(Phase.explicit, Phase.reuse, Phase.generate),
                       suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("pgcnn-ci", CI_SETTINGS)


def exact_transforms(model_or_group, num_elements: int | None = None) -> st.SearchStrategy:
    """The transforms under which ``model_or_group`` can be exactly equivariant
    (:func:`~pgcnn_triton.symmetries.exact_transforms_of`): a model (its elements and its layers, the
    head included), a ``SamplingConfig``, or a group name with ``num_elements=N``. Raises a
    ``ValueError`` if there are none, saying why (N = 1, SE2 N odd, a learnable final pooling, ...)."""
    transforms = exact_transforms_of(model_or_group, num_elements)
    if not transforms:
        reasons = list(dict.fromkeys(why for _, why in excluded_transforms_of(model_or_group, num_elements)))
        raise ValueError("exact_transforms: no rot90 / flip can be exact for this model: " + "; ".join(reasons)
                         + ". Test arbitrary angles with rotation_angles() instead, or no symmetry at all")
    return st.sampled_from(transforms)


def inputs_for(model, batch_sizes=(1, 2), sizes: int | list[int] = 2, *, min_size: int = 8, smooth: bool = False,
               dtype=torch.float32, device=None) -> st.SearchStrategy:
    """Inputs ``[B, in_channels, S, S]`` for ``model``: B from ``batch_sizes``, S among the
    ``sizes`` smallest sizes ≥ ``min_size`` that the model takes and that keep its pooling exact (an
    int; :func:`~pgcnn_triton.testing.exact_sizes`, the presets: 28, 32; the CIFAR-10 full presets: 32
    only) or from an explicit list (a ``ValueError`` names a size the model refuses), seeded
    standard-normal values (``smooth=True``: band-limited, for :func:`rotation_angles`)."""
    channels = getattr(model, "input_channels", None) or _first_in_channels(model)
    side = exact_sizes(model, sizes, start=min_size) if isinstance(sizes, int) else list(sizes)
    for size in side:
        check_input_size(model, size, "inputs_for")
    return st.builds(lambda b, s, seed: random_images(b, channels, s, smooth=smooth, seed=seed, dtype=dtype,
                                                      device=device),
                     st.sampled_from(list(batch_sizes)), st.sampled_from(side), st.integers(0, 2**31 - 1))


def rotation_angles(low: float = 0.05, high: float = 2 * math.pi - 0.05,
                    avoid_exact: float = 0.05) -> st.SearchStrategy:
    """Angles in radians in [low, high], at least ``avoid_exact`` from the multiples of 90° (where a C4
    model is exact and the test would not be about arbitrary angles)."""
    def far(a):
        return abs(math.remainder(a, math.pi / 2)) >= avoid_exact

    return st.floats(low, high, allow_nan=False, allow_infinity=False).filter(far)


def thetas(low: float = 0.05, high: float = 1.0) -> st.SearchStrategy:
    """θ values for partial layers (the arc is ±π|θ|), in [low, high]."""
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


def sampling_configs(group: str | None = None, num_elements=(4, 8), method=("random", "deterministic"),
                     partial=(False, True), shape_mode=("dynamic", "static")) -> st.SearchStrategy:
    """:class:`~pgcnn_triton.sampling.SamplingConfig` s for layer tests, in deterministic evaluation.
    ``group`` None draws SE2 and E2; each other argument is a value or a tuple to draw from."""
    def pick(value):
        return st.sampled_from(value) if isinstance(value, (tuple, list)) else st.just(value)

    groups = pick(("SE2", "E2") if group is None else get_group(group).name)
    return st.builds(lambda g, n, m, p, s: SamplingConfig(group=g, num_elements=n, method=m, partial=p,
                                                          shape_mode=s),
                     groups, pick(num_elements), pick(method), pick(partial), pick(shape_mode))


def group_elements(group, count: int | tuple[int, int] = (1, 8), sets: int = 1) -> st.SearchStrategy:
    """Element tensors ``[sets, n]`` (SE2 angles) or ``[sets, n, 2]`` (E2 angle, mirror ±1), float64,
    any angle in [0, 2π); ``count`` a fixed n or a (min, max) range."""
    g = get_group(group)
    lo, hi = (count, count) if isinstance(count, int) else count

    def build(n, data):
        angles = torch.tensor(data[0][:sets * n], dtype=torch.float64).reshape(sets, n)
        if g.element_rank == 0:
            return g.make(angles)
        mirrors = torch.tensor(data[1][:sets * n], dtype=torch.float64).reshape(sets, n)
        return g.make(angles, mirrors)

    angle = st.floats(0.0, 2 * math.pi, exclude_max=True, allow_nan=False)
    return st.integers(lo, hi).flatmap(lambda n: st.tuples(
        st.lists(angle, min_size=sets * n, max_size=sets * n),
        st.lists(st.sampled_from([1.0, -1.0]), min_size=sets * n, max_size=sets * n)).map(lambda d: build(n, d)))
