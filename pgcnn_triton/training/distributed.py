"""Multi-process training helpers: process-group setup from ``torchrun``'s environment, samplers, reductions."""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


@dataclass
class DistContext:
    """Where this process sits: ``rank`` of ``world_size`` and its device. ``world_size == 1``: no DDP."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    initialized_here: bool = False

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        """Element-wise sum of ``values`` over all ranks (identity when not distributed)."""
        if not self.distributed:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.tolist()

    def any(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is true on any rank."""
        return self.all_reduce_sum([float(flag)])[0] > 0 if self.distributed else bool(flag)

    def gather(self, obj) -> list:
        """Every rank's ``obj``, on every rank (a one-element list when not distributed)."""
        if not self.distributed:
            return [obj]
        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def broadcast_buffers(self, module: torch.nn.Module) -> None:
        """Copy rank 0's buffers (BatchNorm statistics, counters) to every rank."""
        if self.distributed:
            for b in module.buffers():
                dist.broadcast(b, 0)

    def _comm_device(self):
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")

    def close(self) -> None:
        if self.initialized_here and dist.is_initialized():
            # every rank arrives before the group is torn down: a rank leaving early can leave the
            # other blocked in gloo's shutdown; and unreachable DDP reducers are freed first, since one
            # destroyed after its group can hang the process at exit
            gc.collect()
            try:
                dist.barrier()
            finally:
                dist.destroy_process_group()


def setup_distributed(device: str | None = None) -> DistContext:
    """Initialise the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1), else a single process.

    Backend: NCCL on CUDA, gloo on CPU. ``device`` forces ``"cpu"`` or ``"cuda"`` (default: CUDA if present).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device='cuda' but no CUDA device is available")
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    if world <= 1:
        return DistContext(device=dev)
    here = False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        here = True
    return DistContext(rank=rank, world_size=world, local_rank=local, device=dev, initialized_here=here)


class ShardSampler(Sampler):
    """Indices ``rank, rank + world, …`` of a dataset, unpadded: for exact distributed evaluation."""

    def __init__(self, length: int, rank: int = 0, world_size: int = 1):
        self.indices = list(range(rank, length, world_size))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
