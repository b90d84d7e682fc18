"""Launch helpers shared by the Triton ops: block sizes, precision, dtype flags."""

from __future__ import annotations

import torch

from ._backend import interpreting


def next_pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def dot_precision(dtype: torch.dtype, allow_tf32: bool) -> str:
    """``tl.dot`` input precision: exact fp32 in the interpreter and when TF32 is off."""
    if interpreting() or dtype != torch.float32 or not allow_tf32:
        return "ieee"
    return "tf32"


def upcast_loads(dtype: torch.dtype) -> bool:
    """The interpreter mishandles bf16 arithmetic (raw uint16 bits): cast to fp32 right after loads."""
    return interpreting() and dtype == torch.bfloat16


TRITON_DTYPES = {torch.float16, torch.bfloat16, torch.float32, torch.float64}


def check_dtype(tensor: torch.Tensor, argument: str) -> None:
    if tensor.dtype not in TRITON_DTYPES:
        raise TypeError(f"{argument} must be float16, bfloat16, float32 or float64, got {tensor.dtype}")
