"""Plant deliberate bugs in the library, one at a time, and report which ones the tests miss.

    .venv/bin/python scripts/mutation_check.py            # every bug, Markdown table at the end
    .venv/bin/python scripts/mutation_check.py --only tau_ignored,mask_radius
    .venv/bin/python scripts/mutation_check.py --list

Each bug is a small in-memory patch of the library (nothing is written to the library's files). A
bug runs in a fresh ``pytest`` process over the tests that should catch it; a generated
``sitecustomize`` (in a temporary folder put first on ``PYTHONPATH``) applies the patch in that
process *and* in every Python process it starts, so tests that run examples, torchrun workers or the
device-check script see the bug too. "caught" means pytest failed; "SURVIVED" means every selected
test passed with the bug in place, i.e. a hole in the suite. A control run without any bug must pass
first. Not part of CI (it runs the selected tests once per bug: several minutes).
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Bug:
    name: str
    what: str
    tests: tuple[str, ...]


BUGS = [
    # -- the five holes of the mutation audit (issue "tests that catch the bugs that matter") ------
    Bug("tau_multiplied", "relaxed-Bernoulli sample multiplied by τ instead of divided",
        ("tests/test_gumbel_temperature.py", "tests/test_sampling.py", "tests/training/test_mirror_gate.py")),
    Bug("tau_ignored", "relaxed-Bernoulli sample ignores τ",
        ("tests/test_gumbel_temperature.py", "tests/test_sampling.py", "tests/training/test_mirror_gate.py")),
    Bug("ddp_identity", "DistributedDataParallel replaced by the identity (each rank trains its own copy)",
        ("tests/training/test_ddp.py",)),
    Bug("rotation_floor_90", "kernel taps rotated by the element angle rounded down to a multiple of 90°",
        ("tests/test_continuous_rotation.py", "tests/test_groups.py", "tests/models/test_models.py")),
    Bug("magnet_no_envelope", "MAGNet filters without their Gaussian envelope (plain sin(Wx + b))",
        ("tests/test_kernelnets.py",)),
    Bug("e2_reference_no_jitter", "partial E(2) reference sampler without its jitter",
        ("tests/test_sampling.py",)),
    Bug("e2_reference_eighth_jitter", "partial E(2) reference jitter an eighth of a cell",
        ("tests/test_sampling.py",)),
    # -- controls the earlier audit already caught --------------------------------------------------
    Bug("bank_layout_swapped", "kernel bank rows ordered (n o) instead of (o n)",
        ("tests/kernels/test_bank.py", "tests/nn/test_equivariance_maps.py")),
    Bug("taps_transposed", "tap offsets transposed (dy, dx) → (dx, dy)",
        ("tests/kernels/test_group_conv.py", "tests/nn/test_equivariance_maps.py")),
    Bug("snapshot_recomputable", "Gumbel-counter snapshot as a plain clone (compiled backward sees the next τ)",
        ("tests/training/test_compiled_training.py",)),
    # -- more places that matter ------------------------------------------------------------------
    Bug("group_law_sign", "O(2) product φ2 − m2·φ1 instead of φ2 + m2·φ1",
        ("tests/test_groups.py", "tests/nn/test_equivariance_maps.py")),
    Bug("mask_radius", "circular mask of radius 1.25 instead of 1",
        ("tests/kernels/test_taps.py", "tests/models/test_presets.py")),
    Bug("bias_broadcast", "conv bias repeated over channels instead of over elements (o·N + n order)",
        ("tests/kernels/test_group_conv.py", "tests/nn/test_layers.py")),
    Bug("norm_axes", "inner CKResNet norm over (H, W) instead of (G, H, W)",
        ("tests/nn/test_layers.py", "tests/models/test_models.py", "tests/nn/test_equivariance_maps.py")),
    Bug("maxpool_argmax_routing", "max-pool over G sends the gradient to the last element, not the arg-max",
        ("tests/kernels/test_group_pool.py", "tests/kernels/test_group_pool_triton.py")),
    Bug("static_count_full", "static shape mode keeps N valid slots whatever θ (the old approximation)",
        ("tests/models/test_static_exact.py", "tests/test_sampling.py")),
    Bug("static_norm_unmasked", "static-mode norms take statistics over masked slots too",
        ("tests/models/test_static_exact.py", "tests/nn/test_masking.py")),
    Bug("kernel_norm_squared", "kernel-norm regulariser records ‖K‖² instead of ‖K‖",
        ("tests/training/test_regularizers.py",)),
    Bug("monotonic_reversed", "monotonic regulariser penalises θ_l − θ_{l+1} instead of θ_{l+1} − θ_l",
        ("tests/training/test_regularizers.py",)),
    Bug("checkpoint_rng_not_restored", "resuming a checkpoint does not restore the RNG state",
        ("tests/training/test_trainer.py", "tests/training/test_checkpoint.py")),
    # -- CPU speed: the split lowering and the precision policy -------------------------------------
    Bug("split_arm_dilation", "split lowering: the arms' dilation one short (taps at ±2 instead of ±3)",
        ("tests/kernels/test_group_conv_split.py",)),
    Bug("split_valid_padding", "split lowering: an asymmetric (valid) piece padded symmetrically",
        ("tests/kernels/test_group_conv_split.py",)),
    Bug("policy_never_bf16", "precision policy keeps fp32 on CPUs with bf16 units",
        ("tests/test_precision.py",)),
    Bug("autocast_casts_float64", "the group conv casts float64 inputs to bf16 under autocast",
        ("tests/models/test_bf16.py",)),
]


# ------------------------------------------------------------------------------------------------
# The patches. Each runs at interpreter start-up in the mutated processes (see module docstring).

def _replace(module, name: str, new) -> None:
    """Set ``module.name = new`` and rebind every already-imported pgcnn_triton module that holds the
    old object under the same name (package re-exports, ``from x import name``)."""
    old = getattr(module, name)
    setattr(module, name, new)
    for mod_name, mod in list(sys.modules.items()):
        if mod_name.startswith("pgcnn_triton") and getattr(mod, name, None) is old:
            setattr(mod, name, new)


def _patch(name: str) -> None:  # noqa: C901  (one branch per bug, read top to bottom)
    import torch

    if name in ("tau_multiplied", "tau_ignored"):
        import pgcnn_triton.sampling as sampling

        def relaxed(logits, temperature, _times=name == "tau_multiplied"):
            u = torch.rand_like(logits).clamp(1e-6, 1.0 - 1e-6)
            noise = logits + torch.log(u) - torch.log1p(-u)
            return torch.sigmoid(noise * temperature if _times else noise)

        _replace(sampling, "relaxed_bernoulli", relaxed)
    elif name in ("split_arm_dilation", "split_valid_padding"):
        from pgcnn_triton.kernels import group_conv_split as split

        if name == "split_arm_dilation":
            pieces = split.pieces.__wrapped__

            def shorter(kernel_size, num_taps):
                return tuple(split.Piece(p.taps, p.top, p.left, p.kh, p.kw, max(1, p.dh - 1) if p.kh > 1 else 1,
                                         max(1, p.dw - 1) if p.kw > 1 else 1) if p.kh * p.kw == 2 else p
                             for p in pieces(kernel_size, num_taps))

            split.pieces = shorter
        else:
            split._piece_input = lambda x4, pad: (x4, (max(pad[0], 0), max(pad[2], 0)))
    elif name == "policy_never_bf16":
        from pgcnn_triton import precision

        default = precision.default_amp
        precision.default_amp = lambda device: False if precision._device_type(device) == "cpu" else default(device)
    elif name == "autocast_casts_float64":
        import pgcnn_triton.kernels.group_conv as gc

        def cast(x):
            if x.is_floating_point() and torch.is_autocast_enabled(x.device.type):
                return torch.get_autocast_dtype(x.device.type)
            return x.dtype

        _replace(gc, "conv_dtype", cast)
    elif name == "ddp_identity":
        torch.nn.parallel.DistributedDataParallel = lambda module, *a, **k: module
    elif name == "rotation_floor_90":
        from pgcnn_triton import groups

        matrix = groups.Group.matrix

        def floored(self, g):
            phi = self.angle(g)
            snapped = torch.floor(phi / (math.pi / 2)) * (math.pi / 2)
            g = g.clone()
            if self.element_rank:
                g[..., 0] = snapped
            else:
                g = snapped
            return matrix(self, g)

        groups.Group.matrix = floored
    elif name == "magnet_no_envelope":
        from pgcnn_triton import kernelnets

        kernelnets.MAGNet.filter = lambda self, index, x: torch.sin(self.filters[index](x))
    elif name in ("e2_reference_no_jitter", "e2_reference_eighth_jitter"):
        from pgcnn_triton import sampling

        arc = sampling.PartialSampler._arc
        scale = 0.0 if name.endswith("no_jitter") else 0.125

        def mutated(self, theta, n, slots, jitter_cells, u):
            if self.config.estimator == "reference" and self.group.element_rank:
                u = u * scale
            return arc(self, theta, n, slots, jitter_cells, u)

        sampling.PartialSampler._arc = mutated
    elif name == "bank_layout_swapped":
        import pgcnn_triton.kernels.bank as bank
        from einops import rearrange
        from pgcnn_triton.kernels import bank_reference as ref

        def forward(hidden, weight, bias, out_channels, dtype=None):
            ct = ref.compute_dtype(hidden, weight, bias)
            values = torch.nn.functional.linear(hidden.to(ct), weight.to(ct), None if bias is None else bias.to(ct))
            out = rearrange(values, "s n g t (o c) -> s (n o) t (c g)", o=out_channels)
            return out.to(dtype or hidden.dtype).contiguous()

        _replace(bank, "bank_forward_reference", forward)
    elif name == "taps_transposed":
        from pgcnn_triton.kernels import taps

        for k in (3, 5, 7, 9):
            layout = taps.disk_taps(k)
            layout.offsets.copy_(layout.offsets.flip(-1))
    elif name == "snapshot_recomputable":
        import pgcnn_triton.sampling as sampling

        _replace(sampling, "snapshot", lambda x: x.clone())
    elif name == "group_law_sign":
        from pgcnn_triton import groups

        def multiply(self, a, b):
            phi1, m1 = a[..., 0], a[..., 1]
            phi2, m2 = b[..., 0], b[..., 1]
            return torch.stack([torch.remainder(phi2 - m2 * phi1, groups.TWO_PI), m1 * m2], -1)

        groups._E2.multiply = multiply
    elif name == "mask_radius":
        from pgcnn_triton.kernels import taps

        taps._EPS = 0.25
    elif name == "bias_broadcast":
        from pgcnn_triton.kernels import group_conv_reference as ref

        forward = ref.forward

        def mutated(x, bank, bias, kernel_size, padding, split=None):
            if bias is None:
                return forward(x, bank, bias, kernel_size, padding, split)
            y = forward(x, bank, None, kernel_size, padding, split)
            rows = bank.shape[1]
            full = bias.repeat(rows // bias.shape[0])  # o-minor instead of o-major
            return (y + full[None, :, None, None].to(y.dtype)).contiguous()

        ref.forward = mutated
    elif name == "norm_axes":
        import torch.nn.functional as F

        from pgcnn_triton.nn import norms

        norms.GroupInstanceNorm.forward = lambda self, x, mask=None: F.layer_norm(x, x.shape[-2:], eps=self.eps)
    elif name == "static_count_full":
        from pgcnn_triton import sampling

        _replace(sampling, "element_count_tensor",
                 lambda total, theta, group="SE2", estimator="clean": torch.full((), float(total), dtype=torch.float64))
    elif name == "static_norm_unmasked":
        from pgcnn_triton.nn import norms

        moments = norms.masked_moments
        _replace(norms, "masked_moments", lambda x, w, dims: moments(x, torch.ones_like(w), dims))
    elif name == "maxpool_argmax_routing":
        from pgcnn_triton.kernels import group_pool_reference as ref

        backward = ref.group_max_backward
        _replace(ref, "group_max_backward", lambda grad, argmax, G: backward(grad, torch.full_like(argmax, G - 1), G))
    elif name == "kernel_norm_squared":
        import pgcnn_triton.nn.conv  # noqa: F401  (imported first, so _replace rebinds its copy)
        from pgcnn_triton.nn import kernel_norms

        def record(bank, bias):
            norms = kernel_norms._ACTIVE
            if norms is None:
                return
            value = bank.float().norm() ** 2
            if bias is not None:
                value = value + bias.float().norm() ** 2
            norms.append(value)

        _replace(kernel_norms, "record_kernel", record)
    elif name == "monotonic_reversed":
        from itertools import pairwise

        import pgcnn_triton.training.trainer  # noqa: F401  (imported first, so _replace rebinds its copy)
        from pgcnn_triton.training import regularizers

        def penalty(model, weight):
            probs = regularizers.partial_parameters(model)
            if not weight or len(probs) < 2:
                return None
            terms = [torch.relu(a - b).sum() for a, b in pairwise(probs) if a.shape == b.shape]
            return weight * torch.stack(terms).sum() if terms else None

        _replace(regularizers, "monotonic_penalty", penalty)
    elif name == "checkpoint_rng_not_restored":
        import pgcnn_triton.training.trainer  # noqa: F401  (imported first, so _replace rebinds its copy)
        from pgcnn_triton.training import checkpoint

        _replace(checkpoint, "set_rng_state", lambda state: None)
    else:
        raise ValueError(f"unknown bug {name!r}")


_SITECUSTOMIZE = """\
import os
if os.environ.get("PGCNN_MUTATION"):
    os.environ.setdefault("TRITON_INTERPRET", "1")  # as tests/conftest.py, before triton is imported
    import sys
    sys.path.insert(0, {scripts!r})
    import mutation_check
    mutation_check._patch(os.environ["PGCNN_MUTATION"])
