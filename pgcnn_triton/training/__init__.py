"""Training library: the Partial G-CNN recipe (docs/method.md#training-recipe) with exact resume, atomic checkpoints and DDP.

>>> from pgcnn_triton.training import Trainer, TrainConfig
>>> trainer = Trainer(model, data, TrainConfig(epochs=10, lr_probs=1e-2), "runs/demo")
>>> summary = trainer.fit()          # best-val weights, tested once; metrics.csv, summary.json, PNGs

Pieces usable on their own: :func:`build_optimizer` (param groups), :func:`build_scheduler` / :func:`lr_factor`
(warm-up + cosine), :func:`kernel_norm_penalty` and :func:`monotonic_penalty` (regularisers),
:func:`save_atomic` / :func:`load_checkpoint` (checksummed), :func:`write_atomic`, :func:`plot_learned_equivariance`.
"""

from .args import add_train_arguments, model_spec_from_args, train_config
from .atomic import remove_stale_temps, write_atomic
from .checkpoint import (
    load_checkpoint,
    rng_state,
    save_atomic,
    seed_everything,
    set_rng_state,
)
from .config import TrainConfig
from .distributed import DistContext, ShardSampler, setup_distributed
from .errors import CheckpointCorruptError, NonFiniteLossError
from .experiment import (
    evaluate_checkpoint,
    format_summary,
    plot_runs,
    save_comparison,
    train_from_args,
)
from .optim import build_optimizer, partition_parameters
from .plots import plot_learned_equivariance, plot_training_curves
from .recipes import recipe
from .records import format_equivariance_table, read_metrics_csv, write_metrics_csv
from .regularizers import kernel_norm_penalty, monotonic_penalty, partial_parameters
from .schedule import build_scheduler, lr_factor
from .specs import build_model, data_spec, load_from_spec, model_spec, resolve_preset
from .trainer import Trainer, learned_equivariance

__all__ = [
    "DistContext", "NonFiniteLossError", "ShardSampler", "TrainConfig", "Trainer", "add_train_arguments",
    "build_model", "build_optimizer", "build_scheduler", "data_spec", "evaluate_checkpoint", "format_equivariance_table",
    "format_summary", "kernel_norm_penalty", "learned_equivariance", "load_checkpoint", "load_from_spec", "lr_factor",
    "model_spec", "model_spec_from_args", "monotonic_penalty", "partial_parameters", "partition_parameters",
    "plot_learned_equivariance", "plot_runs", "plot_training_curves", "read_metrics_csv", "recipe", "resolve_preset",
    "rng_state", "save_atomic", "save_comparison", "seed_everything", "set_rng_state", "setup_distributed",
    "train_config", "train_from_args", "write_metrics_csv",
    "CheckpointCorruptError", "remove_stale_temps", "write_atomic",
]
