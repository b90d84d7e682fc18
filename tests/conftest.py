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


def pytest_configure(config):
    config.addinivalue_line("markers", "long(seconds): a test that takes about this long on 2 cores (cold caches); "
                                       "started first so parallel workers finish together")


def pytest_collection_modifyitems(config, items):
    # The few long tests decide the wall time under pytest-xdist (scripts/test.sh: --dist load with
    # --maxschedchunk 1, which hands each of 2 workers the first 2 pending tests). Start them first,
    # paired longest with shortest (order d0, d3, d1, d2, …) so the two workers carry similar loads.
    def seconds(item):
        mark = item.get_closest_marker("long")
        return mark.args[0] if mark else 0.0

    long = sorted((i for i in items if seconds(i)), key=seconds, reverse=True)
    if len(long) >= 4:
        long = [long[0], long[3], long[1], long[2], *long[4:]]
    rest = [i for i in items if not seconds(i)]
    items[:] = long + rest
