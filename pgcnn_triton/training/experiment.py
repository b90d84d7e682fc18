"""Run a whole experiment from parsed flags: data, model, trainer, resume, summary. Shared by the CLI and examples."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ..data import DataSplits
from ..models.control import set_eval_mode
from .args import (
    data_spec_from_args,
    model_spec_from_args,
    out_dir_from_args,
    resolved_flags,
    train_config,
)
from .checkpoint import seed_everything
from .custom_spec import UnbuildableModelError
from .distributed import DistContext, setup_distributed
from .errors import RunInterrupted
from .plots import plot_learned_equivariance, plot_training_curves
from .records import (
    equivariance_columns,
    equivariance_from_columns,
    format_equivariance_table,
    plural,
    read_metrics_csv,
    write_json,
)
from .resuming import compare_flags, complete_message, completed_summary, describe_changes, read_checkpoint
from .rundir import RunDirectory, existing_run_files
from .specs import build_model, load_from_spec
from .trainer import BEST, LAST, Trainer, learned_equivariance


def load_data(args: argparse.Namespace, dist: DistContext) -> DataSplits:
    """Load the dataset of ``args``; under DDP rank 0 goes first (it may download), the others wait."""
    spec = data_spec_from_args(args)
    if not dist.is_main:
        dist.barrier()
    try:
        data = load_from_spec(spec, download=args.download, progress=not args.no_progress and dist.is_main,
                              verify=not getattr(args, "no_verify_data", False))
    finally:
        if dist.is_main:
            dist.barrier()
    return data


def model_from_args(args: argparse.Namespace, data: DataSplits) -> tuple[dict, torch.nn.Module]:
    """``(model_spec, model)``: the model the flags train on ``data`` (what ``pgcnn train`` builds)."""
    spec = model_spec_from_args(args, data.in_channels, data.num_classes, data.image_size)
    model = build_model(spec)
    need = model.min_input_size() if hasattr(model, "min_input_size") else None
    if need is not None and data.image_size is not None and need > data.image_size:
        raise ValueError(f"the model these flags build needs images of at least {need}x{need} pixels "
                         f"({model.describe_stages()}), but --dataset {args.dataset} has {data.image_size}x"
                         f"{data.image_size}: pass a smaller --kernel-size")
    return spec, model


def train_from_args(args: argparse.Namespace, dist: DistContext | None = None, verbose: bool = True) -> dict:
    """Train as the flags say (see :func:`~pgcnn_triton.training.args.add_train_arguments`); returns the summary.

    Launched by ``torchrun`` (``WORLD_SIZE`` > 1) it trains with DistributedDataParallel; rank 0 writes.
    """
    own = dist is None
    dist = dist or setup_distributed(args.device)
    try:
        # the trainer (and its DDP wrapper) lives only inside _train: it is gone before the group is
        # destroyed, so no gloo object is torn down after its process group
        return _train(args, dist, verbose)
    finally:
        if own:
            dist.close()


def _train(args: argparse.Namespace, dist: DistContext, verbose: bool) -> dict:
    """The body of :func:`train_from_args` on an open context: claim the run directory (rank 0), then train."""
    config = train_config(args)
    flags = resolved_flags(args)
    out_dir = out_dir_from_args(args)
    resume = None
    if args.resume:
        resume = out_dir / LAST if args.resume == "last" else Path(args.resume)
    overwrite = bool(getattr(args, "overwrite", False))
    if args.resume == "last" and overwrite:
        raise ValueError("--resume and --overwrite contradict each other: --resume continues the run in the "
                         "out-dir, --overwrite replaces it; pass only one")
    # resuming from another directory's checkpoint starts a new run here: the usual refusal applies
    same_dir = resume is not None and resume.parent.resolve() == out_dir.resolve()
    owner = RunDirectory(out_dir, overwrite=overwrite, resume=same_dir)
    refusal = None
    if dist.is_main:  # rank 0 decides; every rank learns of a refusal below, so none waits for the others
        found = existing_run_files(out_dir) if resume is not None and not same_dir and not overwrite else []
        if found:
            refusal = FileExistsError(
                f"--resume {args.resume} starts a new run in --out-dir {out_dir} from another run's checkpoint, but "
                f"{out_dir} already holds a run ({', '.join(found)}): to continue that run pass --resume alone, to "
                f"replace it add --overwrite, or choose another --out-dir")
        else:
            try:
                owner.__enter__()
            except (OSError, ValueError) as error:
                refusal = error
    if dist.any(refusal is not None):
        if refusal is not None:
            raise refusal
        raise ValueError(f"rank 0 refused --out-dir {out_dir} (its message says why)")
    try:
        return _train_in(args, dist, verbose, config, flags, out_dir, resume, owner)
    finally:
        if dist.is_main:
            owner.__exit__(None, None, None)


def _train_in(args, dist, verbose, config, flags, out_dir, resume, owner) -> dict:
    """Data, model, trainer, resume, fit: into the run directory ``owner`` holds."""
    changes = {}
    if resume is not None:
        found = existing_run_files(resume.parent) if resume.parent.is_dir() and owner.resume else []
        if not resume.is_file() and resume.name == LAST and found:
            raise FileNotFoundError(
                f"--resume: {resume.parent} holds {', '.join(found)} but no {LAST} (the run stopped before its first "
                f"full checkpoint, or {LAST} was removed), so there is nothing to continue: start it again with --overwrite "
                f"instead of --resume (pgcnn eval {resume.parent} still reads its best.pt until then)"
                if BEST in found else
                f"--resume: {resume.parent} holds {', '.join(found)} but no {LAST}, so there is nothing to continue: "
                f"start it again with --overwrite instead of --resume")
        if not resume.is_file() and args.resume != "last":
            raise FileNotFoundError(f"--resume {args.resume}: no such file; check the path (--resume takes a run's "
                                    f"{LAST}, or alone: {out_dir / LAST})")
        if not resume.is_file():
            hint = "train once without --resume first"
            if not args.out_dir:
                hint += ("; the default --out-dir names the flags that differ from the defaults (not --epochs), "
                         "so to resume with another --lr pass the run's --out-dir")
            raise FileNotFoundError(f"--resume: no checkpoint at {resume} ({hint})")
        stored = read_checkpoint(resume, "start the run again with --overwrite, or evaluate best.pt with pgcnn eval")
        changes = compare_flags(stored.get("flags"), flags, resume, stored.get("config"))
        done = completed_summary(out_dir, stored, config) if resume.parent.resolve() == out_dir.resolve() else None
        del stored
        if done is not None:  # nothing to train: say so before loading any data
            if dist.is_main:
                print(complete_message(out_dir, done, config), flush=True)
            return done
    seed_everything(config.seed)
    data = load_data(args, dist)
    spec, model = model_from_args(args, data)
    if dist.distributed:  # same init everywhere (DDP broadcasts it), different group samples per rank
        torch.manual_seed(config.seed + 1 + dist.rank)
    trainer = Trainer(model, data, config, out_dir, dist=dist, model_spec=spec,
                      data_spec=data_spec_from_args(args), run_flags=flags)
    trainer.run_directory = owner  # held since _train: fit takes no lock of its own
    if owner.overwrite and dist.is_main and not owner.resume:
        removed = owner.clear()  # only now: a run that fails to start leaves the old one in place
        if removed and verbose:
            print(f"--overwrite: removed the previous run's {', '.join(removed)} from {out_dir}")
    if resume is not None:
        start = trainer.resume(resume)
        if changes:
            trainer.resumes.append({"after_epoch": start - 1,
                                    "changed": {k: {"stored": old, "given": new} for k, (old, new) in changes.items()}})
        if verbose and dist.is_main:
            changed = f" with {describe_changes(changes)}" if changes else ""
            print(f"resumed from {resume}: continuing at epoch {start}{changed}")
    try:
        summary = trainer.fit()
    except KeyboardInterrupt:
        raise RunInterrupted(interrupted_message(args, trainer, out_dir)) from None
    summary["out_dir"] = str(out_dir)
    if dist.distributed:
        print(f"[rank {dist.rank}/{dist.world_size}] finished: {plural(summary['epochs_run'], 'epoch')}, "
              f"test acc {summary['test_acc']:.4f}", flush=True)
    if verbose and dist.is_main:
        print(format_summary(summary))
    return summary


def interrupted_message(args: argparse.Namespace, trainer: Trainer, out_dir: Path) -> str:
    """Where a Ctrl-C stopped the run, what is kept and how to continue."""
    head = f"interrupted at {trainer.where}."
    if trainer.saved_epoch is None:
        return f"{head} No epoch had finished, so nothing was kept: run the command again to start over."
    if args.resume in (None, "last"):
        how = "run the same command again" if args.resume else "run the same command with --resume"
    else:
        how = f"run the same command with --resume {out_dir / LAST} in place of --resume {args.resume}"
    return f"{head} {out_dir / LAST} holds epoch {trainer.saved_epoch}: {how} to continue from it."


def format_summary(summary: dict) -> str:
    """A few lines: test accuracy with the best weights, and θ per layer."""
    head = (f"{summary['model'].get('label', 'model')} on {summary['data'].get('name')}: "
            f"test acc {summary['test_acc']:.4f} (best epoch {summary.get('best_epoch')}, "
            f"val acc {summary.get('val_acc', float('nan')):.4f}), {summary['parameters']:,} parameters, "
            f"{plural(summary['epochs_run'], 'epoch')}, {summary['train_time_s']:.0f} s")
    lines = [head]
    if summary.get("learned_equivariance"):
        lines.append(format_equivariance_table({summary["model"].get("label", "model"):
                                                summary["learned_equivariance"]}))
    if summary.get("out_dir"):
        lines.append(f"run directory: {summary['out_dir']}")
    return "\n".join(lines)


def evaluate_checkpoint(path: str | Path, *, split: str = "test", data_dir: str | None = None,
                        eval_mode: str | None = None, device: str | None = None, batch_size: int = 128,
                        verify_data: bool = True) -> dict:
    """Rebuild the model of a checkpoint (``best.pt`` or ``last.pt``, or a run directory: its ``best.pt``),
    load its weights, evaluate a split.

    The data come from ``data_dir`` when given (``pgcnn eval --data-dir``), otherwise from the directory
    stored in the checkpoint (the training run's ``--data-dir``). Either way the files are read safely
    (no code runs from a dataset file) and, with ``verify_data`` (default; ``--no-verify-data`` turns it
    off), the standard files' md5s are checked."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
    path = checkpoint_path(path)
    state = read_checkpoint(path, "pass another checkpoint (best.pt or last.pt of the run)")
    if "model_spec" not in state or not state["model_spec"]:
        raise ValueError(
            f"{path} has no model_spec, so pgcnn eval cannot rebuild its model: it was written by "
            "Trainer(...) without model_spec= (an older pgcnn_triton). For a PartialGCNN / GCNN, pass one when "
            "training: Trainer(model, data, config, out_dir, model_spec=pgcnn_triton.training.model_spec(family, "
            "preset, overrides)). For a network of your own, rebuild it in Python and load the weights: "
            "net.load_state_dict(pgcnn_triton.training.load_checkpoint(path)['model']), then "
            "pgcnn_triton.training.evaluate_model(net, dataset) (README: Your own network)")
    model = model_of_checkpoint(state, path)
    if eval_mode:
        model.set_eval_mode(eval_mode) if hasattr(model, "set_eval_mode") else set_eval_mode(model, eval_mode)
    if not state.get("data_spec"):
        raise ValueError(f"{path} has no data_spec, so pgcnn eval does not know its dataset: evaluate in Python "
                         "with pgcnn_triton.training.evaluate_model(net, dataset), or train with "
                         "Trainer(..., data_spec=pgcnn_triton.training.data_spec(name))")
    data = load_from_spec(state["data_spec"], root=data_dir, progress=False, verify=verify_data)
    result = evaluate_model(model, getattr(data, split), batch_size=batch_size, device=device)
    return {"checkpoint": str(path), "split": split, "epoch": state.get("epoch"), **result,
            "learned_equivariance": learned_equivariance(model)}


def evaluate_model(model: torch.nn.Module, dataset, *, batch_size: int = 128, device: str | None = None) -> dict:
    """Cross-entropy and accuracy of ``model`` (in eval mode, its own evaluation sampling) on a dataset of
    ``(image, label)`` pairs: ``{"loss", "acc", "count"}``. Writes nothing; needs no run directory.

    ``device``: ``"cpu"`` / ``"cuda"`` (default: cuda if available); the model is moved there."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(dev).eval()
    loss = correct = count = 0.0
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size)
    with torch.no_grad():
        for x, y in loader:
            logits = model(x.to(dev)).float()
            y = y.to(dev)
            loss += float(torch.nn.functional.cross_entropy(logits, y, reduction="sum"))
            correct += float((logits.argmax(1) == y).sum())
            count += y.shape[0]
    if count == 0:
        raise ValueError("evaluate_model: the dataset is empty")
    return {"loss": loss / count, "acc": correct / count, "count": int(count)}


def model_of_checkpoint(state: dict, path: str | Path, caller: str = "pgcnn eval") -> torch.nn.Module:
    """The model a checkpoint's ``model_spec`` describes, with its weights; a ``ValueError`` naming the file
    when the description cannot be built or the weights do not fit it (an edited or foreign file), or,
    for a network of your own that cannot be rebuilt, what ``caller``'s user calls instead."""
    try:
        model = build_model(state["model_spec"], path, caller)
    except UnbuildableModelError:
        raise
    except (TypeError, ValueError, KeyError) as error:
        raise ValueError(f"the model description (model_spec) in {path} cannot be built ({_first_line(error)}); "
                         "the file was edited or written by another version: use the run's other checkpoint, or "
                         "train again") from None
    if not isinstance(state.get("model"), dict):
        raise ValueError(f"{path} holds no model weights (its 'model' entry is "
                         f"{'missing' if 'model' not in state else type(state['model']).__name__}): it is not a "
                         "checkpoint of pgcnn_triton training, or was edited; use the run's other checkpoint")
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"the weights in {path} do not fit the model its model_spec describes "
                         f"({_first_line(error)}); the file was edited or written by another version: use the "
                         "run's other checkpoint, or train again") from None
    return model


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = " ".join(lines[:2]) if lines else type(error).__name__
    return text if len(text) < 300 else text[:297] + "..."


