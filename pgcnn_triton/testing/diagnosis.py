"""Why an equivariance check failed: where the deviation is largest, which layer breaks it first, and
the likely causes the library can recognise (input size, transform vs elements, training mode,
θ ≠ 1, autocast, rough inputs for arbitrary angles)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..equivariance import Transform, _seeded, exact_size_problem
from ..layer_symmetry import layer_problem, partial_layers
from ..symmetries import element_grid, symmetry_problem

__all__ = ["locate", "first_breaking_layer", "likely_causes"]


def locate(actual: torch.Tensor, expected: torch.Tensor, elements: torch.Tensor | None = None) -> str:
    """Where ``|actual − expected|`` is largest, in the output's own terms."""
    diff = (actual - expected).detach().abs()
    if diff.numel() == 0:
        return "empty output"
    index = [int(i) for i in torch.unravel_index(torch.argmax(diff), diff.shape)]
    a, e = float(actual.detach()[tuple(index)]), float(expected.detach()[tuple(index)])
    values = f"{a:.4g}, expected {e:.4g}"
    if diff.dim() == 2:
        return f"sample {index[0]}, class {index[1]} ({values})"
    if diff.dim() == 5:
        b, c, j, h, w = index
        slot = f"group slot {j}"
        if elements is not None:
            g = elements[min(b, elements.shape[0] - 1), j].detach().double()
            angle = float(g if g.dim() == 0 else g[0])
            slot += f" (angle {math.degrees(angle):.1f}°" + (f", mirror {float(g[1]):+.0f})" if g.dim() else ")")
        return f"sample {b}, channel {c}, {slot}, pixel (h={h}, w={w}) ({values})"
    if diff.dim() == 4:
        b, c, h, w = index
        return f"sample {b}, channel {c}, pixel (h={h}, w={w}) ({values})"
    return f"index {tuple(index)} ({values})"


def _records(module, x, elements, seed):
    """Every submodule's output of one seeded forward, in the order the forwards finished."""
    calls = []
    # kernel nets map element coordinates, not features: their outputs are no feature maps T acts on
    hooks = [m.register_forward_hook(lambda mod, inp, out, name=name: calls.append((name, mod, out)))
             for name, m in module.named_modules() if name and "kernel_net" not in name]
    try:
        _seeded(module, x, elements, seed)
    finally:
        for h in hooks:
            h.remove()
    return calls


def _layer_error(transform: Transform, out, out_t, last_elements):
    """Relative error of one layer's output under T, or None when its output is not a feature map."""
    if isinstance(out, tuple) and len(out) >= 2 and isinstance(out[0], torch.Tensor) and out[0].dim() == 5:
        feats, g = out[0], out[1]
        expected, actual, elements = transform.features(feats, g), transform.restrict(out_t[0]), g
    elif isinstance(out, torch.Tensor) and out.dim() == 5 and last_elements is not None \
            and last_elements.shape[1] == out.shape[2]:
        expected, actual, elements = transform.features(out, last_elements), transform.restrict(out_t), last_elements
    elif isinstance(out, torch.Tensor) and out.dim() == 4:
        expected, actual, elements = transform.image(out), transform.restrict(out_t), None
    elif isinstance(out, torch.Tensor) and out.dim() == 2:
        expected, actual, elements = out, out_t, None
    else:
        return None, None
    norm = expected.detach().norm()
    if actual.shape != expected.shape or not bool(norm > 0):
        return None, None
    return float((actual - expected).detach().norm() / norm), elements


def _same(a, b) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple) and a and b:
        a, b = a[0], b[0]
    return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b)


def first_breaking_layer(module, x, tx, transform: Transform, elements, seed: int, tolerance: float) -> str | None:
    """The first submodule (in the order their forwards finish) whose output breaks equivariance under
    ``transform`` by more than ``tolerance``, with its error: e.g. ``"pool1 (SpatialMaxPool): 3.1e-01"``."""
    if not isinstance(module, nn.Module):
        return None
    calls, calls_t = _records(module, x, elements, seed), _records(module, tx, elements, seed)
    if [n for n, _, _ in calls] != [n for n, _, _ in calls_t]:
        return None
    last_elements = elements
    for (name, mod, out), (_, _, out_t) in zip(calls, calls_t):
        if _same(out, out_t):  # does not depend on the input (a kernel bank, a constant): nothing to check
            continue
        try:
            err, g = _layer_error(transform, out, out_t, last_elements)
        except ValueError:  # output elements T does not permute: that layer's sampling breaks it
            return f"{name} ({type(mod).__name__}): its output elements are not permuted by {transform.name}"
        except RuntimeError:  # not a feature map T acts on (e.g. a kernel bank, a non-square tensor)
            continue
        if g is not None:
            last_elements = g
        if err is not None and not err <= tolerance:
            return f"{name} ({type(mod).__name__}): relative error {err:.2e} at its output"
    return None


