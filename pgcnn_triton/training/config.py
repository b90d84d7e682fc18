"""Training settings (docs/method.md#training-recipe) as one validated dataclass."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from .._checks import number

SCHEDULERS = ("cosine", "constant")


@dataclass
class TrainConfig:
    """Everything the :class:`~pgcnn_triton.training.Trainer` needs besides the model and the data.

    Args:
        epochs: training epochs.
        batch_size: batch size per process (DDP: per rank).
        lr: Adam learning rate of the ordinary parameters.
        lr_probs: learning rate of the partial-equivariance parameters θ / mirror logits / gates
            (``None``: same as ``lr``).
        lr_omega0: learning rate of learnable SIREN ω0 (``None``: same as ``lr``).
        weight_decay: λ of the kernel-norm regulariser ``λ·Σ_l (‖K_l‖ + ‖b_l‖)`` (not Adam's decay).
        monotonic_decay: λ of the monotonic θ regulariser ``λ·Σ_l ReLU(θ_{l+1} − θ_l)``.
        scheduler: ``"cosine"`` (linear warm-up, then per-iteration cosine to ``min_lr``) or ``"constant"``.
        warmup_epochs: warm-up length of the cosine schedule.
        min_lr: final learning rate of the cosine schedule.
        gradient_clip: clip the global gradient norm to this value (0: off).
        patience: stop after this many epochs without a better validation result.
        seed: random seed (model init, sampling, shuffling).
        amp: bf16 autocast; ``None`` (default) follows :mod:`pgcnn_triton.precision`: on for CUDA, and on
            CPU where the CPU has bf16 matrix units (AMX, AVX512-BF16), off elsewhere.
        channels_last: channels-last input memory format on CUDA (ignored on CPU).
        compile: run the model through ``torch.compile``.
        num_workers: DataLoader worker processes.
        max_batches: stop each training epoch, and each validation and test pass, after this many
            batches (smoke tests; evaluation then covers ``max_batches × eval_batch_size`` samples,
            spread evenly over each split);
            ``None``: whole splits.
        eval_batch_size: batch size for validation / test (``None``: 2 × ``batch_size``).
        anneal_gumbel: anneal the relaxed-Bernoulli temperature over the whole run.
        progress: show tqdm progress bars (rank 0 only).
    """

    epochs: int = 300
    batch_size: int = 64
    lr: float = 1e-3
    lr_probs: float | None = None
    lr_omega0: float | None = None
    weight_decay: float = 0.0
    monotonic_decay: float = 0.0
    scheduler: str = "cosine"
    warmup_epochs: int = 5
    min_lr: float = 1e-6
    gradient_clip: float = 0.0
    patience: int = 100
    seed: int = 0
    amp: bool | None = None
    channels_last: bool = True
    compile: bool = False
    num_workers: int = 0
    max_batches: int | None = None
    eval_batch_size: int | None = None
    anneal_gumbel: bool = True
    progress: bool = True

    def __post_init__(self):
        for name in ("epochs", "batch_size", "patience"):
            _int(getattr(self, name), name, 1)
        for name in ("warmup_epochs", "num_workers", "seed"):
            _int(getattr(self, name), name, 0)
        for name in ("max_batches", "eval_batch_size"):
            if getattr(self, name) is not None:
                _int(getattr(self, name), name, 1)
        # finite as well as in range: lr=inf would overflow the schedule, NaN poison every weight
        for name in ("lr", "lr_probs", "lr_omega0"):
            if getattr(self, name) is not None:
                number(getattr(self, name), name, low=0.0, low_open=True)
        for name in ("weight_decay", "monotonic_decay", "min_lr", "gradient_clip"):
            number(getattr(self, name), name, low=0.0)
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {SCHEDULERS}, got {self.scheduler!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """Build from a dict, ignoring unknown keys (checkpoints of other versions)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def _int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
