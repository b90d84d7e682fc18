"""Errors of the training loop."""

from pathlib import Path

_HINTS = {
    "training": "e.g. with a lower --lr or --gradient-clip",
    "validation": "with a lower --lr or --gradient-clip; if every epoch gives it, the validation data hold NaN or "
                  "Inf values: fix the data",
    "test": "the weights are finite, so the test data likely hold NaN or Inf values: fix the data",
    "parameters": "e.g. with a lower --lr or --gradient-clip",
}


class NonFiniteLossError(FloatingPointError):
    """A loss (or the weights) became NaN or infinite; the run stopped and only finite checkpoints are kept.

    ``split`` says where: ``"training"`` (a batch's loss), ``"validation"`` or ``"test"`` (the loss over the
    split) or ``"parameters"`` (the weights after an epoch). ``checkpoint`` is the last good ``last.pt``
    (finite weights and validation loss), or ``None`` when there is none.
    """

    def __init__(self, value: float, epoch: int, batch: int | None, checkpoint: str | None,
                 checkpoint_epoch: int | None, split: str = "training"):
        self.value, self.epoch, self.batch, self.split = value, epoch, batch, split
        self.checkpoint, self.checkpoint_epoch = checkpoint, checkpoint_epoch
        if checkpoint is None:
            kept = "No checkpoint was written yet (no epoch ended with finite weights and validation loss)."
        elif split == "test":
            kept = f"The checkpoints are kept ({checkpoint}, end of epoch {checkpoint_epoch}); {_HINTS[split]}."
        else:
            kept = (f"The last good checkpoint, {checkpoint} (end of epoch {checkpoint_epoch}), is kept; "
                    f"continue from it with --resume --out-dir {Path(checkpoint).parent}, {_HINTS[split]}.")
        what = "parameters" if split == "parameters" else f"{split} loss"
        if split == "test":
            head = f"non-finite test loss ({value}) with the best weights (epoch {epoch}): no summary was written."
        else:
            where = f"at epoch {epoch}" + (f", batch {batch}" if batch is not None else "")
            head = f"non-finite {what} ({value}) {where}: training stopped."
        super().__init__(f"{head} {kept}")


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; the message says where the run stopped and how to continue it."""



class CheckpointWriteError(OSError):
    """A checkpoint could not be written (full disk, permissions); the previous file at its path is intact."""

    def __init__(self, path, reason: str, previous: str, errno: int | None = None):
        super().__init__(f"could not write {path} ({reason}); {previous} Free space on the disk (or fix the "
                         f"permissions of the directory), then continue with --resume")
        self.path, self.errno = str(path), errno  # the cause's errno (e.g. ENOSPC), for callers that branch on it


class CheckpointCorruptError(ValueError):
    """A checkpoint file exists but cannot be trusted: checksum mismatch, empty, truncated, not a checkpoint,
    or holding objects ``weights_only=True`` refuses. The one-line message names the file, what is wrong and
    the alternative (e.g. ``best.pt`` when ``last.pt`` is corrupt)."""

    def __init__(self, path, problem: str, alternative: str = ""):
        self.path, self.problem = str(path), problem
        hint = f" {alternative}" if alternative else ""
        super().__init__(f"checkpoint {path} is corrupt or not a pgcnn_triton checkpoint ({problem}).{hint}")
