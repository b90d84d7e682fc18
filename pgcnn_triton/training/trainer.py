"""The training loop of docs/method.md#training-recipe, with exact resume, atomic checkpoints and DDP.

Run directory layout (written by rank 0):

* ``last.pt``  — full training state after the last finished epoch (model, optimizer, scheduler, sampler
  counters, epoch, early-stopping state, metric history, RNG states of every rank);
* ``best.pt``  — model weights with the best validation accuracy (ties → lower loss);
  both only ever hold finite weights and buffers with a finite validation loss (else the run stops, naming
  the split);
* ``metrics.csv`` — one row per epoch; ``summary.json`` — final result (test with the best weights);
* ``learned_equivariance.png`` and ``curves.png``.

Divergence stops a run in every precision (fp32 and bf16 autocast alike), with exit status 2 from the CLI
and the last good ``last.pt`` kept: a non-finite training loss (:class:`~.errors.NonFiniteLossError`), a
non-finite validation loss or weight / buffer after an epoch, or a training batch's cross-entropy or an
epoch's validation loss above :data:`DIVERGENCE_FACTOR` × ln(classes) (:class:`~.errors.DivergenceError`). bf16 rarely overflows
to inf, so a diverging bf16 run shows as ever larger finite losses: the bound catches it.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset
from tqdm.auto import tqdm

from .. import precision
from ..models import control
from ..nn import collect_kernel_norms
from ..sampling import ElementSampler
from .atomic import remove_stale_temps
from .checkpoint import load_checkpoint, rng_state, save_atomic, set_rng_state
from .config import TrainConfig
from .custom_spec import custom_model_spec
from .distributed import DistContext, ShardSampler
from .errors import CheckpointWriteError, DivergenceError, NonFiniteLossError
from .optim import build_optimizer
from .plots import plot_learned_equivariance, plot_training_curves
from .progress import progress_line
from .records import equivariance_columns, write_json, write_metrics_csv
from .regularizers import kernel_norm_penalty, monotonic_penalty
from .resuming import complete_message, completed_summary
from .rundir import RunDirectory, existing_run_files
from .schedule import build_scheduler

CHECKPOINT_FORMAT = "pgcnn_triton.checkpoint/1"
#: A batch's training cross-entropy above this many times ln(classes) (the loss of a uniform guess) counts
#: as divergence: a classifier that trains gives losses near or below ln(classes); 1000 x is ~2300 nats
#: for 10 classes, i.e. logits wrong by thousands, which only an exploding run reaches.
DIVERGENCE_FACTOR = 1000.0
LAST, BEST = "last.pt", "best.pt"


def learned_equivariance(model: nn.Module) -> list[dict]:
    """``model.learned_equivariance()`` if the model has it, else the rows of the library's layers inside
    it (:func:`pgcnn_triton.models.control.learned_equivariance`; ``[]`` if it has none)."""
    fn = getattr(model, "learned_equivariance", None)
    return fn() if callable(fn) else control.learned_equivariance(model)


def sampler_steps(model: nn.Module) -> dict[str, int]:
    """The Gumbel-temperature counters of every sampler (also inside the model's state dict)."""
    return {name: int(m.step) for name, m in model.named_modules() if isinstance(m, ElementSampler)}


def _input_shape(data) -> list[int] | None:
    """``[C, H, W]`` of the training images (stored in checkpoints: the size ``pgcnn export`` fixes)."""
    channels, size = getattr(data, "in_channels", None), getattr(data, "image_size", None)
    if isinstance(channels, int) and isinstance(size, int):
        return [channels, size, size]
    try:
        x = data.train[0][0]
    except Exception:  # noqa: BLE001 - any dataset: the shape is only a default for export
        return None
    return list(x.shape) if isinstance(x, torch.Tensor) and x.dim() == 3 else None


class Trainer:
    """Train a classifier on :class:`~pgcnn_triton.data.DataSplits` with the Partial G-CNN recipe.

    The run directory has the same lifecycle as ``pgcnn train --out-dir``: :meth:`fit` refuses a
    directory that already holds a run unless ``resume`` or ``overwrite`` is given, holds a lock on it
    while training (a second trainer is refused), and resuming a finished run trains nothing and returns
    its summary. :meth:`evaluate` needs no run directory.

    Args:
        model: the (unwrapped) model; moved to the context's device.
        data: train / val / test datasets.
        config: a :class:`TrainConfig`.
        out_dir: the run directory (created by :meth:`fit`); ``None``: evaluation only.
        overwrite: :meth:`fit` replaces the run already in ``out_dir`` (``pgcnn train --overwrite``).
        resume: :meth:`fit` continues the run in ``out_dir`` from its ``last.pt`` (``True``) or from the
            given checkpoint (``pgcnn train --resume [PATH]``).
        dist: the process's :class:`DistContext` (default: single process on CPU).
        model_spec, data_spec: plain dicts stored in checkpoints so ``pgcnn eval`` / ``pgcnn export`` can
            rebuild the run. Default ``model_spec``: a network of your own is described by its class and
            constructor arguments (:func:`~pgcnn_triton.training.custom_spec.custom_model_spec`).
        run_flags: the run's resolved command-line flags
            (:func:`~pgcnn_triton.training.args.resolved_flags`), stored in checkpoints and compared on
            ``--resume``.
    """

    #: A :class:`~pgcnn_triton.training.rundir.RunDirectory` the caller already holds (``pgcnn train``):
    #: :meth:`fit` then takes no lock of its own.
    run_directory: RunDirectory | None = None

    def __init__(self, model: nn.Module, data, config: TrainConfig, out_dir: str | Path | None = None, *,
                 overwrite: bool = False, resume: bool | str | Path = False,
                 dist: DistContext | None = None, model_spec: dict | None = None, data_spec: dict | None = None,
                 run_flags: dict | None = None):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        for split in ("train", "val", "test"):
            if not isinstance(getattr(data, split, None), Dataset):
                raise TypeError(f"data.{split} must be a torch Dataset")
        self.config, self.data = config, data
        self.dist = dist or DistContext()
        self.device = self.dist.device
        if resume and overwrite:
            raise ValueError("Trainer: resume= and overwrite= contradict each other: resume continues the run in "
                             "out_dir, overwrite replaces it; pass only one")
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.overwrite, self.resume_from = bool(overwrite), resume
        self.input_shape = _input_shape(data)
        self.model_spec = model_spec or dict(custom_model_spec(model), input_shape=self.input_shape)
        self.data_spec = data_spec or {}
        self.run_flags = dict(run_flags or {})
        self.resumes: list[dict] = []   # each --resume: the epoch it continued after and the flags it changed
        self.saved_epoch: int | None = None  # the epoch that last.pt holds, once one was written or resumed
        self.where = "before the first epoch"  # for the Ctrl-C message
        self.cuda = self.device.type == "cuda"
        self.precision = precision.describe(self.device, config.amp)  # the choice, logged and in summary.json
        self.model = model.to(self.device)
        if self.cuda and config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)

        self.train_sampler = DistributedSampler(data.train, num_replicas=self.dist.world_size, rank=self.dist.rank,
                                                shuffle=True, seed=config.seed, drop_last=False)
        shard = len(self.train_sampler)
        self.train_loader = DataLoader(data.train, batch_size=config.batch_size, sampler=self.train_sampler,
                                       num_workers=config.num_workers, drop_last=shard >= config.batch_size,
                                       pin_memory=self.cuda)
        self.steps_per_epoch = len(self.train_loader)
        if config.max_batches is not None:
            self.steps_per_epoch = min(self.steps_per_epoch, config.max_batches)
        if self.steps_per_epoch < 1:
            raise ValueError("the training set is empty")

        self.optimizer = build_optimizer(self.model, config.lr, config.lr_probs, config.lr_omega0)
        self.scheduler = build_scheduler(self.optimizer, steps_per_epoch=self.steps_per_epoch, epochs=config.epochs,
                                         warmup_epochs=config.warmup_epochs, min_lr=config.min_lr,
                                         scheduler=config.scheduler)
        self._base_lrs = list(self.scheduler.base_lrs)  # this config's rates; resume() restores them
        if config.anneal_gumbel:
            control.set_gumbel_anneal_steps(self.model, config.epochs * self.steps_per_epoch)

        self.net = self.model
        if self.dist.distributed:
            ids = [self.device.index] if self.cuda else None
            partial = control.is_partial(self.model)
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids, find_unused_parameters=partial)
        self.eval_net = self.model
        if config.compile:
            # static shape mode is sync-free: one graph (a graph break would be a regression, so fail
            # loudly); dynamic mode reads θ on the host, so it compiles in pieces
            static = control.is_static(self.model)
            self.net = torch.compile(self.net, fullgraph=static and not self.dist.distributed)
            self.eval_net = torch.compile(self.model, fullgraph=static)

        self.epoch = 0                  # last finished epoch
        self.best: dict | None = None   # {"epoch", "val_acc", "val_loss"}
        self.best_state: dict | None = None
        self.epochs_since_best = 0
        self.history: list[dict] = []
        self.stopped = None
        self.loss_bound: float | None = None  # the divergence bound, known once a batch gave the class count
        self.initial_equivariance: list[dict] | None = None  # θ before the first step (curves.png, epoch 0)
        self._resumed_path: Path | None = None

    # -- small helpers ------------------------------------------------------------------------------
    def _autocast(self):
        return precision.autocast(self.device, self.precision["amp"])

    def _to_device(self, x, y):
        x = x.to(self.device, non_blocking=True)
        if self.cuda and self.config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y.to(self.device, non_blocking=True)

    def _bar(self, iterable, total, desc):
        # disable=None: tqdm draws only on a terminal, so a log file gets no carriage-return frames
        return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True,
                    disable=None if self.config.progress and self.dist.is_main else True)

    def _is_better(self, acc: float, loss: float) -> bool:
        if self.best is None:
            return True
        return acc > self.best["val_acc"] or (acc == self.best["val_acc"] and loss < self.best["val_loss"])

    # -- one epoch ----------------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> dict:
        """One pass over the training set (``epoch`` is 1-based). Returns reduced train metrics."""
        cfg = self.config
        self.net.train()
        self.train_sampler.set_epoch(epoch)
        sums = [0.0, 0.0, 0.0, 0.0]  # ce·n, reg·n, correct, n
        bar = self._bar(self.train_loader, self.steps_per_epoch, f"epoch {epoch}/{cfg.epochs}")
        # a log file gets no bar (tqdm draws only on a terminal): progress lines instead
        log_every = cfg.log_interval if bar.disable and self.dist.is_main else 0
        started = time.perf_counter()
        for b, (x, y) in enumerate(bar):
            if b >= self.steps_per_epoch:
                break
            self.where = f"epoch {epoch}, batch {b + 1} of {self.steps_per_epoch}"
            x, y = self._to_device(x, y)
            with self._autocast(), (collect_kernel_norms() if cfg.weight_decay else nullcontext([])) as norms:
                logits = self.net(x)
            ce = F.cross_entropy(logits.float(), y)
            reg = [t for t in (kernel_norm_penalty(norms, cfg.weight_decay),
                               monotonic_penalty(self.model, cfg.monotonic_decay)) if t is not None]
            reg = torch.stack(reg).sum() if reg else torch.zeros((), device=self.device)
            loss = ce + reg
            value, ce_value = torch.stack([loss.detach().float(), ce.detach().float()]).tolist()  # one host sync
            bound = self.loss_bound = DIVERGENCE_FACTOR * math.log(max(logits.shape[-1], 2))
            if self.dist.any(not math.isfinite(value) or ce_value > bound):  # one collective: every rank stops
                if not math.isfinite(value):
                    raise NonFiniteLossError(value, epoch, b + 1, *self._last_good())
                raise DivergenceError(ce_value, bound, epoch, b + 1, *self._last_good())
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.gradient_clip:
                nn.utils.clip_grad_norm_(self.model.parameters(), cfg.gradient_clip)
            self.optimizer.step()
            self.scheduler.step()
            n = y.shape[0]
            sums[0] += ce_value * n
            sums[1] += float(reg.detach()) * n
            sums[2] += float((logits.argmax(1) == y).sum())
            sums[3] += n
            bar.set_postfix(loss=f"{sums[0] / sums[3]:.4f}", acc=f"{sums[2] / sums[3]:.3f}")
            if log_every and (b + 1) % log_every == 0 and b + 1 < self.steps_per_epoch:
                tqdm.write(self._progress_line(epoch, b + 1, sums, time.perf_counter() - started))
        ce_sum, reg_sum, correct, count = self.dist.all_reduce_sum(sums)
        return {"train_loss": ce_sum / count, "train_reg": reg_sum / count, "train_acc": correct / count}

    def _progress_line(self, epoch: int, done: int, sums: list[float], seconds: float) -> str:
        rate = sums[3] * self.dist.world_size / max(seconds, 1e-9)
        return progress_line(epoch, self.config.epochs, done, self.steps_per_epoch, sums, rate,
                             self.optimizer.param_groups[0]["lr"], seconds)

    @torch.no_grad()
    def evaluate(self, dataset: Dataset, desc: str = "eval") -> dict:
        """Cross-entropy and accuracy on ``dataset`` (sharded over ranks, reduced exactly); at most
        ``config.max_batches`` batches per rank when that is set (:meth:`_limited`)."""
        self.dist.broadcast_buffers(self.model)
        self.model.eval()
        bs = self.config.eval_batch_size or 2 * self.config.batch_size
        dataset = self._limited(dataset, bs)
        loader = DataLoader(dataset, batch_size=bs, num_workers=self.config.num_workers, pin_memory=self.cuda,
                            sampler=ShardSampler(len(dataset), self.dist.rank, self.dist.world_size))
        sums = [0.0, 0.0, 0.0]
        for x, y in self._bar(loader, len(loader), desc):
            x, y = self._to_device(x, y)
            with self._autocast():
                logits = self.eval_net(x)
            sums[0] += float(F.cross_entropy(logits.float(), y, reduction="sum"))
            sums[1] += float((logits.argmax(1) == y).sum())
            sums[2] += y.shape[0]
        loss, correct, count = self.dist.all_reduce_sum(sums)
        if count == 0:
            raise ValueError(f"cannot evaluate on an empty dataset ({desc})")
        return {"loss": loss / count, "acc": correct / count, "count": int(count)}

    def _limited(self, dataset: Dataset, batch_size: int) -> Dataset:
        """Smoke tests: ``max_batches`` limits evaluation too (else every epoch evaluates whole splits).
        The kept samples are spread evenly over the split, so a split ordered by class stays mixed."""
        if self.config.max_batches is None:
            return dataset
        keep = self.config.max_batches * batch_size * self.dist.world_size
        if keep >= len(dataset):
            return dataset
        return Subset(dataset, torch.linspace(0, len(dataset) - 1, keep).round().long().tolist())

    # -- checkpoints --------------------------------------------------------------------------------
    def _spec(self) -> dict:  # what every checkpoint carries to rebuild (and to resume) the run
        return {"format": CHECKPOINT_FORMAT, "model_spec": self.model_spec, "data_spec": self.data_spec,
                "config": self.config.to_dict(), "flags": self.run_flags, "resumes": self.resumes,
                "input_shape": self.input_shape, "initial_equivariance": self.initial_equivariance}

    def _last_good(self) -> tuple[str | None, int | None]:
        """``last.pt`` and its epoch, if this run has one (only finite states are ever written)."""
        last = self.out_dir / LAST
        if self.saved_epoch is None or not last.is_file():
            return None, None
        return str(last), self.saved_epoch

    def _write(self, obj: dict, name: str) -> None:
        """``save_atomic`` into the run directory; a failed write names the file and what is still intact."""
        path = self.out_dir / name
        try:
            save_atomic(obj, path)
        except (OSError, RuntimeError) as error:
            reason = (getattr(error, "strerror", None) or str(error).strip().splitlines()[-1] or
                      type(error).__name__)
            if name == LAST and self.saved_epoch is not None:
                previous = f"the previous {name} (end of epoch {self.saved_epoch}) is intact."
            elif path.is_file():
                previous = f"the previous {name} is intact."
            else:
                previous = "no checkpoint was written."
            found = existing_run_files(self.out_dir)
            then = ("continue with --resume" if LAST in found else
                    "start again: the same command with --overwrite" if found else "run the same command again")
            raise CheckpointWriteError(path, reason, previous, getattr(error, "errno", None), then) from error

    def _check_finite(self, epoch: int, val_loss: float) -> None:
        """Refuse to keep an epoch whose validation loss or weights are NaN / infinite, or whose validation
        loss is above the divergence bound."""
        if not math.isfinite(val_loss):
            raise NonFiniteLossError(val_loss, epoch, None, *self._last_good(), split="validation")
        if self.loss_bound is not None and val_loss > self.loss_bound:
            raise DivergenceError(val_loss, self.loss_bound, epoch, None, *self._last_good(), split="validation")
        # one host sync per epoch, outside the forward path; buffers too (BN statistics go into best.pt)
        tensors = [t for t in self.model.state_dict().values() if t.is_floating_point()]
        bad = torch.stack([~torch.isfinite(t.detach()).all() for t in tensors]).any() if tensors else False
        if bool(bad):
            raise NonFiniteLossError(float("nan"), epoch, None, *self._last_good(), split="parameters")

    def save(self) -> None:
        """Write ``last.pt`` (every rank takes part: RNG states are gathered; rank 0 writes)."""
        rngs = self.dist.gather(rng_state())
        if not self.dist.is_main:
            return
        state = dict(self._spec(), epoch=self.epoch, model=self.model.state_dict(),
                     optimizer=self.optimizer.state_dict(), scheduler=self.scheduler.state_dict(),
                     sampler_steps=sampler_steps(self.model), rng=rngs, world_size=self.dist.world_size,
                     best=self.best, epochs_since_best=self.epochs_since_best, history=self.history,
                     stopped=self.stopped)
        self._write(state, LAST)
        self.saved_epoch = self.epoch

    def _save_best(self) -> None:
        self.best_state = {k: v.detach().clone().cpu() for k, v in self.model.state_dict().items()}
        if self.dist.is_main:
            self._write(dict(self._spec(), epoch=self.epoch, model=self.best_state, **self.best,
                             learned_equivariance=learned_equivariance(self.model)), BEST)

    def resume(self, path: str | Path | None = None) -> int:
        """Restore the state of ``last.pt`` (or ``path``); training continues at the next epoch. Returns it.

        Temporary files that a killed save left in the run directory are removed first."""
        path = Path(path) if path is not None else self.out_dir / LAST
        if self.dist.is_main:
            remove_stale_temps(self.out_dir)
        state = load_checkpoint(path)
        if state.get("format") != CHECKPOINT_FORMAT or "optimizer" not in state:
            raise ValueError(f"{path} is not a training checkpoint written by pgcnn_triton: --resume needs a last.pt "
                             "(weights, optimizer and schedule); a best.pt holds the weights only (pgcnn eval "
                             "reads it)")
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as error:
            raise ValueError(f"--resume: the weights in {path} do not fit the model these flags build "
                             f"({str(error).splitlines()[0]}); resume with the flags the run was started with"
                             ) from None
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self._apply_learning_rates()
        self.resumes = list(state.get("resumes") or [])
        self.epoch, self.best = state["epoch"], state["best"]
        self.epochs_since_best, self.history = state["epochs_since_best"], list(state["history"])
        self.stopped = state.get("stopped")
        self.initial_equivariance = state.get("initial_equivariance")
        self._resumed_path = path
        if self.stopped == "early_stopping" and self.epochs_since_best < self.config.patience:
            self.stopped = None  # resumed with a larger --patience: the run goes on
        rngs = state["rng"]
        if len(rngs) == self.dist.world_size:
            set_rng_state(rngs[self.dist.rank])
        else:  # a different number of processes: the run continues, but not bit-for-bit
            torch.manual_seed(self.config.seed + 1000 * self.epoch + self.dist.rank)
        best_path = path.with_name(BEST)
        if best_path.is_file():
            self.best_state = load_checkpoint(best_path)["model"]
        self.saved_epoch = self.epoch
        return self.epoch + 1

    def _apply_learning_rates(self) -> None:
        """Make this config's learning rates the schedule's base rates again after a resume.

        The optimizer and scheduler states bring back the rates the run started with; a changed
        ``--lr`` / ``--lr-probs`` / ``--lr-omega0`` would otherwise be silently ignored. With unchanged rates
        this recomputes exactly the restored values (``LambdaLR``'s own formula), so resume stays bit-exact.
        """
        step = self.scheduler.last_epoch
        for group, base, factor in zip(self.optimizer.param_groups, self._base_lrs, self.scheduler.lr_lambdas):
            group["initial_lr"] = base
            group["lr"] = base * factor(step)
        self.scheduler.base_lrs = list(self._base_lrs)
        self.scheduler._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    # -- the whole run ------------------------------------------------------------------------------
    def fit(self) -> dict:
        """Train until ``epochs`` or early stopping, then test the best weights. Returns the summary.

        Claims ``out_dir`` first (see the class docstring): a directory that holds a run is refused
        unless ``resume`` or ``overwrite`` was given; a resumed run that is already complete trains
        nothing and returns its stored summary."""
        if self.out_dir is None:
            raise ValueError("Trainer.fit writes checkpoints: pass an out_dir, e.g. Trainer(model, data, config, "
                             "'runs/my-net'); Trainer(model, data, config).evaluate(dataset) needs none")
        with self._claim() as owner:
            if self.resume_from and self._resumed_path is None:
                path = self.out_dir / LAST if self.resume_from is True else Path(self.resume_from)
                if not path.is_file():
                    raise FileNotFoundError(f"Trainer(resume=...): no checkpoint at {path}; train once without "
                                            "resume first")
                self.resume(path)
            if self._resumed_path is not None:
                done = completed_summary(self.out_dir, {"epoch": self.epoch, "stopped": self.stopped}, self.config)
                if done is not None:
                    if self.dist.is_main:
                        tqdm.write(complete_message(self.out_dir, done, self.config, flags=self.run_directory
                                                    is not None))
                    return done
            elif owner is not None and self.overwrite and self.dist.is_main:
                removed = owner.clear()  # only now: a run refused above leaves the old one in place
                if removed:
                    tqdm.write(f"overwrite: removed the previous run's {', '.join(removed)} from {self.out_dir}")
            summary = self._fit()
        if self.dist.is_main and self.run_directory is None:  # pgcnn train prints it after its summary
            tqdm.write(f"run directory: {self.out_dir}")
        return summary

    @contextmanager
    def _claim(self):
        """Hold the run directory for :meth:`fit` (rank 0), unless the caller holds it already."""
        if self.run_directory is not None:
            yield None
            return
        # this trainer's own run (it saved an epoch here, or resumed from here) continues
        here = self.saved_epoch is not None and (self._resumed_path is None or
                                                 self._resumed_path.parent.resolve() == self.out_dir.resolve())
        here = here or self.resume_from is True or (
            bool(self.resume_from) and Path(self.resume_from).parent.resolve() == self.out_dir.resolve())
        owner = RunDirectory(self.out_dir, resume=here, overwrite=self.overwrite, wording="python")
        refusal = None
        if self.dist.is_main:
            try:
                owner.__enter__()
            except (OSError, ValueError) as error:
                refusal = error
        if self.dist.any(refusal is not None):
            raise refusal if refusal is not None else ValueError(f"rank 0 refused out_dir {self.out_dir}")
        try:
            yield owner
        finally:
            if self.dist.is_main:
                owner.__exit__(None, None, None)

    def _fit(self) -> dict:
        cfg = self.config
        # no mkdir here: the first artefact creates out_dir, so a run that dies before it leaves no empty directory
        if self.dist.is_main:  # also without progress bars: a log should say which precision trained
            tqdm.write(f"run directory: {self.out_dir}")
            tqdm.write(precision.format_choice(self.precision))
        if self.initial_equivariance is None and not self.history:
            self.initial_equivariance = learned_equivariance(self.model)
        started = time.perf_counter()
        while self.stopped is None and self.epoch < cfg.epochs:
            epoch = self.epoch + 1
            t0 = time.perf_counter()
            row = {"epoch": epoch, **self.train_epoch(epoch)}
            self.where = f"epoch {epoch}, validation"
            val = self.evaluate(self.data.val, "val")
            self._check_finite(epoch, val["loss"])
            row.update(val_loss=val["loss"], val_acc=val["acc"], lr=self.optimizer.param_groups[0]["lr"],
                       epoch_time_s=time.perf_counter() - t0, **equivariance_columns(learned_equivariance(self.model)))
            self.epoch = epoch
            self.history.append(row)
            if self._is_better(val["acc"], val["loss"]):
                self.best = {"best_epoch": epoch, "val_acc": val["acc"], "val_loss": val["loss"]}
                self.epochs_since_best = 0
                self._save_best()
            else:
                self.epochs_since_best += 1
                if self.epochs_since_best >= cfg.patience:
                    self.stopped = "early_stopping"
            self.where = f"epoch {epoch}, saving"
            self.save()
            self.where = f"after epoch {epoch}"
            if self.dist.is_main:
                write_metrics_csv(self.history, self.out_dir / "metrics.csv")
                tqdm.write(f"epoch {epoch}: train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f} | "
                           f"val loss {val['loss']:.4f} acc {val['acc']:.4f} | {row['epoch_time_s']:.1f}s")
        return self.finish(time.perf_counter() - started)

    def _title(self) -> str:
        return f"{self.out_dir}: {self.model_spec.get('label', 'model')}"

    def finish(self, train_time: float = 0.0) -> dict:
        """Load the best weights, evaluate on the test set, write summary and plots. Returns the summary."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        self.where = "the final test"
        test = self.evaluate(self.data.test, "test")
        if not math.isfinite(test["loss"]):
            best_epoch = (self.best or {}).get("best_epoch", self.epoch)
            raise NonFiniteLossError(test["loss"], best_epoch, None, *self._last_good(), split="test")
        rows = learned_equivariance(self.model)
        summary = {
            "model": self.model_spec, "data": self.data_spec, "dataset_sizes": self.data.sizes(),
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "epochs_run": self.epoch, "stopped": self.stopped or "completed",
            **(self.best or {}), "test_acc": test["acc"], "test_loss": test["loss"],
            "train_time_s": train_time, "world_size": self.dist.world_size,
            "learned_equivariance": rows, "config": self.config.to_dict(), "precision": self.precision,
            "flags": self.run_flags, "resumes": self.resumes, "initial_equivariance": self.initial_equivariance,
        }
        if self.dist.is_main:
            write_json(summary, self.out_dir / "summary.json")
            if self.history:
                write_metrics_csv(self.history, self.out_dir / "metrics.csv")
                plot_training_curves(self.history, self.out_dir / "curves.png", title=self._title(),
                                     initial=equivariance_columns(self.initial_equivariance or []))
            if rows:
                plot_learned_equivariance({self.model_spec.get("label", "model"): rows},
                                          self.out_dir / "learned_equivariance.png", title=self._title())
        return summary
