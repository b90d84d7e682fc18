"""What each trained model of a reproduction really is, checked against its row's label.

A table compares a translation-only CNN with full and partial group CNNs; its numbers mean something only
if each row's model is what the label says. So after training, every run's best checkpoint is measured on
test digits, in float32 and deterministic evaluation:

* the group and the number of group elements of every lifting / group conv (the configured N and the
  number the layer really used);
* the relative rot90 invariance error of the logits ``‖f(rot90 x) − f(x)‖ / ‖f(x)‖`` and, for E(2)
  rows, the same under a horizontal flip;
* for an Augerino row, its learned augmentation: the group, the learned θ (images rotated within ±π|θ|),
  the mirror keep probability (E(2)) and how many transformed copies a deterministic evaluation averages.

:func:`check_row` then refuses a run whose structure contradicts its label: a "T(2)" model with more than
one element in some layer, an SE(2) / E(2) row over another group, a full row that dropped elements or
whose logits are not invariant (:data:`FULL_INVARIANCE_TOL`), an Augerino row whose network is not
translation-only or whose augmentation is over another group or not learned. A partial (or Augerino) row's
error is what it learned.
"""

from __future__ import annotations

import warnings

import torch

from ..equivariance import equivariance_error, flip_w, rot90
from ..nn import GroupConv, LiftingConv
from ..nn.augment import LearnedAugmentation

#: A full SE(2) / E(2) row on a C_4 (× mirrors) element grid is exactly invariant under rot90 (and flips):
#: its float32 error is rounding (measured 1e-6 – 3e-6 on 64 bundled digits, untrained and trained); 1e-4 leaves room
#: for any CPU's rounding and no room for a model that is not invariant (a T(2) CNN: 0.05–0.5).
FULL_INVARIANCE_TOL = 1e-4
#: How many test digits the errors are measured on (read at each call: the tiny CI reproduction lowers it).
MEASURE_IMAGES = 64


class RowMismatchError(ValueError):
    """A trained model of a reproduction is not what its row's label says."""