"""


def run_tests(tests, bug: str | None, site: Path, workers: int) -> tuple[bool, float, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]), OMP_NUM_THREADS="1",
               PGCNN_BACKEND="torch")
    env.pop("PGCNN_MUTATION", None)
    if bug:
        env["PGCNN_MUTATION"] = bug
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    if workers > 1:
        cmd += ["-n", str(workers)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return proc.returncode == 0, time.perf_counter() - start, lines[-1] if lines else proc.stderr[-200:]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated bug names (default: all)")
    parser.add_argument("--list", action="store_true", help="list the bugs and exit")
    parser.add_argument("--workers", type=int, default=1, help="pytest-xdist workers per run")
    args = parser.parse_args(argv)
    if args.list:
        for bug in BUGS:
            print(f"{bug.name:30s} {bug.what}")
        return 0
    chosen = [b for b in BUGS if not args.only or b.name in args.only.split(",")]
    unknown = set(filter(None, args.only.split(","))) - {b.name for b in BUGS}
    if unknown:
        parser.error(f"--only: unknown bugs {sorted(unknown)}")
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp)
        (site / "sitecustomize.py").write_text(_SITECUSTOMIZE.format(scripts=str(ROOT / "scripts")))
        tests = sorted({t for b in chosen for t in b.tests})
        ok, seconds, last = run_tests(tests, None, site, args.workers)
        print(f"control (no bug): {'pass' if ok else 'FAIL'} in {seconds:.0f} s: {last}", flush=True)
        if not ok:
            print("the selected tests fail without any bug: fix that first", file=sys.stderr)
            return 2
        rows, total = [], seconds
        for bug in chosen:
            passed, seconds, last = run_tests(bug.tests, bug.name, site, args.workers)
            total += seconds
            rows.append((bug, "SURVIVED" if passed else "caught", seconds, last))
            print(f"{bug.name}: {rows[-1][1]} in {seconds:.0f} s: {last}", flush=True)
    print("\n| bug | what | result | seconds | tests |\n|---|---|---|---|---|")
    for bug, result, seconds, _ in rows:
        print(f"| `{bug.name}` | {bug.what} | {result} | {seconds:.0f} | {', '.join(bug.tests)} |")
    survived = [b.name for b, r, _, _ in rows if r == "SURVIVED"]
    print(f"\n{len(rows) - len(survived)} of {len(rows)} bugs caught in {total:.0f} s"
          + (f"; survived: {', '.join(survived)}" if survived else ""))
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
