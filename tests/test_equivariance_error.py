"""equivariance_error: warns when the input size cannot be exact for the module's pooling, and leaves
the module's state (BatchNorm statistics, Gumbel counters) untouched (issue 15, items 4 and 5)."""

import warnings

import pytest
import torch

from pgcnn_triton import PartialGCNN
from pgcnn_triton.equivariance import equivariance_error, exact_size_problem, flip_w, rot90, rotation

# the rotmnist presets' layout (two 2x2 pools between 'same' 7x7 convs, a final 'valid' conv), made small
FULL_C4 = dict(in_channels=1, num_classes=3, hidden=3, kernel_hidden=4, pool_blocks=(0, 1), block_width_factors=None,
               num_blocks=2, num_elements=4, method="deterministic", partial=False)


def warm(model):
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 1, 28, 28))
    return model.eval()


def test_sizes_the_pooling_cannot_split_warn_and_are_not_exact():
    torch.manual_seed(0)
    model = warm(PartialGCNN(**FULL_C4))
    for size in (28, 32):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert equivariance_error(model, torch.randn(2, 1, size, size), rot90(1)) <= 1e-5
    for size in (29, 30, 33):
        with pytest.warns(UserWarning, match=rf"rot90\(k=1\) equivariance cannot be exact for a {size}x{size} "
                                             r"input.*use H and W divisible by 4"):
            assert equivariance_error(model, torch.randn(2, 1, size, size), rot90(1)) > 1e-3
    assert exact_size_problem(model, 32, 36) is None and "W = 34" in exact_size_problem(model, 32, 34)
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # arbitrary-angle rotations are statistical anyway: no warning
        equivariance_error(model, torch.randn(1, 1, 33, 33), rotation(0.3))
        equivariance_error(model.lift, torch.randn(1, 1, 33, 33), rot90(1))   # no pooling: any size is exact


@pytest.mark.parametrize("transform", [rot90(1), flip_w()])
def test_train_mode_measurement_leaves_the_state_alone(transform):
    torch.manual_seed(0)
    model = PartialGCNN(**{**FULL_C4, "group": "E2", "partial": True, "method": "random"}).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 1, 28, 28)
    rng = torch.get_rng_state()
    equivariance_error(model, x, transform)
    after = model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed == [] and torch.equal(torch.get_rng_state(), rng)
    assert model.training


def test_transforms_that_do_not_permute_the_elements_warn_naming_group_and_n():
    # issue 24 item 6: rot90 on E2 with N = 4 (rotations {0, π}) and flips on SE2 gave errors with no warning
    torch.manual_seed(0)
    x = torch.randn(1, 1, 28, 28)
    e2_n4 = PartialGCNN(**{**FULL_C4, "group": "E2"}).eval()
    with pytest.warns(UserWarning, match=r"rot90\(k=1\) is not an exact symmetry of this model: .*E2 with N = 4"):
        assert equivariance_error(e2_n4, x, rot90(1)) > 1e-2
    se2 = PartialGCNN(**FULL_C4).eval()
    with pytest.warns(UserWarning, match=r"flip_w is not an exact symmetry .*SE2 with N = 4.*group='E2'"):
        assert equivariance_error(se2, x, flip_w()) > 1e-2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert equivariance_error(e2_n4, x, rot90(2)) <= 1e-5 and equivariance_error(e2_n4, x, flip_w()) <= 1e-5
