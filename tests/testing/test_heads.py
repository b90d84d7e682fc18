"""The testing kit judges a model with its head: which transforms can be exact, which input sizes it takes,
model errors raised (never NaN rows), and warnings before checking a model not meant to be equivariant
(issue 32, item 6)."""

import warnings

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pgcnn_triton import LiftingConv, PartialGCNN, SamplingConfig
from pgcnn_triton.equivariance import equivariance_error, flip_w, rot90
from pgcnn_triton.symmetries import exact_transforms_of
from pgcnn_triton.testing import assert_invariant, check_equivariance, exact_sizes, example_input, random_images
from pgcnn_triton.testing.strategies import CI_SETTINGS, exact_transforms, inputs_for
from tests.testing.conftest import SMALL


@pytest.fixture(scope="module")
def cifar10_full():
    torch.manual_seed(0)
    return PartialGCNN.from_preset("cifar10-se2-full").eval()


def names(transforms):
    return [t.name for t in transforms]


def test_learnable_final_pooling_and_translation_only_last_conv_remove_the_spatial_transforms(cifar10_full):
    from pgcnn_triton.testing import excluded_transforms_of

    e2 = PartialGCNN.from_preset("cifar10-e2-full")
    t2_last = PartialGCNN.from_preset("cifar100-e2-full")
    assert names(exact_transforms_of(cifar10_full)) == [] and names(exact_transforms_of(e2)) == []
    excluded = excluded_transforms_of(cifar10_full)
    assert len(excluded) == 7 and "head: learnable final pooling `final_pool`" in excluded[0][1]
    assert "8 elements × 2×2 positions" in excluded[0][1]
    # under E2 the fixed element gives a kernel constant along x: flip_w stays exact (measured ~4e-7)
    assert names(exact_transforms_of(t2_last)) == ["flip_w"]
    assert "head: translation-only last conv `last_conv`" in dict(
        (t.name, why) for t, why in excluded_transforms_of(t2_last))["rot90(k=1)"]
    assert len(names(exact_transforms_of(PartialGCNN.from_preset("cifar100-se2-full")))) == 3  # max-pool head
    with pytest.raises(ValueError, match="no rot90 / flip can be exact for this model: head: learnable final"):
        exact_transforms(cifar10_full)


def test_sizes_are_those_the_model_takes(cifar10_full):
    assert exact_sizes(cifar10_full, 3) == [32]                     # a 2×2 final map: 32–35 px, even: 32
    assert example_input(cifar10_full).shape == (2, 3, 32, 32)
    assert exact_sizes(PartialGCNN.from_preset("cifar100-se2-full"), 2) == [28, 32]
    with pytest.raises(ValueError, match=r"inputs_for: PartialGCNN refuses 28x28 inputs: .*use 32x32 to 35x35"):
        inputs_for(cifar10_full, sizes=[28, 32])
    with pytest.raises(ValueError, match="example_input: PartialGCNN refuses 36x36 inputs"):
        example_input(cifar10_full, size=36)


@CI_SETTINGS
@given(data=st.data())
def test_inputs_for_draws_only_sizes_the_model_takes(cifar10_full, data):
    assert data.draw(inputs_for(cifar10_full, sizes=3)).shape[-2:] == (32, 32)


def test_a_model_error_is_raised_not_reported_as_nan_rows(cifar10_full):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"^check_equivariance: PartialGCNN raised ValueError on x \[1, 3, 28, 28\]: "
                                             r"learnable_final_pooling was sized for 32 .*use 32x32 to 35x35; "
                                             r"example_input\(model\) picks one it takes\)$"):
            check_equivariance(cifar10_full, random_images(1, 3, 28), angles=(), show=False)


def test_a_row_that_cannot_be_measured_is_labelled(capsys):
    lift = LiftingConv(1, 2, 3, kernel_hidden=4, sampling=SamplingConfig(group="SE2", num_elements=4,
                                                                          method="deterministic")).eval()
    report = check_equivariance(lift, random_images(1, 1, 8), transforms=[rot90(1), flip_w()], angles=(30.0,))
    out = capsys.readouterr().out
    rows = {r["name"]: r for r in report.transforms}
    assert rows["rot90(k=1)"]["passed"] and rows["flip_w"]["error"] is None      # SE2 features have no mirror
    assert "flip_w contains a mirror" in rows["flip_w"]["problem"] and "nan" not in out
    assert "error: flip_w contains a mirror" in out
    assert report.angles == [(30.0, None)] and "not closed under rotation" in report.angle_problem
    assert "30°: error" in out and "error: the element set is not closed" in out


