import subprocess
import sys


def test_kernels_installs_only_as_pgcnn_triton_kernels(tmp_path):
    code = ("import importlib.util, pgcnn_triton.kernels as k;"
            "assert importlib.util.find_spec('kernels') is None, 'a top-level kernels module is importable';"
            "assert k.disk_taps(7).num_taps == 29; print(k.__name__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "pgcnn_triton.kernels"


def test_public_api():
    import pgcnn_triton

    for name in ("PartialGCNN", "GCNN", "LiftingConv", "GroupConv", "PointwiseGroupConv", "SamplingConfig",
                 "SE2", "E2", "equivariance", "kernels"):
        assert hasattr(pgcnn_triton, name), name
