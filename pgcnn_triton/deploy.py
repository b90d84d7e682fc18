"""Deployment files of a trained model: a ``torch.export`` program (``.pt2``) or an ONNX file.

Both hold the portable program of :mod:`pgcnn_triton.portable` (standard ATen ops, dynamic batch
axis), so they run where pgcnn_triton is not installed: the ``.pt2`` with ``torch.export.load`` (plain
torch), the ONNX file in ONNX Runtime, TensorRT, ... ::

    pgcnn_triton.deploy.export_model(model, "model.onnx", example_input=x)        # from a model
    pgcnn_triton.deploy.export_checkpoint("runs/rotmnist", "model.pt2")            # from a run
    pgcnn export runs/rotmnist --format onnx --out model.onnx                      # the same, CLI

The ONNX file has one input ``x`` ``[batch, C, H, W]`` (float32) and one output ``logits``
``[batch, classes]`` (``batch`` the dynamic axis); H and W are fixed at the training images' size.

Both compute no more than the library's CPU lowering: each group conv is the few standard
convolutions of :mod:`pgcnn_triton.portable_convs` over the in-disk taps, no zeros outside the disk;
in the ONNX file the wide 5×5 and 3×3 pieces are Winograd convolutions (:mod:`pgcnn_triton.winograd`: about
half the multiply-adds, ``conv_algorithm``).

* **ONNX: the model's size.** The file holds each layer's kernel net and its fixed sampled input
  points (a few kB per layer), not the conv weights they expand to (the N_out·N_in element pairs
  make those ~50× the parameters of the CKResNet presets): the expansion is a constant subgraph,
  which ONNX Runtime folds into the conv weights once, when the session is created (any graph
  optimization level but ``ORT_DISABLE_ALL``; the default is ``ORT_ENABLE_ALL``). So the file is about the size of the fp32
  parameters, runs in a plain ``onnxruntime`` CPU session with no custom op, and then convolves
  with no more multiply-adds than the frozen library model. The file uses the exporter's default
  opset (20: ONNX Runtime 1.17 or later); a runtime that does not fold constants runs it correctly
  but evaluates the kernel nets at every call.
* **.pt2: the conv weights.** Eager torch evaluates every node at every call, so the program holds
  the frozen banks cut into the convs' weights (the in-disk taps: about the frozen model's size).
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import warnings
from pathlib import Path

import torch
from torch import nn

from .portable import example_for, export_program
from .winograd import CONV_ALGORITHMS

#: ``--format`` values: ``torch`` (a ``torch.export.save`` program, ``.pt2``) or ``onnx``.
FORMATS = ("onnx", "torch")
SUFFIXES = {".onnx": "onnx", ".pt2": "torch"}

#: Side of the training images of each dataset (the exported programs fix H = W at it).
IMAGE_SIZES = {"cifar10": 32, "cifar100": 32, "rotmnist": 28, "mnist6-180": 28, "mnist6-m": 28, "pcam": 96, "stl10": 96,
               "bundled-mnist6-180": 28, "bundled-mnist6-m": 28, "bundled-rotmnist": 28}

ONNX_INPUT, ONNX_OUTPUT = "x", "logits"

#: The largest tensor (elements) the exporter's optimizer may fold into the ONNX file: shapes and
#: small constants. The kernel nets' subgraph stays a graph, which ONNX Runtime folds when the session
#: is created, so the file keeps the size of the parameters (folding it here would write the banks).
FOLD_LIMIT = 1024


class ExportDependencyError(ImportError, ValueError):
    """The ONNX exporter's packages are missing (a ValueError too, so the CLI reports it in one line)."""


#: ``resolve_format``'s ``entry`` for the ``pgcnn export`` command: its errors name ``--format`` / ``--out``.
CLI_ENTRY = "pgcnn export"