def checkpoint_path(path: str | Path) -> Path:
    """``path`` itself, or for a run directory its ``best.pt`` (``last.pt`` if no epoch finished a best)."""
    path = Path(path)
    if not path.is_dir():
        return path
    for name in (BEST, LAST):
        if (path / name).is_file():
            return path / name
    raise FileNotFoundError(f"{path} is a directory without {BEST} or {LAST}: is it a run directory?")


def run_names(run_dirs: list[Path]) -> list[str]:
    """A short distinct name per run directory: its name, or as many parent folders as tell them apart."""
    parts = [Path(d).resolve().parts for d in run_dirs]
    for depth in range(1, max(len(p) for p in parts) + 1):
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return [str(d) for d in run_dirs]  # the same directory twice


def _learned_equivariance_of(d: Path) -> tuple[str | None, list[dict]]:
    """(model label, learned-equivariance rows) of a run: its summary.json, else (a run cut short) the last
    epoch of its metrics.csv."""
    if (d / "summary.json").is_file():
        summary = json.loads((d / "summary.json").read_text())
        return summary.get("model", {}).get("label"), summary["learned_equivariance"]
    if (d / "metrics.csv").is_file():
        rows = read_metrics_csv(d / "metrics.csv")
        return None, equivariance_from_columns(rows[-1]) if rows else []
    raise FileNotFoundError(f"{d} has neither summary.json nor metrics.csv: is it a run directory?")


