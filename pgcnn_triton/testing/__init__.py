"""Property-test the equivariance of your own model in your CI.

    from pgcnn_triton.testing import assert_equivariant, assert_invariant, check_equivariance
    from pgcnn_triton.testing.strategies import exact_transforms, inputs_for   # needs hypothesis

* :func:`assert_invariant` / :func:`assert_equivariant`: like ``torch.testing.assert_close``, with
  default tolerances by dtype and kind of transform (:mod:`.tolerances`) and failure messages naming
  where the deviation is largest and its likely cause;
* :func:`check_equivariance`: a printed table (exact transforms, a few arbitrary angles, the learned
  subset per layer), returned as an :class:`EquivarianceReport`;
* :func:`exact_transforms_of` / :func:`excluded_transforms_of`: which rot90 / flips can be exact for a
  model, its head included, and why the others cannot (:func:`layer_problems`,
  :func:`not_meant_equivariant`);
* :func:`exact_sizes`, :func:`random_images`, :func:`example_input`: inputs that the model takes
  (:func:`input_size_problem`) and that keep the pooling exact;
* :func:`rotation_curve`: a model's outputs as its input turns through a range of angles (how far a
  partial model's learned invariance reaches);
* :mod:`.strategies`: hypothesis strategies and a CI settings profile (the only module here that
  imports hypothesis).

The README section "Test your model's equivariance in CI" has a complete pytest file
(``examples/test_equivariance_ci.py``).
"""

from ..layer_symmetry import layer_problems, not_meant_equivariant
from ..symmetries import exact_transforms_of, excluded_transforms_of, symmetry_problem
from .assertions import assert_equivariant, assert_invariant
from .inputs import exact_sizes, example_input, input_size_problem, random_images
from .report import EquivarianceReport, check_equivariance
from .rotation_curve import rotate_images, rotation_curve
from .tolerances import CONTINUOUS_RTOL, EXACT_RTOL

__all__ = ["assert_equivariant", "assert_invariant", "check_equivariance", "EquivarianceReport", "exact_sizes",
           "random_images", "example_input", "input_size_problem", "exact_transforms_of", "excluded_transforms_of",
           "symmetry_problem", "layer_problems", "not_meant_equivariant", "EXACT_RTOL", "CONTINUOUS_RTOL",
           "rotation_curve", "rotate_images"]
