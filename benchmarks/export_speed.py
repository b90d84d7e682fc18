"""CPU inference of the deployment forms of several models, side by side in one run (issues 26, 35):

* ``eval``: the model itself (``model.eval()``, deterministic elements: the banks built at each call);
* ``frozen``: ``model.freeze()`` (tap-packed banks, the library's CPU lowering: the split disk cover);
* ``portable``: ``pgcnn_triton.portable(model)`` (the ``.pt2`` program: the same convs, plain torch ops);
* ``onnxruntime``: the ONNX file of ``pgcnn_triton.deploy.export_model`` (kernel nets + fixed points,
  folded into the conv weights at session creation) in an ONNX Runtime CPU session
  (``intra_op_num_threads`` = torch's thread count, so every form uses the same cores).

All in fp32, ``no_grad``, on random input ``[B, C, S, S]`` (S = 28 for the (rot)MNIST presets, 32
otherwise). For each batch size the forms run in turn, ``--reps`` times (alternating, after one
untimed warm-up call of each); time = the median. Each row also gives ``vs_frozen`` (frozen time /
this time: > 1 is faster than the frozen model) and the logits' relative difference to ``eval``.
Per model, the second table gives the parameter bytes, the ONNX file's size, and the build times:
freeze, ONNX export, ONNX Runtime session creation (where it folds the kernel nets).

    python benchmarks/export_speed.py --threads 1                      # the three default models
    python benchmarks/export_speed.py --models ckresnet:rotmnist-e2-full --batches 1
    python benchmarks/export_speed.py --threads 1 --out benchmarks/results --name 2026-12-06-export-speed-epyc
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, ort_cpu_session, table, write_report  # noqa: E402

from pgcnn_triton import GCNN, PartialGCNN, deploy, portable  # noqa: E402

FAMILIES = {"ckresnet": PartialGCNN, "gcnn": GCNN}
#: a CKResNet SE(2) and E(2) preset, and a GCNN preset narrowed to hidden=16 (the preset's 128 channels
#: take ~10 s per image on one core: far beyond a side-by-side run at batch 64)
DEFAULT_MODELS = "ckresnet:cifar10-se2-full,ckresnet:rotmnist-e2-full,gcnn:rotmnist-se2-partial:hidden=16"
FORMS = ("eval", "frozen", "portable", "onnxruntime")


def parse_model(spec: str) -> tuple[str, str, dict]:
    """``family:preset[:key=int,...]`` → (family, preset, overrides)."""
    family, preset, *rest = spec.split(":")
    if family not in FAMILIES:
        raise ValueError(f"--models: family must be one of {sorted(FAMILIES)}, got {family!r} in {spec!r}")
    overrides = {}
    for item in ",".join(rest).split(",") if rest else []:
        key, _, value = item.partition("=")
        overrides[key] = int(value)
    return family, preset, overrides


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=DEFAULT_MODELS,
                   help="comma-separated family:preset[:key=int] (default %(default)s)")
    p.add_argument("--batches", default="1,64", help="comma-separated batch sizes (default %(default)s)")
    p.add_argument("--forms", default=",".join(FORMS),
                   help="comma-separated forms to time, frozen among them (default %(default)s)")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="folder for NAME.md / NAME.json (default: print only)")
    p.add_argument("--name", default="export-speed")
    args = p.parse_args(argv)
    try:
        args.batches = [int(b) for b in args.batches.split(",")]
    except ValueError:
        p.error(f"--batches must be comma-separated ints, got {args.batches!r}")
    if min(args.batches) < 1 or args.reps < 1:
        p.error("--batches and --reps must be >= 1")
    args.forms = args.forms.split(",")
    if "frozen" not in args.forms or not set(args.forms) <= set(FORMS):
        p.error(f"--forms must list frozen and only forms of {FORMS}, got {','.join(args.forms)!r}")
    # family:preset:key=v items are split at the commas that start a new family
    specs, current = [], None
    for part in args.models.split(","):
        if part.split(":")[0] in FAMILIES:
            current = part
            specs.append(current)
        elif current is None:
            p.error(f"--models: each item starts with a family ({sorted(FAMILIES)}), got {part!r}")
        else:
            specs[-1] += "," + part
    try:
        args.models = [parse_model(s) for s in specs]
    except ValueError as err:
        p.error(str(err))
    return args


def build(family, preset, overrides, tmp, threads):
    """The four forms of one model, and its sizes and build times."""

    model = FAMILIES[family].from_preset(preset, **overrides).eval()
    size = 28 if preset.startswith(("mnist", "rotmnist")) else 32
    example = torch.randn(1, model.input_channels, size, size)
    t0 = time.perf_counter()
    frozen = model.freeze(example_input=example)
    t1 = time.perf_counter()
    program = portable(model, example_input=example)
    t2 = time.perf_counter()
    path = deploy.export_model(model, Path(tmp) / f"{preset}.onnx", example_input=example)
    t3 = time.perf_counter()
    session = ort_cpu_session(path, threads)
    t4 = time.perf_counter()

    def run_onnx(x):
        return torch.from_numpy(session.run(None, {deploy.ONNX_INPUT: x.numpy()})[0])

    params = 4 * sum(p.numel() for p in model.parameters())
    name = f"{family} {preset}" + "".join(f" {k}={v}" for k, v in overrides.items())
    info = {"model": name, "params_mib": params / 2 ** 20, "onnx_mib": path.stat().st_size / 2 ** 20,
            "onnx_vs_params": path.stat().st_size / params, "freeze_s": t1 - t0, "pt2_program_s": t2 - t1,
            "onnx_export_s": t3 - t2, "ort_session_s": t4 - t3}
    forms = {"eval": model, "frozen": frozen, "portable": program, "onnxruntime": run_onnx}
    return name, size, model.input_channels, forms, info


def measure(name, size, channels, forms, batches, reps, model):
    """Rows of each form at each batch size: the median of ``reps`` alternating calls."""
    rows = []
    for batch in batches:
        x = torch.randn(batch, channels, size, size)
        times = {form: [] for form in forms}
        with torch.no_grad():
            outputs = {form: fn(x) for form, fn in forms.items()}          # warm-up, and the logits
            for _ in range(reps):                                         # alternating repeats
                for form, fn in forms.items():
                    t0 = time.perf_counter()
                    fn(x)
                    times[form].append((time.perf_counter() - t0) * 1e3)
        median = {form: statistics.median(t) for form, t in times.items()}
        with torch.no_grad():
            expected = outputs["eval"] if "eval" in outputs else model(x)
        for form in forms:
            y = outputs[form]
            rows.append({"model": name, "form": form, "batch": batch, "ms": median[form],
                         "img_per_s": batch / median[form] * 1e3, "vs_frozen": median["frozen"] / median[form],
                         "rel_err": float((y - expected).norm() / expected.norm()),
                         "times_ms": [round(t, 2) for t in times[form]]})
            print(rows[-1], flush=True)                        # a run cut short still shows its rows
    return rows


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    import onnxruntime as ort

    if args.threads:
        torch.set_num_threads(args.threads)
    rows, infos = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for family, preset, overrides in args.models:
            torch.manual_seed(args.seed)
            name, size, channels, forms, info = build(family, preset, overrides, tmp, torch.get_num_threads())
            infos.append(info)
            print(info, flush=True)
            timed_forms = {form: forms[form] for form in args.forms}
            rows += measure(name, size, channels, timed_forms, args.batches, args.reps, forms["eval"])
    header = (f"export_speed.py on {machine()}; onnxruntime {ort.__version__}; median of {args.reps} "
              f"alternating repeats after one warm-up call. vs_frozen > 1: faster than the frozen model.\n")
    report = (header + "\n" + table(rows, ["model", "form", "batch", "ms", "img_per_s", "vs_frozen", "rel_err"])
              + "\n\n" + table(infos, list(infos[0])))
    write_report(args.out, args.name, report, {"rows": rows, "models": infos})
    return rows


if __name__ == "__main__":
    main()
