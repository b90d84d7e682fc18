"""assert_equivariant / assert_invariant: pass on equivariant models, never vacuously, and fail with the
error, the tolerance, the place and the likely cause (issue 25, items 1 and 4)."""

import warnings

import pytest
import torch

from pgcnn_triton import PartialGCNN
from pgcnn_triton.equivariance import flip_w, rot90, rotation
from pgcnn_triton.testing import assert_equivariant, assert_invariant, random_images
from tests.testing.conftest import SMALL, RotationBlindLift

X28 = random_images(1, 1, 28, seed=1)


def failure(call, *args, **kwargs) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(AssertionError) as info:
            call(*args, **kwargs)
    return str(info.value)


def test_passes_on_exact_models_and_returns_the_error(se2_model, e2_net):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert assert_invariant(se2_model, X28, rot90(1)) <= 1e-5
        for t in (rot90(1), flip_w(), rot90(3)):
            assert assert_invariant(e2_net, X28[:, :, :12, :12], t) <= 1e-5


def test_kernel_that_ignores_the_rotation_is_named(blind_net):
    text = failure(assert_invariant, blind_net, X28[:, :, :12, :12], rot90(1))
    assert "rot90(k=1) invariance of Net failed: relative error" in text and "> tolerance 1.0e-04" in text
    assert "largest deviation: sample" in text and "class" in text
    assert "first layer that breaks it: lift (RotationBlindLift)" in text
    assert "that layer is not equivariant" in text


def test_layer_failure_names_channel_group_slot_and_pixel():
    from pgcnn_triton import SamplingConfig

    blind = RotationBlindLift(1, 2, SamplingConfig(group="SE2", num_elements=4, method="deterministic",
                                                   partial=False)).eval()
    text = failure(assert_equivariant, blind, X28[:, :, :9, :9], rot90(1))
    assert "channel" in text and "group slot" in text and "angle" in text and "pixel (h=" in text


def test_pooling_of_the_wrong_size_is_the_cause(pool3_net):
    text = failure(assert_invariant, pool3_net, X28[:, :, :14, :14], rot90(1))
    assert "first layer that breaks it: pool (SpatialMaxPool)" in text
    assert "input size: H = 14 reaches a 3x3 max pool (stride 3)" in text and "divisible by 3" in text


def test_wrong_input_size_is_the_cause(se2_model):
    with pytest.warns(UserWarning, match="cannot be exact for a 30x30 input"):
        with pytest.raises(AssertionError, match=r"(?s)blocks\.0\.pool.*input size: H = 30 .*divisible by 4"):
            assert_invariant(se2_model, random_images(2, 1, 30), rot90(1))


def test_transform_that_is_not_a_symmetry_of_the_elements(e2_net):
    small = PartialGCNN(**{**SMALL, "group": "E2", "num_elements": 4}).eval()
    with pytest.warns(UserWarning, match=r"E2 with N = 4 \(2 rotations by multiples of 180°"):
        with pytest.raises(AssertionError, match=r"(?s)transform not a symmetry of the elements.*E2 N = 8, 16"):
            assert_invariant(small, X28, rot90(1))
    se2 = PartialGCNN(**SMALL).eval()
    assert "no mirror is a symmetry" in failure(assert_invariant, se2, X28, flip_w())


def test_training_mode_dropout_and_partial_layers_are_named():
    torch.manual_seed(0)
    model = PartialGCNN(**{**SMALL, "dropout": 0.5}).train()
    assert "training mode with dropout (p = 0.5)" in failure(assert_invariant, model, X28, rot90(1))
    assert model.training
    part = PartialGCNN(**{**SMALL, "method": "random", "partial": True}).eval()
    with torch.no_grad():
        part.blocks[1].gconv1.sampler.probs[0] = 0.5
    text = failure(assert_invariant, part, X28, rot90(1))
    assert "partial layers: blocks.1.gconv1 θ = 0.5" in text and "not exactly equivariant" in text


def test_autocast_sets_the_tolerance_and_is_named(se2_model):
    from pgcnn_triton.testing.tolerances import compute_dtype, default_rtol

    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert default_rtol(rot90(1), compute_dtype(X28, se2_model)) == 5e-2
        assert assert_invariant(se2_model, X28, rot90(1)) <= 5e-2
        text = failure(assert_invariant, se2_model, random_images(1, 1, 29), rot90(1))   # 0.2–0.4 at odd sizes
    assert "(rtol=0.05, atol=0, bfloat16, exact transform)" in text and "autocast to bfloat16 on cpu" in text


def test_rough_inputs_at_arbitrary_angles_are_named(se2_model):
    text = failure(assert_invariant, se2_model, X28, rotation(0.3), rtol=1e-3)
    assert "arbitrary-angle transform" in text and "rough input" in text and "smooth=True" in text


def test_never_vacuous(se2_model):
    with pytest.raises(ValueError, match="maps every input to itself"):
        assert_invariant(se2_model, X28, rot90(4))
    with pytest.raises(ValueError, match="maps every input to itself"):
        assert_invariant(se2_model, X28, rotation(0.0))
    zero = PartialGCNN(**SMALL).eval()
    with torch.no_grad():
        zero.head.weight.zero_()
        zero.head.bias.zero_()
    with pytest.raises(ValueError, match="all zero"):
        assert_invariant(zero, X28, rot90(1))
    with pytest.warns(UserWarning, match="x is unchanged by rot90"):
        assert_invariant(se2_model, torch.ones(1, 1, 28, 28), rot90(1))
    with pytest.raises(TypeError, match="use assert_equivariant"):
        assert_invariant(se2_model.lift, X28, rot90(1))