def resolve_format(format: str | None, out, entry: str = "resolve_format") -> str:
    """``format`` checked, or read off ``out``'s suffix (``.onnx`` / ``.pt2``) when None.

    Errors name what the caller used: ``entry`` is the Python function (``"export_model"``: its ``format=``
    argument), or :data:`CLI_ENTRY` for the command line (its ``--format`` and ``--out`` flags)."""
    cli = entry == CLI_ENTRY
    argument = "--format" if cli else f"{entry}(..., format=...)"
    if format is None:
        suffix = Path(out).suffix.lower()
        if suffix not in SUFFIXES:
            given, fix = ((f"--out {str(out)!r}", "pass --format onnx or --format torch") if cli else
                          (f"out={str(out)!r}", "pass format='onnx' or format='torch', or end the path in .onnx / .pt2"))
            raise ValueError(f"{argument} is needed for an output without a .onnx or .pt2 suffix, got {given}: {fix}")
        return SUFFIXES[suffix]
    if format not in FORMATS:
        raise ValueError(f"{argument} must be one of {FORMATS}, got {format!r}")
    return format


def resolve_conv_algorithm(conv_algorithm: str | None, format: str, flag: str = "out") -> str:
    """``conv_algorithm`` checked, or the format's default when None: ``"auto"`` for ONNX (Winograd where
    ONNX Runtime runs it faster), ``"direct"`` for ``.pt2`` (eager torch's convolutions are faster).
    ``flag``: as :func:`export_model`'s; a command-line one (``"--out"``) names ``--conv-algorithm``."""
    if conv_algorithm is None:
        return "auto" if format == "onnx" else "direct"
    if conv_algorithm not in CONV_ALGORITHMS:
        name = "--conv-algorithm" if flag.startswith("--") else "conv_algorithm"
        raise ValueError(f"{name} must be one of {', '.join(CONV_ALGORITHMS)}, got {conv_algorithm!r}")
    return conv_algorithm


