"""Shared test helpers and hypothesis strategies."""

import math

import torch
from hypothesis import strategies as st


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """Relative-norm error ‖a − b‖ / ‖b‖."""
    return float((a - b).detach().norm() / b.detach().norm())


def angular_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (torch.remainder(a - b + math.pi, 2 * math.pi) - math.pi).abs()


kernel_sizes = st.sampled_from([3, 5, 7])
odd_sizes = st.sampled_from([7, 9, 11])
channels = st.integers(1, 3)
batches = st.integers(1, 2)
