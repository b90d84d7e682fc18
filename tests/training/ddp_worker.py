"""One torchrun worker of tests/training/test_ddp.py (2 gloo ranks on CPU). Usage:

    python -m torch.distributed.run --standalone --nproc_per_node=2 tests/training/ddp_worker.py DATA_DIR OUT_DIR

In one process group it runs

1. ``examples/cifar10.py`` (the command-line path: se2-partial, BatchNorm, random sampling) into ``OUT_DIR/cli``,
   and every rank saves its final parameters to ``OUT_DIR/cli_rank{r}.pt``;
2. a :class:`Trainer` on a tiny deterministic model (C_4 grid, ``partial=False``, ``norm="layer"``, no dropout:
   no randomness and no coupling between the samples of a batch; ``num_blocks=0``: no residual block, whose
   conv biases an instance norm cancels — their gradient is pure rounding noise, which Adam would blow up to
   ±lr steps) for 2 epochs × 2 steps on :func:`synthetic_data`; every
   rank saves ``OUT_DIR/exact_rank{r}.pt`` = {"init", "final", "batches"} where ``batches`` lists the train indices
   of each of its optimizer steps, so the test can replay the concatenated batches in one process.

``PGCNN_TEST_NO_DDP=1`` replaces DistributedDataParallel by the identity (each rank trains its own copy): the
test must fail then.
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

import torch
from torch.utils.data import Dataset, TensorDataset

from pgcnn_triton.data import DataSplits
from pgcnn_triton.models import PartialGCNN

EXACT_MODEL = dict(in_channels=3, num_classes=3, hidden=2, num_blocks=0, block_width_factors=None, pool_blocks=(),
                   norm="layer", dropout=0.0, kernel_size=3, kernel_net="SIREN", kernel_hidden=4,
                   group="SE2", num_elements=4, method="deterministic", partial=False)
EXACT_TRAIN = dict(epochs=2, batch_size=2, lr=1e-2, scheduler="constant", weight_decay=0.0, monotonic_decay=0.0,
                   amp=False, channels_last=False, progress=False, seed=0)
TRAIN_SIZE = 8  # 2 ranks x 2 steps x batch 2: every rank's shard is whole batches (no padding, no partial batch)


def exact_model() -> PartialGCNN:
    return PartialGCNN(**EXACT_MODEL)


def synthetic_data() -> DataSplits:
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(TRAIN_SIZE + 4, 3, 8, 8, generator=g)
    y = torch.randint(0, 3, (TRAIN_SIZE + 4,), generator=g)
    held_out = TensorDataset(x[TRAIN_SIZE:], y[TRAIN_SIZE:])
    return DataSplits(name="synthetic", train=TensorDataset(x[:TRAIN_SIZE], y[:TRAIN_SIZE]), val=held_out,
                      test=held_out, num_classes=3, in_channels=3, image_size=8)


class Recording(Dataset):
    """A dataset that remembers which indices were read, in order."""

    def __init__(self, base: Dataset):
        self.base, self.seen = base, []

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        self.seen.append(int(i))
        return self.base[i]


def params(model: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def main(data_dir: str, out_dir: str) -> None:
    if os.environ.get("PGCNN_TEST_NO_DDP"):
        torch.nn.parallel.DistributedDataParallel = lambda module, **kwargs: module

    import pgcnn_triton.training.experiment as experiment
    from pgcnn_triton.training import TrainConfig, Trainer, seed_everything, setup_distributed

    out = Path(out_dir)
    dist = setup_distributed("cpu")
    rank = dist.rank

    class SavingTrainer(Trainer):  # the CLI's trainer, plus: every rank saves its parameters at the end
        def fit(self):
            summary = super().fit()
            torch.save(params(self.model), out / f"cli_rank{rank}.pt")
            return summary

    experiment.Trainer = SavingTrainer
    example = runpy.run_path(str(Path(__file__).resolve().parents[2] / "examples" / "cifar10.py"), run_name="example")
    example["main"](["--data-dir", data_dir, "--out-dir", str(out / "cli"), "--epochs", "1", "--batch-size", "4",
                     "--max-batches", "2", "--hidden", "2", "-N", "2", "--kernel-size", "3", "--device", "cpu",
                     "--no-progress", "--no-verify-data"])  # tiny fake CIFAR files: not the official md5s

    seed_everything(0)
    model = exact_model()
    init = params(model)
    torch.manual_seed(1 + rank)  # as the CLI does: a different RNG stream per rank (the model must not use it)
    data = synthetic_data()
    data.train = Recording(data.train)
    trainer = Trainer(model, data, TrainConfig(**EXACT_TRAIN), out / "exact", dist=dist)
    for epoch in (1, 2):
        trainer.train_epoch(epoch)
    b = EXACT_TRAIN["batch_size"]
    batches = [data.train.seen[i:i + b] for i in range(0, len(data.train.seen), b)]
    torch.save({"init": init, "final": params(model), "batches": batches}, out / f"exact_rank{rank}.pt")
    del trainer, model  # DDP's reducer must go before its process group (a later teardown can hang at exit)
    dist.close()


if __name__ == "__main__":
    import faulthandler

    if os.environ.get("PGCNN_DUMP_AFTER"):  # a hung worker prints every thread's stack and exits (diagnosis)
        faulthandler.dump_traceback_later(float(os.environ["PGCNN_DUMP_AFTER"]), exit=True)
    main(*sys.argv[1:])
