"""Data shipped with pgcnn_triton: 5,000 real MNIST digits for offline demos and tests.

The digits are a 500-per-class subset of MNIST (LeCun, Cortes, Burges), CC BY-SA 3.0; see
``NOTICE.md`` beside this file for the attribution.
"""

from __future__ import annotations

import hashlib
import io
from importlib import resources

import numpy as np
import torch

BUNDLED_DIGITS = "mnist_5k.npz"
BUNDLED_DIGITS_SHA256 = "246e0c30eeea57c8d0037d3f38c8e00651ec204cc61b8022563e9aeeb9d756f4"


def load_bundled_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """The bundled digits as ``(images uint8 [5000, 28, 28], labels int64 [5000])``, sorted by label."""
    blob = resources.files(__name__).joinpath(BUNDLED_DIGITS).read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != BUNDLED_DIGITS_SHA256:
        raise RuntimeError(f"{BUNDLED_DIGITS} is corrupt (sha256 {digest}, expected {BUNDLED_DIGITS_SHA256}): "
                           "reinstall pgcnn_triton")
    with np.load(io.BytesIO(blob)) as data:
        return torch.from_numpy(data["images"].copy()), torch.from_numpy(data["labels"].astype(np.int64))
