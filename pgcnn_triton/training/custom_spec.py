"""How a checkpoint describes a network of your own, so ``pgcnn eval`` / ``pgcnn export`` can rebuild it.

A :class:`~pgcnn_triton.GroupModel` remembers the arguments it was constructed with
(:meth:`GroupModel.__new__ <pgcnn_triton.GroupModel>`). The :class:`~pgcnn_triton.training.Trainer`
turns them into a plain-value spec ``{"family": "custom", "class": "my_nets:Net", "args": [...],
"kwargs": {...}}`` stored in every checkpoint. Rebuilding imports ``my_nets`` (from the Python path or
the working directory, as ``python -m`` does), checks that ``Net`` is an ``nn.Module`` class and calls it
with the stored arguments; the weights come from the checkpoint. Importing a module runs its code, so
rebuild only checkpoints you trust (nothing but an ``nn.Module`` class, or a dataclass for an argument,
is ever called, and only modules already on this machine are imported).

Where that is impossible (a class defined in a script's ``__main__`` or a notebook, an argument that is
not a plain value, a plain ``nn.Module`` that does not record its arguments) the spec keeps the reason
(``"unbuildable"``), and the error of :func:`build_custom` says what to call instead.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys

import torch
from torch import nn

CUSTOM = "custom"
#: Modules a class cannot be imported back from (a script run directly, a notebook, ``exec``).
_NOT_IMPORTABLE = ("__main__", "builtins", "__mp_main__")
_LEAVES = (type(None), bool, int, float, str, torch.dtype)


class UnbuildableModelError(ValueError):
    """A checkpoint's network cannot be rebuilt from its spec (the message says what to do instead)."""


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _module_name(cls: type) -> str:
    """The importable name of ``cls``'s module: ``python -m my_nets`` runs it as ``__main__`` but it has
    a real name in ``__spec__``."""
    module = cls.__module__
    if module == "__main__":
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        if spec is not None and spec.name and spec.name != "__main__":
            return spec.name
    return module


def _encode(value, where: str):
    """``value`` as checkpoint-safe plain values (dataclasses tagged with their class); ``TypeError`` if not."""
    if isinstance(value, _LEAVES) or isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (list, tuple)):
        items = [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"{where} is a dict with non-str keys")
        return {k: _encode(v, f"{where}[{k!r}]") for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        if _module_name(cls) in _NOT_IMPORTABLE:
            raise TypeError(f"{where} is a {cls.__qualname__} defined in {cls.__module__}, not importable")
        fields = {f.name: _encode(getattr(value, f.name), f"{where}.{f.name}")
                  for f in dataclasses.fields(value) if f.init}
        return {"__dataclass__": f"{_module_name(cls)}:{cls.__qualname__}", "fields": fields}
    raise TypeError(f"{where} is a {type(value).__name__}, not a plain value (None, bool, int, float, str, "
                    "tensor, list, tuple, dict or dataclass)")


def _decode(value):
    if isinstance(value, dict):
        if set(value) == {"__dataclass__", "fields"}:
            cls = _import(value["__dataclass__"])
            if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
                raise UnbuildableModelError(f"{value['__dataclass__']} is not a dataclass")
            return cls(**{k: _decode(v) for k, v in value["fields"].items()})
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_decode(v) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    return value


def custom_model_spec(model: nn.Module) -> dict:
    """The spec of a network built outside the presets: its class and constructor arguments, or why
    they cannot be recorded (``"unbuildable"``). ``label``: the class name."""
    cls = type(model)
    spec = {"family": CUSTOM, "class": _class_path(cls), "label": cls.__name__}
    recorded = getattr(model, "_init_arguments", None)
    module = _module_name(cls)
    if module in _NOT_IMPORTABLE:
        where = "a script run as python FILE" if module == "__main__" else "code run without a module"
        spec["unbuildable"] = (f"{cls.__qualname__} is defined in {where} ({module}), which another process "
                               "cannot import")
    elif "<locals>" in cls.__qualname__:
        spec["unbuildable"] = f"{cls.__qualname__} is defined inside a function, which cannot be imported"
    elif recorded is None:
        spec["unbuildable"] = (f"{cls.__qualname__} does not record its constructor arguments (subclass "
                               "pgcnn_triton.GroupModel to have them recorded)")
    else:
        try:
            args, kwargs = _encode(list(recorded[0]), "argument"), _encode(dict(recorded[1]), "argument")
        except TypeError as error:
            spec["unbuildable"] = f"its constructor argument {error}"
        else:
            spec.update({"class": f"{module}:{cls.__qualname__}", "args": args, "kwargs": kwargs})
    return spec


def _import(path: str):
    module_name, _, qualname = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        # as `python -m`: a module beside the user's working directory is importable (the console
        # script's own path does not hold it)
        if error.name != module_name.split(".")[0] or "" in sys.path or os.getcwd() in sys.path:
            raise UnbuildableModelError(f"cannot import {module_name} ({error}): run from the directory that "
                                        f"holds it or add it to PYTHONPATH") from None
        sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as again:
            raise UnbuildableModelError(f"cannot import {module_name} ({again}): run from the directory that "
                                        f"holds it or add it to PYTHONPATH") from None
        finally:
            sys.path.remove(os.getcwd())
    target = module
    for part in qualname.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise UnbuildableModelError(f"{module_name} has no {qualname}")
    return target


def build_custom(spec: dict, path=None, caller: str = "pgcnn export") -> nn.Module:
    """The network a :func:`custom_model_spec` describes, with fresh weights (load the checkpoint's next).

    Raises :class:`UnbuildableModelError` naming ``path`` (the checkpoint) and what to call instead.
    """
    where = f"{path} holds" if path is not None else "this checkpoint holds"
    name = spec.get("class", "?")
    try:
        if spec.get("unbuildable"):
            raise UnbuildableModelError(spec["unbuildable"])
        cls = _import(name)
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):  # never call anything else it names
            raise UnbuildableModelError(f"{name} is not an nn.Module class")
        return cls(*_decode(list(spec.get("args") or [])), **_decode(dict(spec.get("kwargs") or {})))
    except UnbuildableModelError as error:
        raise UnbuildableModelError(f"{where} a network of your own ({name}) that {caller} cannot rebuild: "
                                    f"{error}. {instead(path, caller, spec.get('input_shape'))}") from None


def instead(path, caller: str, input_shape=None) -> str:
    """What to call when a checkpoint's network cannot be rebuilt by ``caller`` (``input_shape``: the
    training images' ``[C, H, W]``, for the example input)."""
    ckpt = str(path) if path is not None else "best.pt"
    load = f"net.load_state_dict(pgcnn_triton.training.load_checkpoint({ckpt!r})['model'])"
    if caller == "pgcnn export":
        shape = ", ".join(str(int(n)) for n in input_shape) if input_shape else "C, H, W"
        return (f"Define the class in an importable module (e.g. my_nets.py) and train again, or rebuild the "
                f"network in Python, {load}, then pgcnn_triton.deploy.export_model(net, 'model.onnx', "
                f"example_input=torch.zeros(1, {shape}))")
    return (f"Define the class in an importable module (e.g. my_nets.py) and train again, or rebuild the network "
            f"in Python, {load}, then pgcnn_triton.training.evaluate_model(net, dataset)")


__all__ = ["CUSTOM", "UnbuildableModelError", "build_custom", "custom_model_spec", "instead"]
