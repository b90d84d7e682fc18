"""Command-line flags shared by ``pgcnn train`` and the example scripts, and their resolution.

Every flag left unset falls back to the dataset's recipe (:mod:`.recipes`), then to
:class:`~pgcnn_triton.training.TrainConfig`'s default.
"""

from __future__ import annotations

import argparse
import hashlib
import math
from pathlib import Path

from ..data import DATASETS
from ..kernelnets import parse_kernel_net
from ..sampling import EVAL_MODES, MIRROR_GRADIENTS, SHAPE_MODES
from .config import LR_MAX, REGULARISER_MAX, REGULARISER_WHY, SCHEDULERS, TrainConfig
from .recipes import BUNDLED_RUNS, bundled_run, for_group, recipe
from .specs import (
    AUGERINO_FAMILIES,
    DATASET_OVERRIDES,
    FAMILIES,
    GROUPS,
    data_spec,
    model_spec,
    resolve_preset,
)

_BOOL = argparse.BooleanOptionalAction


#: How the help of a flag that falls back to the training recipe states its default.
_RECIPE = "default: the dataset's recipe; bundled-*: its short run"
#: How the help of a model flag states its default.
_PRESET = "default: the preset's; bundled-*: its short run"

#: What ``--out-dir`` defaults to (:func:`out_dir_from_args`).
OUT_DIR_HELP = ("run directory (default runs/<dataset>-<model>-<group>-<partial|full>, e.g. "
                "runs/cifar10-ckresnet-se2-partial; runs/<dataset>-<model>-t2 for --group t2; then "
                "_<flag>=<value> for each flag that differs from the defaults, except --epochs, e.g. "
                "runs/cifar10-ckresnet-se2-partial_lr=0.01_seed=7). An out-dir that holds a run is refused "
                "unless --resume or --overwrite is given")

#: Flags that may change on ``--resume``; each new value takes effect in the continued run and is recorded.
RESUME_MAY_CHANGE = ("epochs", "lr", "lr_probs", "lr_omega0", "gradient_clip", "patience")
#: Flags of the model architecture, resolved through the preset (``None``: the model's own default).
_MODEL_FLAGS = ("num_elements", "hidden", "kernel_size", "kernel_net", "shape_mode", "mirror_gradient",
                "per_batch_element", "eval_mode")
#: Training flags that define the run (the :class:`TrainConfig` field of the same name).
_TRAIN_FLAGS = ("epochs", "batch_size", "lr", "lr_probs", "lr_omega0", "weight_decay", "monotonic_decay",
                "scheduler", "warmup_epochs", "gradient_clip", "patience", "anneal_gumbel", "seed", "amp",
                "max_batches")