def partial_e2(theta=1.0, mirror_logit=1.0):
    torch.manual_seed(0)
    model = PartialGCNN(**{**SMALL, "group": "E2", "method": "random", "partial": True}).eval()
    with torch.no_grad():
        model.blocks[1].gconv1.sampler.probs[0] = theta
        model.blocks[1].gconv2.sampler.probs[-1] = mirror_logit
    return model


def warned_before_the_first_forward(model, check):
    """(warning texts, whether every warning came before the model's first forward)."""
    seen, at_first_forward = [], []
    hook = model.register_forward_pre_hook(lambda *_: at_first_forward.append(len(seen)) if not at_first_forward
                                           else None)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            seen = caught
            try:
                check()
            except AssertionError:
                pass
    finally:
        hook.remove()
    texts = [str(w.message) for w in caught]
    return texts, bool(at_first_forward) and at_first_forward[0] == len(texts) and texts


def test_checks_of_partial_models_warn_first_naming_the_layers():
    x = random_images(1, 1, 28)
    model = partial_e2(theta=0.5, mirror_logit=-1.0)      # θ = 0.5; mirror keep probability sigmoid(-2) = 0.12
    texts, first = warned_before_the_first_forward(model, lambda: check_equivariance(
        model, x, transforms=[rot90(1)], angles=(), show=False))
    assert first and "not meant to be exactly invariant" in texts[0]
    assert "blocks.1.gconv1 θ = 0.5" in texts[0] and "blocks.1.gconv2 mirror probability 0.12" in texts[0]
    texts, first = warned_before_the_first_forward(model, lambda: assert_invariant(model, x, flip_w()))
    assert first and "blocks.1.gconv2 mirror probability 0.12" in texts[0]
    mirror_only = partial_e2(mirror_logit=-1.0)
    texts, first = warned_before_the_first_forward(mirror_only, lambda: equivariance_error(mirror_only, x, rot90(1)))
    assert texts == []                                    # a closed mirror gate does not break rotations
    texts, _ = warned_before_the_first_forward(mirror_only, lambda: equivariance_error(mirror_only, x, flip_w()))
    assert len(texts) == 1 and "under flip_w: partial layers do not sample the full element grid" in texts[0]


def test_checks_of_a_model_with_such_a_head_warn_first(cifar10_full):
    texts, first = warned_before_the_first_forward(cifar10_full, lambda: check_equivariance(
        cifar10_full, random_images(1, 3, 32), transforms=[rot90(1)], angles=(), show=False))
    assert first and "learnable final pooling `final_pool`" in texts[0]


def test_a_frozen_copy_keeps_its_head_problem():
    from pgcnn_triton.symmetries import symmetry_problem

    torch.manual_seed(0)
    model = PartialGCNN(**{**SMALL, "group": "E2", "num_elements": 4}, last_conv_t2=True).eval()
    frozen = model.freeze(example_input=random_images(1, 1, 28))     # no lifting layer left to read elements from
    assert symmetry_problem(frozen, rot90(2)).startswith("head: translation-only last conv `last_conv`")
    assert symmetry_problem(frozen, flip_w()) is None
    x = random_images(1, 1, 28)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert equivariance_error(frozen, x, flip_w()) <= 1e-5 < 1e-2 <= equivariance_error(frozen, x, rot90(2))


def test_layers_that_cannot_be_proved_symmetric_are_named():
    from torch import nn

    from pgcnn_triton import GroupConv
    from pgcnn_triton.testing import excluded_transforms_of

    full = SamplingConfig(group="E2", num_elements=8, method="deterministic", partial=False)
    net = nn.Module()
    net.stem = nn.Conv2d(1, 1, 3, padding=1)                       # an unconstrained kernel
    net.lift = LiftingConv(1, 2, 3, kernel_hidden=4, sampling=full)
    net.mix = nn.Conv3d(2, 2, 1)                                   # pointwise: no spatial kernel, not flagged
    net.t2 = GroupConv(2, 2, 3, kernel_hidden=4, sampling=SamplingConfig(group="SE2", num_elements=1,
                                                                                 partial=False))
    assert exact_transforms_of(net) == []
    why = dict((t.name, w) for t, w in excluded_transforms_of(net))["flip_w"]
    assert "layer: `stem` is a plain Conv2d (3×3 kernel)" in why and "`mix`" not in why
    assert "layer: `t2` (GroupConv) has one element, translations only" in why