def _initial_of(d: Path) -> dict:
    """θ / mirror columns before training, from the run's summary.json (``{}`` if it has none)."""
    try:
        summary = json.loads((d / "summary.json").read_text())
    except (OSError, ValueError):
        return {}
    return equivariance_columns(summary.get("initial_equivariance") or [])


def plot_runs(run_dirs: list[str | Path], out: str | Path | None = None) -> list[Path]:
    """Redraw a run's figures from its files; with several runs, one comparison of their learned equivariance.

    A run cut short (no ``summary.json``) is drawn from its ``metrics.csv``: θ as of its last epoch.
    Comparison panels are titled by run directory (with the model's label where it differs).
    """
    run_dirs = [Path(d) for d in run_dirs]
    if not run_dirs:
        raise ValueError("run_dirs must name at least one run directory")
    models, written = {}, []
    for d, name in zip(run_dirs, run_names(run_dirs)):
        label, rows = _learned_equivariance_of(d)
        if len(run_dirs) == 1:
            name = label or name
        elif label and label != name:
            name = f"{name} ({label})"
        if rows:
            models[name] = rows
        if len(run_dirs) == 1 and (d / "metrics.csv").is_file() and read_metrics_csv(d / "metrics.csv"):
            written.append(plot_training_curves(read_metrics_csv(d / "metrics.csv"), d / "curves.png",
                                                title=f"{d}: {label or name}", initial=_initial_of(d)))
    if not models:  # translation-only runs cut short: no θ to draw
        return written
    target = Path(out) if out else (run_dirs[0] / "learned_equivariance.png" if len(run_dirs) == 1
                                    else run_dirs[0].parent / "learned_equivariance_comparison.png")
    written.append(plot_learned_equivariance(models, target))
    return written


def save_comparison(results: dict[str, dict], out_dir: str | Path, title: str) -> dict:
    """Write ``results.json`` and the side-by-side learned-equivariance PNG of several finished runs."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    png = plot_learned_equivariance({k: v["learned_equivariance"] for k, v in results.items()},
                                    out_dir / "learned_equivariance.png", title=title)
    json_path = write_json(results, out_dir / "results.json")
    return {"png": str(png), "json": str(json_path)}
