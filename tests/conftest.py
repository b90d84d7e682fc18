import os

# Before anything imports triton: CPU runs execute Triton kernels through the interpreter.
# GPU runs export TRITON_INTERPRET=0 (setdefault leaves an exported value alone).
os.environ.setdefault("TRITON_INTERPRET", "1")
# Layer and model tests run the torch reference ops unless a test picks a backend itself
# (Triton-path tests pass backend="triton" or use pgcnn_triton.kernels.use_backend("triton")).
os.environ.setdefault("PGCNN_BACKEND", "torch")

import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "ci", deadline=None, max_examples=25, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=30, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
