"""rotation_curve: outputs against continuous input rotation, for any model."""

import math

import pytest
import torch

from pgcnn_triton import PartialGCNN
from pgcnn_triton.data import rotate
from pgcnn_triton.testing import rotate_images, rotation_curve


def centroid(x):
    """A known function: the intensity centroid (x right, y up) of each image, relative to the centre."""
    h, w = x.shape[-2:]
    rows = torch.arange(h, dtype=x.dtype) - (h - 1) / 2
    cols = torch.arange(w, dtype=x.dtype) - (w - 1) / 2
    mass = x.sum((-3, -2, -1))
    right = (x.sum((-3, -2)) * cols).sum(-1) / mass
    up = -(x.sum((-3, -1)) * rows).sum(-1) / mass
    return torch.stack([right, up], -1)


def test_a_known_function_follows_the_angle_in_degrees_counter_clockwise():
    size, radius = 41, 10.0
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float64) - 20, torch.arange(size, dtype=torch.float64) - 20,
                            indexing="ij")
    blob = torch.exp(-((xx - radius) ** 2 + yy**2) / (2 * 2.0**2))[None, None]  # to the right of the centre
    angles = [-150.0, -90.0, -30.0, 0.0, 20.0, 90.0, 135.0, 180.0]
    out = rotation_curve(centroid, blob, angles)  # [A, 1, 2]
    want = torch.tensor([[radius * math.cos(math.radians(a)), radius * math.sin(math.radians(a))] for a in angles],
                        dtype=torch.float64)
    # bilinear resampling of a smooth blob moves its centroid by far less than 0.05 px (a wrong direction or
    # radians for degrees would be off by pixels)
    assert (out[:, 0] - want).abs().max() < 0.05


def test_the_turn_is_the_datasets_rotation_and_exact_at_quarter_turns():
    x = torch.rand(3, 2, 28, 28)
    for k in (-2, -1, 1, 2, 3):
        assert torch.equal(rotate_images(x, 90.0 * k), torch.rot90(x, k, dims=(-2, -1)))
    # the same resampling as the datasets' rotation (float32 grid there: ~3e-6 apart)
    assert (rotate_images(x, 33.0) - rotate(x, torch.full((3,), math.radians(33.0)))).abs().max() < 1e-5


def test_a_c4_invariant_model_gives_a_curve_that_repeats_every_90_degrees():
    torch.manual_seed(0)
    model = PartialGCNN(in_channels=1, num_classes=3, hidden=4, block_width_factors=(1, 1), num_blocks=1,
                        pool_blocks=(), kernel_size=3, kernel_hidden=8, num_elements=4, method="deterministic",
                        partial=False)
    x = torch.rand(2, 1, 15, 15)
    model.train()
    with torch.no_grad():
        model(x)  # BatchNorm statistics away from their init
    angles = [a + 90.0 * k for a in (0.0, 20.0, 55.0) for k in range(-2, 2)]
    curve = rotation_curve(model, x, angles).reshape(3, 4, 2, 3)
    assert model.training  # the model's mode is restored
    scale = curve.abs().max()
    assert (curve - curve[:, :1]).abs().max() <= 1e-5 * scale  # invariant to quarter turns, at every angle
    assert (curve[1] - curve[0]).abs().max() > 1e-3 * scale  # and not to a 20° turn: the check can fail


def test_arguments_are_checked():
    with pytest.raises(TypeError, match="image batch"):
        rotation_curve(centroid, torch.zeros(3, 8, 8), [0.0])
    with pytest.raises(ValueError, match="angles"):
        rotation_curve(centroid, torch.zeros(1, 1, 8, 8), [])