def likely_causes(module, x: torch.Tensor, transform: Transform, elements=None) -> list[str]:
    """The causes of a failed check that can be read off the module, the input and the transform."""
    causes = []
    if not transform.disk:
        size = exact_size_problem(module, x.shape[-2], x.shape[-1])
        if size:
            causes.append(f"input size: {size}")
    if elements is None:
        problem = symmetry_problem(element_grid(module), transform)
        if problem:
            causes.append(f"transform not a symmetry of the elements: {problem}")
    layers = layer_problem(module, transform)
    if layers:
        causes.append(f"a layer breaks it by construction: {layers}")
    if isinstance(module, nn.Module):
        causes += _mode_causes(module)
        causes += _partial_causes(module, transform)
    causes += _precision_causes(module, x)
    if transform.disk:
        causes += _roughness_causes(x, transform)
    return causes


def _mode_causes(module: nn.Module) -> list[str]:
    from ..models.control import samplers
    from ..sampling import PartialSampler

    random = [s for s in samplers(module) if s.stochastic and (isinstance(s, PartialSampler)
                                                                 or s.config.method == "random")]
    dropout = [m for m in module.modules() if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0
               and m.training]
    causes = []
    if random and any(s.training for s in random):
        causes.append("training mode with stochastic elements: the samplers draw random offsets and gates "
                      f"({len(random)} layers); call module.eval() (eval_mode='deterministic') for a fixed grid")
    elif random:
        causes.append(f"eval_mode {random[0].eval_mode!r}: the samplers draw random elements in evaluation; "
                      "use set_eval_mode(module, 'deterministic')")
    if dropout:
        causes.append(f"training mode with dropout (p = {dropout[0].p}): its mask does not move with the input; "
                      "call module.eval()")
    return causes


def _partial_causes(module: nn.Module, transform: Transform) -> list[str]:
    partial = partial_layers(module, transform)
    if not partial:
        return []
    shown = ", ".join(partial[:4]) + (f", … ({len(partial)} in all)" if len(partial) > 4 else "")
    return [f"partial layers: {shown}; a layer that keeps part of its group (θ ≠ 1, a gate or the mirror "
            "off) is not exactly equivariant, by design"]


def _precision_causes(module, x: torch.Tensor) -> list[str]:
    device = x.device.type
    if torch.is_autocast_enabled(device):
        dtype = torch.get_autocast_dtype(device)
        return [f"autocast to {str(dtype).replace('torch.', '')} on {device}: the convs round to it; the default "
                "tolerance follows the autocast dtype only when the assertion runs inside the autocast block"]
    if x.dtype in (torch.bfloat16, torch.float16):
        return [f"input in {str(x.dtype).replace('torch.', '')}: check in float32 for rounding-level errors"]
    return []


def _roughness_causes(x: torch.Tensor, transform: Transform) -> list[str]:
    """Rotating x there and back shows how much the bilinear interpolation alone loses on it, measured
    inside 0.85 of the disk (the rim always loses to the zeros outside). Measured at 12–32 px: white
    noise ~60 %, smooth inputs (``random_images(..., smooth=True)``) 8–17 %; the threshold is 30 %."""
    from ..equivariance import rotation

    x0 = transform.restrict(x.detach().double())
    back = rotation(-transform.angle).image(transform.image(x0))
    h, w = x.shape[-2:]
    ys, xs = torch.linspace(-1, 1, h, dtype=torch.float64), torch.linspace(-1, 1, w, dtype=torch.float64)
    inner = ((ys[:, None] ** 2 + xs[None, :] ** 2) <= 0.85**2).to(x0.dtype).to(x0.device)
    norm = (x0 * inner).norm()
    loss = float(((back - x0) * inner).norm() / norm) if bool(norm > 0) else 0.0
    if loss > 0.3:
        return [f"rough input: rotating x by {transform.name} and back loses {loss:.0%} of it to bilinear "
                "interpolation alone; test arbitrary angles on smooth inputs (random_images(..., smooth=True), "
                "inputs_for(model, smooth=True))"]
    return []
