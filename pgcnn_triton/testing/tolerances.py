"""Default tolerances of the equivariance assertions, by dtype and by kind of transform.

The criterion is a norm version of ``torch.testing.assert_close``:
``‖f(T x) − T′f(x)‖ ≤ atol·√numel + rtol·‖T′f(x)‖``, i.e. the relative error
(:func:`~pgcnn_triton.equivariance.equivariance_error`) at most ``rtol`` when ``atol = 0``.

**Exact transforms** (rot90, flips, diagonal flips that permute the model's elements, at a size the
pooling splits evenly) are pixel permutations: the error is float rounding. Measured (relative error of
the logits, batch 2 at 28×28, untrained presets, AMD EPYC avx512_bf16):

* float32: 2.6e-7 – 2.8e-6 (mnist6-*, rotmnist-*, cifar10-se2-partial); default ``rtol = 1e-4``,
  36× the largest. A broken layer, a wrong size or a non-symmetry gives ≥ 1e-2;
* float64: 1.5e-16 – 2.6e-16 (mnist6-180-se2-partial, mnist6-m-e2-partial); default ``1e-10``;
* bfloat16 (autocast or bf16 weights): within the 2e-2 that ``tests/models/test_bf16.py`` allows;
  default ``5e-2``; float16: default ``1e-2``.

**Arbitrary angles** (:func:`~pgcnn_triton.equivariance.rotation`, bilinear inside the centred disk)
are statistical: a fully equivariant model (θ = 1) still sees the interpolation, and its sampled grid
(N elements) is not closed under the angle. Measured on fully equivariant untrained presets, 8 angles in
(0, 2π), 2 seeds, batch 2 at 28×28, on smooth inputs (``random_images(..., smooth=True)``):
:data:`CONTINUOUS_MEASURED`; the custom model of ``examples/test_equivariance_ci.py`` (SE2 N = 8, two
5×5 layers) at 16 and 18 px, 5 angles × 3 seeds: median 0.109, max 0.182 (at 8–10 px: max 0.405, so
its arbitrary-angle inputs start at 16 px). Default ``rtol`` :data:`CONTINUOUS_RTOL` = 0.3, above every
value measured at ≥ 16 px; it detects gross breaks (the briefly trained partial MNIST6-180 model of the
README measures 0.46–0.80), not small ones. On white noise the interpolation alone loses ~60 % of the
input (there and back); the assertion names that cause.
"""

from __future__ import annotations

import torch

__all__ = ["EXACT_RTOL", "CONTINUOUS_RTOL", "CONTINUOUS_MEASURED", "default_rtol"]

EXACT_RTOL = {torch.float64: 1e-10, torch.float32: 1e-4, torch.bfloat16: 5e-2, torch.float16: 1e-2}

#: min / median / max relative error measured per preset (see the module docstring)
CONTINUOUS_MEASURED = {
    "mnist6-180-se2-partial": {"min": 0.005, "median": 0.030, "max": 0.082},
    "mnist6-m-e2-partial": {"min": 0.028, "median": 0.054, "max": 0.083},
}

CONTINUOUS_RTOL = 0.3


def compute_dtype(x: torch.Tensor, module=None) -> torch.dtype:
    """The dtype the convs run in: the autocast dtype when autocast is on for x's device, else the
    lower precision of x and the module's parameters."""
    device = x.device.type
    if torch.is_autocast_enabled(device):
        return torch.get_autocast_dtype(device)
    dtypes = [x.dtype]
    if isinstance(module, torch.nn.Module):
        param = next(iter(module.parameters()), None)
        if param is not None:
            dtypes.append(param.dtype)
    return max(dtypes, key=lambda d: EXACT_RTOL.get(d, 1e-4))


def default_rtol(transform, dtype: torch.dtype) -> float:
    """The default ``rtol`` for a transform (exact or arbitrary-angle) computed in ``dtype``."""
    exact = EXACT_RTOL.get(dtype, EXACT_RTOL[torch.float32])
    return max(CONTINUOUS_RTOL, exact) if transform.disk else exact