def _check_onnx_exporter() -> None:
    missing = []
    for name in ("onnx", "onnxscript"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ExportDependencyError(f"ONNX export needs the {' and '.join(missing)} package"
                                    f"{'s' if len(missing) > 1 else ''}: pip install 'pgcnn_triton[export]'")


#: Warnings of torch's own export machinery that say nothing about the user's model.
_TORCH_NOISE = (r"`isinstance\(treespec, LeafSpec\)` is deprecated",)


def _temp_beside(out: Path, flag: str) -> Path:
    """An empty temporary file beside ``out`` (same suffix), created before the slow export: a target that
    cannot be written fails at once, naming ``out``. Its mode is a new file's (0o666 less the umask)."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.is_dir():
            raise IsADirectoryError(errno.EISDIR, "it is a directory")
        while True:
            tmp = out.with_name(f".{out.stem}.{secrets.token_hex(4)}{out.suffix}")
            try:
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
                return tmp
            except FileExistsError:
                continue
    except OSError as error:
        reason = error.strerror or str(error)
        raise ExportTargetError(f"cannot write {flag} {out} ({reason}): choose another {flag} in a directory "
                                "you can write to") from None


class ExportTargetError(ValueError):
    """The output file of an export cannot be written (checked before the export runs)."""


def _write_atomic(out: Path, write, flag: str = "out") -> Path:
    """Run ``write(tmp_path)`` then move the file onto ``out``: a failed export leaves ``out`` as it was."""
    tmp = _temp_beside(out, flag)
    try:
        write(str(tmp))
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return out


def _name_batch_axis(graph) -> None:
    """Call the input's dynamic first axis ``batch`` (the exporter names it after its symbol, ``s77``),
    in every value of the graph that has it."""
    import onnx_ir as ir

    first = graph.inputs[0].shape[0] if graph.inputs[0].shape is not None else None
    if not isinstance(first, ir.SymbolicDim) or first.value == "batch":
        return
    old = first.value
    values = [*graph.inputs, *graph.outputs, *(v for node in graph for v in node.outputs)]
    for value in values:
        if value.shape is not None and any(isinstance(d, ir.SymbolicDim) and d.value == old for d in value.shape):
            value.shape = ir.Shape(["batch" if isinstance(d, ir.SymbolicDim) and d.value == old else d
                                    for d in value.shape])


def export_model(model: nn.Module, out, format: str | None = None,
                 example_input: torch.Tensor | None = None, *, conv_algorithm: str | None = None,
                 flag: str = "out") -> Path:
    """Write the portable program of ``model`` to ``out`` and return its path.

    Args:
        model: a pgcnn_triton model, frozen or not (not changed); it is exported in deterministic
            evaluation (see :func:`pgcnn_triton.portable.export_program`).
        out: the file to write (replaced only once the export succeeded).
        format: ``"torch"`` (``torch.export.save``, ``.pt2``) or ``"onnx"``; default: from ``out``'s
            suffix.
        example_input: an input ``[B, C, H, W]``; fixes H and W (default 32×32).
        conv_algorithm: ``"auto"`` (the ONNX default: wide 5×5 and 3×3 pieces as Winograd convolutions, which
            ONNX Runtime's CPU session runs faster), ``"direct"`` (the ``.pt2`` default: every piece a
            convolution, for runtimes with fast convolutions) or ``"winograd"`` (every 5×5 and 3×3 piece); see
            :mod:`pgcnn_triton.winograd`.
        flag: how errors name ``out`` (``pgcnn export``: ``"--out"``).

    ONNX needs ``onnx`` and ``onnxscript`` (``pip install 'pgcnn_triton[export]'``); the file is
    self-contained (weights inside, no ``.data`` file), its batch axis is named ``batch``. It holds the
    kernel nets (module docstring); for an already frozen ``model`` (its kernel nets are gone) it holds the
    conv weights, as a ``.pt2`` does. The file gets a new file's mode (0644 under the usual umask). An
    ``out`` that cannot be written is reported (:class:`ExportTargetError`) before the export runs.
    """
    out = Path(out)
    format = resolve_format(format, out, "export_model")
    conv_algorithm = resolve_conv_algorithm(conv_algorithm, format, flag)
    if format == "onnx":
        _check_onnx_exporter()
    tmp = _temp_beside(out, flag)  # fail now, not after the export
    tmp.unlink()
    with warnings.catch_warnings():
        for message in _TORCH_NOISE:
            warnings.filterwarnings("ignore", message=message, category=FutureWarning)
        # the ONNX file holds the kernel nets, whose constant subgraph ONNX Runtime folds at session creation;
        # a .pt2 runs in eager torch, which would evaluate them at every call: it holds the conv weights
        program = export_program(model, example_input, weights="kernel-net" if format == "onnx" else "packed",
                                 conv_algorithm=conv_algorithm)
        if format == "torch":
            return _write_atomic(out, lambda path: torch.export.save(program, path), flag)
        x = example_for(model, example_input)

        def write_onnx(path):
            # the exporter logs a warning per torchvision op it cannot register: noise for these models
            registration = logging.getLogger("torch.onnx._internal.exporter._registration")
            level = registration.level
            registration.setLevel(logging.ERROR)
            try:
                onnx_program = torch.onnx.export(program, (x,), dynamo=True, input_names=[ONNX_INPUT],
                                                 output_names=[ONNX_OUTPUT], external_data=False, verbose=False,
                                                 optimize=False)
            finally:
                registration.setLevel(level)
            import onnxscript.optimizer

            onnxscript.optimizer.optimize_ir(onnx_program.model, output_size_limit=FOLD_LIMIT)
            _name_batch_axis(onnx_program.model.graph)
            for node in onnx_program.model.graph:
                # the exporter's per-node notes (stack traces with this machine's paths): a tenth of the file
                node.metadata_props.clear()
            onnx_program.save(path, external_data=False)

        return _write_atomic(out, write_onnx, flag)


def load_trained(path) -> tuple[nn.Module, dict]:
    """The model of a checkpoint (``best.pt`` / ``last.pt``, or a run directory: its best), in eval
    mode on the CPU, and what the checkpoint says of its inputs: its ``data_spec`` plus ``input_shape``
    (``[C, H, W]`` of the training images, where recorded).

    A ``ValueError`` naming the file refuses a checkpoint holding NaN / ±inf in any floating tensor
    (:class:`~pgcnn_triton.training.NonFiniteCheckpointError`) or weights that do not fit its model
    description. A network of your own is rebuilt from the class and arguments the checkpoint records
    (:mod:`pgcnn_triton.training.custom_spec`); where it cannot be, the ``ValueError`` says what to
    call instead (:func:`export_model` on the rebuilt network)."""
    from .training.checkpoint import load_checkpoint
    from .training.experiment import checkpoint_path, model_of_checkpoint

    path = checkpoint_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: pass a checkpoint file or a run directory")
    state = load_checkpoint(path)
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{path} holds no model weights: not a checkpoint written by pgcnn_triton training")
    if not state.get("model_spec"):
        raise ValueError(
            f"{path} records no way to rebuild its network (written by an older pgcnn_triton's Trainer without "
            "model_spec=): rebuild the network in Python, net.load_state_dict(pgcnn_triton.training."
            f"load_checkpoint({str(path)!r})['model']), then pgcnn_triton.deploy.export_model(net, 'model.onnx', "
            "example_input=torch.zeros(1, C, H, W))")
    model = model_of_checkpoint(state, path, "pgcnn export")
    info = dict(state.get("data_spec") or {})
    if state.get("input_shape"):
        info["input_shape"] = list(state["input_shape"])
    return model.eval(), info


def checkpoint_input(model: nn.Module, data_spec: dict, input_size: int | None = None) -> torch.Tensor:
    """An example input ``[1, C, S, S]`` for a checkpoint's model: S = ``input_size``, else the training
    images' (``data_spec["input_shape"]`` or the dataset's known size)."""
    shape = data_spec.get("input_shape")
    if input_size is None:
        input_size = IMAGE_SIZES.get(data_spec.get("name"))
        if input_size is None and shape:
            input_size = int(shape[-1])
        if input_size is None:
            raise ValueError(f"the checkpoint's dataset {data_spec.get('name')!r} has no known image size: "
                             f"pass --input-size")
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 1:
        raise ValueError(f"--input-size must be a positive int, got {input_size!r}")
    min_size = getattr(model, "min_input_size", None)
    need = min_size() if callable(min_size) else 1
    if input_size < need:
        raise ValueError(f"--input-size must be >= {need} for this model ({model.describe_stages()}), "
                         f"got {input_size}")
    channels = getattr(model, "input_channels", None) or (int(shape[0]) if shape else None)
    if channels is None:
        raise ValueError("the checkpoint does not say how many input channels its network takes: export it with "
                         "pgcnn_triton.deploy.export_model(net, out, example_input=torch.zeros(1, C, H, W))")
    return torch.zeros(1, channels, input_size, input_size)


def export_checkpoint(path, out, format: str | None = None, input_size: int | None = None,
                      flag: str = "out", conv_algorithm: str | None = None) -> Path:
    """:func:`export_model` of a checkpoint's model (``path``: a checkpoint or a run directory);
    ``input_size``: the image side (default: that of the checkpoint's training images).
    ``out`` is checked for writability before the (slow) load and export."""
    out = Path(out)
    format = resolve_format(format, out, "export_checkpoint")  # before the (slow) load: fails at once
    resolve_conv_algorithm(conv_algorithm, format, flag)
    _temp_beside(out, flag).unlink()
    model, spec = load_trained(path)
    return export_model(model, out, format, checkpoint_input(model, spec, input_size), conv_algorithm=conv_algorithm,
                        flag=flag)


def add_arguments(parser) -> None:
    """The ``pgcnn export`` flags."""
    parser.add_argument("checkpoint", help="a checkpoint file, or a run directory (its best.pt)")
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="onnx (ONNX file) or torch (torch.export program, .pt2); default: from --out's suffix")
    parser.add_argument("--out", required=True, help="the file to write (.onnx or .pt2; required, no default)")
    parser.add_argument("--conv-algorithm", choices=CONV_ALGORITHMS, default=None,
                        help="auto (ONNX default: wide 5x5 and 3x3 convs as Winograd convolutions, faster in ONNX "
                             "Runtime), direct (.pt2 default: plain convolutions) or winograd (every 5x5 and 3x3 conv)")
    parser.add_argument("--input-size", type=int, default=None,
                        help="image side H = W the program takes (default: the checkpoint's dataset's)")


def run(args) -> Path:
    """``pgcnn export``: write the file, return its path."""
    resolve_format(args.format, args.out, CLI_ENTRY)  # a missing format named as the flags the user typed
    return export_checkpoint(args.checkpoint, args.out, args.format, args.input_size, flag="--out",
                             conv_algorithm=args.conv_algorithm)


__all__ = ["FORMATS", "IMAGE_SIZES", "ExportDependencyError", "ExportTargetError",
           "add_arguments", "checkpoint_input", "export_checkpoint",
           "export_model", "load_trained", "resolve_conv_algorithm", "resolve_format", "run"]
