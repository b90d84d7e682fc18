"""Errors of the training loop."""


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the run stopped and the last good checkpoint is kept."""

    def __init__(self, value: float, epoch: int, batch: int, checkpoint: str | None, checkpoint_epoch: int | None):
        self.value, self.epoch, self.batch = value, epoch, batch
        self.checkpoint, self.checkpoint_epoch = checkpoint, checkpoint_epoch
        if checkpoint is None:
            kept = "No checkpoint was written yet (it failed in the first epoch)."
        else:
            kept = (f"The last good checkpoint, {checkpoint} (end of epoch {checkpoint_epoch}), is kept; "
                    "continue from it with --resume, e.g. with a lower --lr or --gradient-clip.")
        super().__init__(f"non-finite training loss ({value}) at epoch {epoch}, batch {batch}: training stopped. {kept}")


class CheckpointCorruptError(ValueError):
    """A checkpoint file exists but cannot be trusted: checksum mismatch, empty, truncated, not a checkpoint,
    or holding objects ``weights_only=True`` refuses. The one-line message names the file, what is wrong and
    the alternative (e.g. ``best.pt`` when ``last.pt`` is corrupt)."""

    def __init__(self, path, problem: str, alternative: str = ""):
        self.path, self.problem = str(path), problem
        hint = f" {alternative}" if alternative else ""
        super().__init__(f"checkpoint {path} is corrupt or not a pgcnn_triton checkpoint ({problem}).{hint}")
