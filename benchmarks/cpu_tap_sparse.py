"""Does the in-disk tap mask pay on CPU? Dense conv2d vs a tap-sparse im2col + GEMM forward.

    python benchmarks/cpu_tap_sparse.py

The k = 7 disk keeps 29 of 49 taps, so a tap-sparse conv does 59 % of the dense multiply-adds. On
CPU the only way to hand that to a GEMM is to materialise the 29 shifted copies of the input
(im2col over the disk); this script times that against oneDNN's dense conv2d on the largest conv
of the CIFAR-10 CKResNet ([8, 256, 32, 32] input, 256 outputs), median of 3 after a warm-up.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from common import timed  # noqa: E402

from pgcnn_triton.kernels import disk_taps  # noqa: E402


def main(batch=8, channels=256, size=32, k=7):
    torch.manual_seed(0)
    x = torch.randn(batch, channels, size, size)
    w = torch.randn(channels, channels, k, k)
    offsets = disk_taps(k).offsets.tolist()
    cells = [(dy + k // 2) * k + dx + k // 2 for dy, dx in offsets]
    w_taps = w.reshape(channels, channels, k * k)[:, :, cells].permute(0, 2, 1).reshape(channels, -1).contiguous()
    pad = k // 2

    def tap_sparse():
        xp = F.pad(x, (pad, pad, pad, pad))
        cols = torch.stack([xp[:, :, pad + dy:pad + dy + size, pad + dx:pad + dx + size] for dy, dx in offsets], 1)
        return torch.matmul(w_taps, cols.reshape(batch, -1, size * size))

    y_sparse = tap_sparse().reshape(batch, channels, size, size)
    masked = torch.zeros_like(w).reshape(channels, channels, k * k)
    masked[:, :, cells] = w.reshape(channels, channels, k * k)[:, :, cells]
    y_dense = F.conv2d(x, masked.reshape_as(w), padding=pad)
    err = float((y_sparse - y_dense).norm() / y_dense.norm())
    if err > 1e-4:
        raise AssertionError(f"tap-sparse and masked dense convs differ: {err:.2e}")
    cpu = torch.device("cpu")
    dense = timed(lambda: F.conv2d(x, w, padding=pad), cpu, reps=3)
    sparse = timed(tap_sparse, cpu, reps=3)
    print(f"input {list(x.shape)}, k={k} ({len(offsets)} of {k * k} taps), {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}")
    print(f"| dense conv2d fwd (ms) | {dense:.1f} |\n| tap-sparse im2col + GEMM fwd (ms) | {sparse:.1f} |\n"
          f"| ratio sparse / dense | {sparse / dense:.2f} |\n| relative difference of outputs | {err:.1e} |")
    return dense, sparse


if __name__ == "__main__":
    main()