def kernel_net_flag(value: str) -> str:
    """``--kernel-net``: a kernel-net spec (:func:`~pgcnn_triton.kernelnets.parse_kernel_net`), without its
    spaces (it becomes part of the default run-directory name)."""
    try:
        parse_kernel_net(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return "".join(value.split())


def add_train_arguments(parser: argparse.ArgumentParser, out_dir_help: str | None = None,
                        **defaults) -> argparse.ArgumentParser:
    """Add every training flag to ``parser``; keyword ``defaults`` set per-script defaults (e.g. dataset),
    ``out_dir_help`` describes a script's own ``--out-dir`` default."""
    d = parser.add_argument_group("data")
    d.add_argument("--dataset", choices=DATASETS, default="cifar10", help="dataset (default %(default)s)")
    d.add_argument("--data-dir", default="data", help="directory with the dataset files (default %(default)s)")
    d.add_argument("--download", action="store_true", help="download missing files (CIFAR, STL-10; default off)")
    d.add_argument("--no-verify-data", action="store_true",
                   help="skip the md5 check of the standard dataset files (CIFAR, STL-10), to read your own variants "
                        "(default: checked)")
    d.add_argument("--train-size", type=int, default=None,
                   help="bundled-* datasets: training digits (bundled-rotmnist: images, default 3000; MNIST6: "
                        "sixes, default 300, each with its transformed copy); validation and test sets unchanged")
    m = parser.add_argument_group("model")
    m.add_argument("--model", choices=sorted(FAMILIES), default="ckresnet",
                   help="architecture (default %(default)s); augerino-ckresnet / augerino-gcnn: the T(2) network "
                        "behind a learned augmentation over --group (the paper's Augerino baselines)")
    m.add_argument("--group", choices=GROUPS, default=None, help="se2 (default), e2, or t2 (translations only)")
    m.add_argument("--partial", action=_BOOL, default=None, help="learn partial equivariance (default on)")
    m.add_argument("--num-elements", "-N", type=int, default=None, help=f"group elements N ({_PRESET})")
    m.add_argument("--preset", default=None,
                   help="start from this preset (default: the dataset's preset for --model, --group, --partial)")
    m.add_argument("--hidden", type=int, default=None, help=f"width of the first layer ({_PRESET})")
    m.add_argument("--kernel-size", type=int, default=None, help=f"kernel size k ({_PRESET})")
    m.add_argument("--kernel-net", type=kernel_net_flag, default=None, metavar="NET",
                   help="kernel network: SIREN, MAGNet, FourierNet, GaborNet, MLP, or the MLP with options, e.g. "
                        f"'MLP(norm=batch, activation=GELU)' (norm none|batch|layer; {_PRESET})")
    m.add_argument("--shape-mode", choices=SHAPE_MODES, default=None,
                   help="dynamic (n = ceil(N·θ) elements) or static (N masked slots, sync-free, compiles); same "
                        "function (default dynamic)")
    m.add_argument("--mirror-gradient", choices=MIRROR_GRADIENTS, default=None,
                   help="mirror-gate gradient: flag (paper, default) or features (also through the mirrored features); "
                        "Augerino models: none by default (the original's hard flip), flag / features learn the "
                        "mirror logit")
    m.add_argument("--per-batch-element", action=_BOOL, default=None,
                   help=f"one element set per sample instead of per batch ({_PRESET})")
    m.add_argument("--eval-mode", choices=EVAL_MODES, default=None, help="evaluation sampling (default deterministic)")
    t = parser.add_argument_group("training")
    t.add_argument("--epochs", type=int, default=None, help=f"training epochs ({_RECIPE})")
    t.add_argument("--batch-size", type=int, default=None, help=f"batch size per process ({_RECIPE})")
    t.add_argument("--lr", type=float, default=None, help=f"Adam learning rate of the weights ({_RECIPE})")
    t.add_argument("--lr-probs", type=float, default=None, help=f"learning rate of θ / mirror logits ({_RECIPE})")
    t.add_argument("--lr-omega0", type=float, default=None,
                   help="learning rate of a learnable SIREN ω0 (default: the same as --lr)")
    t.add_argument("--weight-decay", type=float, default=None, help=f"λ of the kernel-norm regulariser ({_RECIPE})")
    t.add_argument("--monotonic-decay", type=float, default=None, help=f"λ of the monotonic θ regulariser ({_RECIPE})")
    t.add_argument("--scheduler", choices=SCHEDULERS, default=None, help=f"learning-rate schedule ({_RECIPE})")
    t.add_argument("--warmup-epochs", type=int, default=None, help=f"linear warm-up epochs ({_RECIPE})")
    t.add_argument("--gradient-clip", type=float, default=None,
                   help=f"clip the global gradient norm to this value; 0: off; any finite value > 0 is taken, and one "
                        f"above every gradient norm (e.g. 1e38) clips nothing ({_RECIPE})")
    t.add_argument("--patience", type=int, default=None, help=f"early stopping patience in epochs ({_RECIPE})")
    t.add_argument("--anneal-gumbel", action=_BOOL, default=None,
                   help="anneal the mirror-gate temperature over the run (default on)")
    t.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    t.add_argument("--amp", action=_BOOL, default=None,
                   help="bf16 autocast (default: on for GPU, and on CPU where it has bf16 units: AMX or "
                        "AVX512-BF16; off on other CPUs)")
    t.add_argument("--channels-last", action=_BOOL, default=True, help="channels-last on GPU (default on)")
    t.add_argument("--compile", action="store_true", help="torch.compile the model (default off)")
    t.add_argument("--num-workers", type=int, default=None,
                   help="data-loader worker processes (default 0: in the main process)")
    t.add_argument("--max-batches", type=int, default=None,
                   help="smoke tests: at most this many batches per training epoch and per "
                   "validation / test pass (evaluation then sees max-batches x eval batch size samples, spread "
                   "evenly over each split; default: all)")
    t.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda if available")
    o = parser.add_argument_group("output")
    o.add_argument("--out-dir", default=None, help=out_dir_help or OUT_DIR_HELP)
    o.add_argument("--resume", nargs="?", const="last", default=None,
                   help="continue from OUT_DIR/last.pt (or the given checkpoint) at the next epoch "
                        "(default: a new run)")
    o.add_argument("--overwrite", action="store_true",
                   help="replace the run already in OUT_DIR (its checkpoints, metrics and summary; default: refuse)")
    o.add_argument("--no-progress", action="store_true", help="no progress bars (default: bars on a terminal)")
    o.add_argument("--log-interval", type=int, default=None, metavar="N",
                   help="without a progress bar (output to a file or pipe, or --no-progress): a line every N "
                        "training batches with loss, throughput and ETA (0: off; default "
                        f"{TrainConfig.log_interval})")
    o.add_argument("--traceback", action="store_true",
                   help="on an error show the full traceback, not one line (also: PGCNN_DEBUG=1; default off)")
    parser.set_defaults(**defaults)
    return parser


def fill_unset(args: argparse.Namespace, values: dict) -> argparse.Namespace:
    """Set each flag of ``values`` that ``args`` leaves unset (``None``); flags given on the command line win.

    With ``--group t2`` the group-only flags of ``values`` (a group preset, N) are not filled in
    (:func:`~pgcnn_triton.training.recipes.for_group`): shared settings never turn the translation-only
    baseline into a group CNN.
    """
    for key, value in for_group(values, getattr(args, "group", None)).items():
        if not hasattr(args, key):
            raise ValueError(f"values: {key!r} is not a training flag (add_train_arguments)")
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def apply_bundled_run(args: argparse.Namespace) -> dict:
    """On a ``bundled-*`` dataset, fill the flags ``args`` leaves unset with its short CPU run; returns them.

    The values are :data:`~pgcnn_triton.training.recipes.BUNDLED_RUNS`, the same as the examples'. Their
    preset (a CKResNet SE(2)/E(2) one, also an Augerino CKResNet's) is left out where it cannot apply:
    ``--model gcnn`` / ``augerino-gcnn`` or ``--group t2``,
    which then start from the dataset's preset as without a short run. Other datasets: nothing changes, ``{}``.
    """
    if args.dataset not in BUNDLED_RUNS:
        return {}
    values = bundled_run(args.dataset, args.group)  # --group t2: without the group-only flags (preset, N)
    if args.model not in ("ckresnet", "augerino-ckresnet"):  # the MNIST6 presets exist for both
        values.pop("preset", None)
    filled = {k: v for k, v in values.items() if getattr(args, k) is None}
    fill_unset(args, filled)
    return filled


def describe_bundled_run(dataset: str, filled: dict) -> str:
    """The log line of :func:`apply_bundled_run`: which settings it filled, and how to get the paper's."""
    settings = ", ".join(f"{k.replace('_', '-')} {v}" for k, v in filled.items()) or "none (all flags given)"
    return (f"{dataset}: the bundled short CPU run (training/recipes.py BUNDLED_RUNS, as the examples) sets the "
            f"flags left unset: {settings}; --paper for the paper's recipe")


def group_of(args: argparse.Namespace) -> str:
    """The group flag, ``"se2"`` when unset."""
    return args.group or "se2"


def partial_of(args: argparse.Namespace) -> bool:
    """The partial flag, on when unset; always off for the T(2) baseline."""
    return group_of(args) != "t2" and (args.partial is None or bool(args.partial))


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` of parsed flags: flag, else the dataset recipe, else the default.

    Out-of-range flags raise a ``ValueError`` naming the flag as typed (``--epochs must be ≥ 1, got 0``)."""
    check_flag_values(args)
    values = recipe(args.dataset, args.model, group_of(args), partial_of(args))
    flags = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "lr_probs": args.lr_probs,
             "lr_omega0": args.lr_omega0, "weight_decay": args.weight_decay, "monotonic_decay": args.monotonic_decay,
             "scheduler": args.scheduler, "warmup_epochs": args.warmup_epochs, "gradient_clip": args.gradient_clip,
             "patience": args.patience, "num_workers": args.num_workers, "max_batches": args.max_batches,
             "anneal_gumbel": args.anneal_gumbel}
    values.update({k: v for k, v in flags.items() if v is not None})
    log_interval = getattr(args, "log_interval", None)
    if log_interval is not None:
        values["log_interval"] = log_interval
    return TrainConfig(seed=args.seed, amp=args.amp, channels_last=args.channels_last, compile=args.compile,
                       progress=not args.no_progress, **values)


_INT_MIN = {"epochs": 1, "batch_size": 1, "patience": 1, "max_batches": 1, "num_elements": 1, "hidden": 1,
            "kernel_size": 1, "warmup_epochs": 0, "num_workers": 0, "seed": 0, "log_interval": 0}
_FLOAT_POSITIVE = ("lr", "lr_probs", "lr_omega0")
_FLOAT_NONNEGATIVE = ("weight_decay", "monotonic_decay", "gradient_clip")
#: Regulariser weights, bounded by :data:`~pgcnn_triton.training.config.REGULARISER_MAX`.
_REGULARISERS = ("weight_decay", "monotonic_decay")


def flag_name(dest: str) -> str:
    """The command-line spelling of a flag's destination: ``"batch_size"`` → ``"--batch-size"``."""
    return "--num-elements (-N)" if dest == "num_elements" else "--" + dest.replace("_", "-")


def check_flag_values(args: argparse.Namespace) -> None:
    """Raise a ``ValueError`` naming the first numeric flag out of range, as the user typed it."""
    for dest, low in _INT_MIN.items():
        value = getattr(args, dest, None)
        if value is not None and value < low:
            raise ValueError(f"{flag_name(dest)} must be ≥ {low}, got {value}")
    for dest in _FLOAT_POSITIVE + _FLOAT_NONNEGATIVE:
        value = getattr(args, dest, None)
        if value is None:
            continue
        positive = dest in _FLOAT_POSITIVE
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            takes = ("> 0, or 0 for no clipping" if dest == "gradient_clip" else "> 0" if positive else "≥ 0")
            raise ValueError(f"{flag_name(dest)} must be a finite number {takes}, got {value}")
        if positive and value > LR_MAX:
            raise ValueError(f"{flag_name(dest)} {value:g} is too large: Adam's first step, 10 x the rate, would "
                             f"overflow float32; pass at most {LR_MAX:g} (typical rates: 1e-4 to 1e-2)")
        if dest in _REGULARISERS and value > REGULARISER_MAX:
            raise ValueError(f"{flag_name(dest)} {value:g} is too large: {REGULARISER_WHY}; pass at most "
                             f"{REGULARISER_MAX:g}")
    kernel_size = getattr(args, "kernel_size", None)
    if kernel_size is not None and kernel_size % 2 == 0:
        raise ValueError(f"--kernel-size must be odd (a kernel has a centre pixel), got {kernel_size}: "
                         f"pass {kernel_size - 1} or {kernel_size + 1}")


def check_flag_combinations(args: argparse.Namespace, typed: set[str]) -> None:
    """Refuse flags the user typed (``typed``: their destinations) that the rest of the run contradicts,
    naming both flags: ``--lr-probs`` for a model without θ (``--no-partial``, ``--group t2``), and a
    ``--warmup-epochs`` that is not shorter than the run (the schedule would cut it to ``--epochs`` − 1).
    Values filled in from a recipe or a bundled short run are not checked: only what was typed."""
    if "lr_probs" in typed and not partial_of(args):
        reason = "--group t2 (translations only)" if group_of(args) == "t2" else "--no-partial"
        raise ValueError(f"--lr-probs sets the learning rate of θ (the partial-equivariance parameters), which a "
                         f"model trained with {reason} does not have: drop --lr-probs, or drop {reason}")
    if "warmup_epochs" in typed and args.warmup_epochs:
        epochs = train_config(args).epochs
        if args.warmup_epochs >= epochs:
            raise ValueError(f"--warmup-epochs {args.warmup_epochs} is not shorter than the run (--epochs {epochs}): "
                             f"the learning rate would never finish warming up; pass --warmup-epochs ≤ {epochs - 1} "
                             f"or more --epochs")


def _preset_and_overrides(args: argparse.Namespace) -> tuple[str, dict]:
    """The preset the flags start from and the flags' overrides of it (before the data's own)."""
    if args.preset:
        preset, overrides = args.preset, {}
        if args.group == "t2":
            raise ValueError("--group t2 cannot be combined with --preset; pick a t2 preset instead "
                             "(e.g. --preset rotmnist-t2) or drop --group t2")
        if args.group is not None:
            overrides["group"] = args.group.upper()
        if args.partial is not None:
            overrides["partial"] = bool(args.partial)
    else:
        preset, overrides = resolve_preset(args.model, args.dataset, group_of(args), partial_of(args))
    if args.model in AUGERINO_FAMILIES and group_of(args) == "t2":
        raise ValueError(f"--group t2 does not apply to --model {args.model}: an Augerino model is already a "
                         "translation-only (T(2)) network behind a learned augmentation over se2 or e2; pick "
                         f"--group se2 / e2, or --model {args.model.removeprefix('augerino-')} --group t2 for the "
                         "plain CNN")
    translations_only = group_of(args) == "t2" or FAMILIES[args.model].PRESETS.get(preset, {}).get("num_elements") == 1
    if translations_only and args.num_elements not in (None, 1):
        raise ValueError(f"--num-elements {args.num_elements} does not apply to a translation-only (T(2)) model, "
                         "which has one group element per layer: drop --num-elements, or train a group model "
                         "(--group se2 / e2)")
    if translations_only and args.partial:
        raise ValueError("--partial does not apply to a translation-only (T(2)) model: it has no group subset to "
                         "learn; drop --partial, or train a group model (--group se2 / e2)")
    overrides.update(DATASET_OVERRIDES.get(args.dataset, {}))
    for flag in _MODEL_FLAGS:
        value = getattr(args, flag)
        if value is not None:
            overrides[flag] = value
    group = str({**FAMILIES[args.model].PRESETS.get(preset, {}), **overrides}.get("group", "SE2")).upper()
    if group == "E2" and args.num_elements is not None and args.num_elements % 2:
        source = "--group e2" if args.group == "e2" else f"the preset {preset}"
        raise ValueError(f"--num-elements (-N) must be even for E(2) ({source}): N/2 rotations x 2 mirrors, got "
                         f"{args.num_elements}; pass -N {args.num_elements + 1}")
    return preset, overrides


def model_spec_from_args(args: argparse.Namespace, in_channels: int, num_classes: int,
                         image_size: int | None = None) -> dict:
    """The model spec of parsed flags for data with ``in_channels``, ``num_classes`` and square ``image_size``.

    With a learnable final pooling (the full CIFAR-10 presets) its size is derived from the image size,
    the pooling and the kernel size, so ``--kernel-size`` and other inputs keep working.
    """
    check_flag_values(args)
    preset, overrides = _preset_and_overrides(args)
    overrides.update(in_channels=in_channels, num_classes=num_classes)
    if image_size is not None:
        overrides.update(final_pool_size(FAMILIES[args.model].PRESETS.get(preset, {}), overrides, image_size))
    return model_spec(args.model, preset, overrides, label=run_kind(args))


def final_pool_size(preset: dict, overrides: dict, image_size: int) -> dict:
    """``{"final_spatial_dim": (s, s)}`` for a model with a learnable final pooling, else ``{}``."""
    kwargs = {**preset, **overrides}
    if not kwargs.get("learnable_final_pooling"):
        return {}
    size = image_size
    for _ in kwargs.get("pool_blocks", ()):
        size //= 2
    side = size - kwargs.get("kernel_size", 7) + 1
    if side < 1:
        raise ValueError(f"kernel_size {kwargs.get('kernel_size', 7)} is larger than the final feature map ({size})")
    return {"final_spatial_dim": (side, side)}


def data_spec_from_args(args: argparse.Namespace) -> dict:
    """The dataset spec of parsed flags (``--dataset``, ``--data-dir``, ``--train-size``)."""
    size = getattr(args, "train_size", None)
    if size is None:
        return data_spec(args.dataset, args.data_dir)
    if not args.dataset.startswith("bundled-"):
        raise ValueError(f"--train-size applies to the bundled-* datasets only, got --dataset {args.dataset}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"--train-size must be a positive integer, got {size!r}")
    return data_spec(args.dataset, args.data_dir, train=size)


def run_kind(args: argparse.Namespace) -> str:
    """``"se2-partial"``, ``"e2-full"``, ``"t2"``, ...: what the flags train."""
    group = group_of(args)
    return "t2" if group == "t2" else f"{group}-{'partial' if partial_of(args) else 'full'}"


def resolved_flags(args: argparse.Namespace) -> dict:
    """What each flag that defines the run resolves to (flag, else recipe or preset, else default).

    Stored in every checkpoint and compared on ``--resume``; keys are flag destinations (``"batch_size"``).
    Runtime flags (``--device``, ``--num-workers``, ``--compile``, ``--data-dir``, ...) are not included:
    they do not change what is trained. Model values the preset leaves to the model's default are ``None``.
    """
    config = train_config(args)
    preset, overrides = _preset_and_overrides(args)
    kwargs = {**FAMILIES[args.model].PRESETS.get(preset, {}), **overrides}
    flags = {"dataset": args.dataset, "train_size": getattr(args, "train_size", None), "model": args.model,
             "group": group_of(args), "partial": partial_of(args), "preset": preset}
    flags.update({name: kwargs.get(name) for name in _MODEL_FLAGS})
    flags.update({name: getattr(config, name) for name in _TRAIN_FLAGS})
    return flags


def _defaults_like(args: argparse.Namespace) -> argparse.Namespace:
    """The flags of the same dataset, model, group and partial with nothing else given: the reference the
    default out-dir is named against. The bundled short run (:data:`BUNDLED_RUNS`) counts as the default
    when ``args`` has it filled in (the example scripts do), so their plain runs get the plain name."""
    ref = add_train_arguments(argparse.ArgumentParser()).parse_args([])
    ref.dataset, ref.model, ref.group, ref.partial = args.dataset, args.model, args.group, args.partial
    short = BUNDLED_RUNS.get(args.dataset)
    if short and all(getattr(args, key, None) is not None for key in short):
        fill_unset(ref, bundled_run(args.dataset))
    return ref


def _value_text(value) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def out_dir_from_args(args: argparse.Namespace) -> Path:
    """``--out-dir``, or the default run directory (:data:`OUT_DIR_HELP`).

    The default is ``runs/<dataset>-<model>-<kind>`` followed by ``_<flag>=<value>`` for every flag of
    :func:`resolved_flags` whose value differs from the defaults (:func:`_defaults_like`), so runs of
    different settings never share a directory. ``--epochs`` is left out: ``--resume --epochs N`` finds
    the run it extends. A name longer than 120 characters ends in a hash of the differing flags instead.
    """
    if args.out_dir:
        return Path(args.out_dir)
    base = f"{args.dataset}-{args.model}-{run_kind(args)}"
    given, reference = resolved_flags(args), resolved_flags(_defaults_like(args))
    parts = [f"{name.replace('_', '-')}={_value_text(value)}" for name, value in given.items()
             if name not in ("epochs", "dataset", "model", "group", "partial") and value != reference.get(name)]
    name = "_".join([base, *parts])
    if len(name) > 120:
        name = f"{base}_{hashlib.sha1('_'.join(parts).encode()).hexdigest()[:12]}"
    return Path("runs") / name
