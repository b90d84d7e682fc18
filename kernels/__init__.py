"""The op boundary of pgcnn_triton (installed as ``pgcnn_triton.kernels``).

Every op takes and returns plain tensors, so that a Triton kernel can replace its reference body
without the layers noticing:

* :func:`kernel_bank` — the kernel net's last linear layer laid out as the tap-packed bank;
* :func:`group_conv2d` — the group-axis convolution with a shared or per-sample bank;
* :func:`group_pool`, :func:`global_max_pool` — pooling over the group axis / over (G, H, W);
* :func:`disk_taps` — the in-disk tap layout (5 / 13 / 29 taps for k = 3 / 5 / 7); :func:`square_taps`,
  all k² taps (one layer of the original needs them).

Each op is registered with ``torch.library`` (``torch.ops.pgcnn_triton.*``, with fake kernels and
autograd) and runs either its Triton kernel or its pure-torch reference: ``backend=`` on the op,
:func:`use_backend` around a block of code, or ``PGCNN_BACKEND=triton|torch|auto`` (default ``auto``:
Triton on CUDA, the group conv timed against cuDNN once per shape; the interpreter on CPU when
``TRITON_INTERPRET=1``; else the torch reference). CUDA-graph capture, launch failures and the
reproducible mode (:func:`deterministic`): :mod:`pgcnn_triton.kernels._backend`.
"""

from ._backend import (
    BACKENDS,
    auto_choices,
    auto_rules,
    capture_fallbacks,
    launch_fallbacks,
    set_auto_rule,
    use_backend,
)
from ._launch import deterministic
from .bank import kernel_bank
from .group_conv import conv_dtype, dense_kernel, group_conv2d, resolve_padding
from .group_pool import global_max_pool, group_pool
from .taps import (
    TAP_SETS,
    TapLayout,
    check_kernel_size,
    check_taps,
    disk_taps,
    num_disk_taps,
    square_taps,
    tap_layout,
    tap_set,
    taps_of,
)

__all__ = [
    "BACKENDS",
    "TAP_SETS",
    "TapLayout",
    "auto_choices",
    "auto_rules",
    "capture_fallbacks",
    "check_kernel_size",
    "check_taps",
    "conv_dtype",
    "dense_kernel",
    "deterministic",
    "disk_taps",
    "global_max_pool",
    "group_conv2d",
    "group_pool",
    "kernel_bank",
    "launch_fallbacks",
    "num_disk_taps",
    "resolve_padding",
    "set_auto_rule",
    "square_taps",
    "tap_layout",
    "tap_set",
    "taps_of",
    "use_backend",
]
