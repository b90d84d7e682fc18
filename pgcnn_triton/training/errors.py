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
            if split != "test":
                kept += f" Run again {_HINTS[split]}."
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


class DivergenceError(NonFiniteLossError):
    """Training diverged: a loss rose above ``bound`` (finite, but far beyond what any classifier that trains
    gives, see :data:`~pgcnn_triton.training.trainer.DIVERGENCE_FACTOR`): a training batch's cross-entropy
    (``split="training"``) or the validation loss after an epoch (``"validation"``). Reported, kept and exited
    like a non-finite loss (exit status 2, the last good ``last.pt`` kept)."""

    def __init__(self, value: float, bound: float, epoch: int, batch: int | None, checkpoint: str | None,
                 checkpoint_epoch: int | None, split: str = "training"):
        super().__init__(value, epoch, batch, checkpoint, checkpoint_epoch, split)
        self.bound = bound
        where = f"epoch {epoch}" + (f", batch {batch}" if batch is not None else "")
        head = (f"training diverged at {where}: the {split} loss {value:.4g} exceeds {bound:.4g} (1000 x "
                f"ln(classes), the divergence bound): training stopped.")
        if checkpoint is None:
            kept = "No checkpoint was written yet; run again with a lower --lr (or --gradient-clip)."
        else:
            kept = (f"The last good checkpoint, {checkpoint} (end of epoch {checkpoint_epoch}), is kept; continue "
                    f"from it with --resume --out-dir {Path(checkpoint).parent} and a lower --lr (or --gradient-clip).")
        self.args = (f"{head} {kept}",)


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; the message says where the run stopped and how to continue it."""



class CheckpointWriteError(OSError):
    """A checkpoint could not be written (full disk, permissions); the previous file at its path is intact.

    ``then`` is the way on the message names: ``--resume`` where a ``last.pt`` exists, else ``--overwrite``
    (only a ``best.pt`` there) or the same command again (nothing there)."""

    def __init__(self, path, reason: str, previous: str, errno: int | None = None,
                 then: str = "continue with --resume"):
        super().__init__(f"could not write {path} ({reason}); {previous} Free space on the disk (or fix the "
                         f"permissions of the directory), then {then}")
        self.path, self.errno = str(path), errno  # the cause's errno (e.g. ENOSPC), for callers that branch on it


class CheckpointCorruptError(ValueError):
    """A checkpoint file exists but cannot be trusted: checksum mismatch, empty, truncated, not a checkpoint,
    or holding objects ``weights_only=True`` refuses. The one-line message names the file, what is wrong and
    the alternative (e.g. ``best.pt`` when ``last.pt`` is corrupt)."""

    def __init__(self, path, problem: str, alternative: str = ""):
        self.path, self.problem = str(path), problem
        hint = f" {alternative}" if alternative else ""
        super().__init__(f"checkpoint {path} is corrupt or not a pgcnn_triton checkpoint ({problem}).{hint}")


class NonFiniteCheckpointError(CheckpointCorruptError):
    """A checkpoint holds a floating tensor with NaN or ±inf: its model would give NaN outputs (and a
    meaningless accuracy), so it is refused. ``tensor`` names the first such tensor (e.g.
    ``model.blocks.0.conv.bias``)."""

    def __init__(self, path, tensor: str, value: float, alternative: str = ""):
        self.path, self.tensor, self.value = str(path), tensor, value
        self.problem = f"non-finite values ({value}) in {tensor}"
        hint = f" {alternative}" if alternative else ""
        ValueError.__init__(self, f"checkpoint {path} holds non-finite values ({value}) in {tensor}: its model "
                                  f"cannot be used.{hint}")