def group_layers(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """``(name, layer)`` of every lifting / group conv of ``model``, in module order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, (LiftingConv, GroupConv))]


def _layer_group(layer) -> str | None:
    """``"SE2"`` / ``"E2"``, or ``None`` for a layer over one element (translations only)."""
    config = layer.sampling
    return None if config.num_elements == 1 and not config.partial else config.group


def used_elements(model: torch.nn.Module, x: torch.Tensor) -> list[int]:
    """How many group elements each lifting / group conv outputs on ``x`` (valid slots in static mode)."""
    counts: dict[str, int] = {}
    hooks = []
    for name, layer in group_layers(model):
        def hook(_module, _inputs, output, name=name):
            features, mask = output[0], (output[2] if len(output) > 2 else None)
            counts[name] = int(features.shape[2] if mask is None else mask.sum(-1).max())
        hooks.append(layer.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return [counts[name] for name, _ in group_layers(model)]


def measure_model(model: torch.nn.Module, x: torch.Tensor, flips: bool = False) -> dict:
    """The structure and invariance errors of ``model`` on images ``x`` (float32, deterministic eval).

    Returns ``{"layers": [{"layer", "group", "num_elements", "used"}], "rot90_error", "flip_error"}``
    (``flip_error`` None unless ``flips``), and for a model with a learned augmentation (Augerino)
    ``"augmentation"``: :func:`augmentation_structure`. ``model`` is left in eval mode.
    """
    model = model.float().eval()
    if hasattr(model, "set_eval_mode"):
        model.set_eval_mode("deterministic")
    x = x.float()
    used = used_elements(model, x)
    layers = [{"layer": name, "group": _layer_group(layer), "num_elements": layer.sampling.num_elements,
               "partial": bool(layer.sampling.partial) and not isinstance(layer, LiftingConv), "used": n}
              for (name, layer), n in zip(group_layers(model), used)]
    # a T(2) row is measured precisely because rot90 is not its symmetry, a partial row to see what it
    # learned: no warning about either
    with torch.no_grad(), torch.autocast(x.device.type, enabled=False), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is not an exact symmetry of this model", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*is not meant to be exactly equivariant", category=UserWarning)
        rot = equivariance_error(model, x, rot90())
        flip = equivariance_error(model, x, flip_w()) if flips else None
    result = {"layers": layers, "rot90_error": rot, "flip_error": flip}
    augmentation = augmentation_structure(model)
    if augmentation is not None:
        result["augmentation"] = augmentation
    return result


def augmentation_structure(model: torch.nn.Module) -> dict | None:
    """The learned augmentation of an Augerino ``model`` (None if it has none): ``group``, ``num_elements``
    (N), ``partial`` (θ learned), ``theta`` (|θ|), ``mirror_probability`` (E(2), else None) and ``used``:
    the transformed copies a deterministic evaluation averages."""
    found = [m for m in model.modules() if isinstance(m, LearnedAugmentation)]
    if not found:
        return None
    augment = found[0]
    config = augment.sampling
    theta = mirror = None
    if augment.sampler is not None and config.partial:
        theta = abs(float(augment.sampler.theta.detach()))
        p = augment.sampler.mirror_probability
        mirror = None if p is None else float(p.detach())
    elif not config.partial:
        theta, mirror = 1.0, (1.0 if config.group == "E2" else None)
    return {"group": config.group, "num_elements": config.num_elements, "partial": bool(config.partial),
            "theta": theta, "mirror_probability": mirror, "used": int(augment.evaluation_elements().shape[1])}


def measure_run(directory, row, images: int | None = None) -> dict:
    """:func:`measure_model` on a finished run directory's best checkpoint, over its first ``images`` test
    digits (default :data:`MEASURE_IMAGES`; with the flip error for an E(2) ``row``, a :class:`~.plan.Row`).
    The result records how many digits it used (``images``) and from which ``checkpoint``."""
    from ..training.checkpoint import load_checkpoint
    from ..training.experiment import checkpoint_path
    from ..training.specs import build_model, load_from_spec

    path = checkpoint_path(directory)
    state = load_checkpoint(path)
    model = build_model(state["model_spec"])
    model.load_state_dict(state["model"])
    data = load_from_spec(state["data_spec"], progress=False)
    x, _ = next(iter(torch.utils.data.DataLoader(data.test, batch_size=images or MEASURE_IMAGES)))
    result = measure_model(model, x, flips=row.group == "e2")
    result.update(checkpoint=path.name, images=int(x.shape[0]))
    return result


def check_row(label: str, group: str, partial: bool, name: str, structure: dict, augerino: bool = False) -> None:
    """Raise :class:`RowMismatchError` if the measured ``structure`` of run ``name`` contradicts its row.

    ``group`` is the row's ``"t2"`` / ``"se2"`` / ``"e2"``; ``partial`` whether it learns its subsets;
    ``augerino``: the row is an Augerino baseline (a T(2) network behind a learned augmentation over ``group``).
    """
    layers = structure["layers"]
    problems = []
    augmentation = structure.get("augmentation")
    if not layers:
        problems.append("it has no lifting or group conv")
    if augerino:
        many = [layer["layer"] for layer in layers if layer["used"] != 1 or layer["num_elements"] != 1]
        if many:
            problems.append("an Augerino network is translation-only, but " + ", ".join(many)
                            + " sample group elements")
        if augmentation is None:
            problems.append("it has no learned augmentation")
        elif augmentation["group"] != group.upper() or augmentation["partial"] != partial:
            problems.append(f"its augmentation is over {augmentation['group']} "
                            f"({'learned' if augmentation['partial'] else 'the whole group'}), not over "
                            f"{group.upper()} ({'learned' if partial else 'the whole group'})")
    elif augmentation is not None:
        problems.append(f"it transforms its input by a learned augmentation over {augmentation['group']} "
                        "(an Augerino model)")
    elif group == "t2":
        many = [f"{layer['layer']} ({layer['used']} used, N = {layer['num_elements']})" for layer in layers
                if layer["used"] != 1 or layer["num_elements"] != 1]
        if many:
            problems.append("a translation-only CNN has one group element per layer, but " + ", ".join(many)
                            + " sample more")
    else:
        wanted = group.upper()
        other = [f"{layer['layer']} ({layer['group'] or 'no group'})" for layer in layers if layer["group"] != wanted]
        if other:
            problems.append(f"every layer should be over {wanted}, but " + ", ".join(other) + " are not")
        learned = [layer["layer"] for layer in layers if layer["partial"]]
        if partial and not learned:
            problems.append("no layer learns its subset (partial=False everywhere)")
        if not partial:
            if learned:
                problems.append("layers " + ", ".join(learned) + " learn a subset")
            dropped = [f"{layer['layer']} ({layer['used']} of {layer['num_elements']})" for layer in layers
                       if layer["used"] != layer["num_elements"]]
            if dropped:
                problems.append("a full model uses all N elements, but " + ", ".join(dropped) + " do not")
            errors = [("rot90", structure["rot90_error"])]
            if group == "e2":
                errors.append(("flip", structure["flip_error"]))
            for what, error in errors:
                if error is None or not error <= FULL_INVARIANCE_TOL:
                    problems.append(f"its logits are not {what}-invariant (relative error {error}, "
                                    f"tolerance {FULL_INVARIANCE_TOL})")
    if problems:
        raise RowMismatchError(f"{name}: the '{label}' model is not what its label says: " + "; ".join(problems)
                               + ". The table would compare the wrong models; no claims are reported.")


def format_elements(structure: dict) -> str:
    """The elements each layer used, e.g. ``"4·4·4·4·4·4"`` (``"1·1·…"`` for T(2)); an Augerino model's
    averaged copies first, e.g. ``"4 copies × 1·1·1·1·1·1"``."""
    layers = "·".join(str(layer["used"]) for layer in structure["layers"])
    augmentation = structure.get("augmentation")
    if not augmentation:
        return layers
    n = augmentation["used"]
    return f"{n} {'copy' if n == 1 else 'copies'} × {layers}"


def format_error(error: float | None) -> str:
    """A relative error for a table: ``2.1e-06`` below 1e-3, else ``0.271`` (``–`` when not measured)."""
    if error is None:
        return "–"
    return f"{error:.1e}" if error < 1e-3 else f"{error:.3f}"
