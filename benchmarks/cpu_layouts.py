"""CPU lowering of the group conv, per layer shape: dense vs split (disk cover), NCHW vs channels-last.

    python benchmarks/cpu_layouts.py [--preset cifar10-se2-partial] [--batch 8] [--repeats 3]

For every group conv of the preset (shapes recorded by forward hooks on one forward pass), times the
op body that the CPU runs, forward + backward (input and bank gradients), in fp32 and bf16:

* ``dense``: the tap-packed bank scattered into a zero-masked k×k kernel, one ``conv2d``
  (:mod:`pgcnn_triton.kernels.group_conv_reference`);
* ``split``: the disk covered by a few dense sub-convolutions (:mod:`pgcnn_triton.kernels.group_conv_split`),
  NCHW or channels-last activations.

Each time is the median of ``--repeats`` after one warm-up; rows stream as they are measured. This is
the measurement behind ``group_conv_split.use_channels_last`` (channels-last from 64 input channels).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from common import timed  # noqa: E402
from pgcnn_triton.kernels import group_conv_reference as reference  # noqa: E402
from pgcnn_triton.kernels import group_conv_split as split  # noqa: E402

from pgcnn_triton.precision import cpu_bf16_units, cpu_model_name  # noqa: E402

VARIANTS = {"dense NCHW": (False, "never"), "split NCHW": (True, "never"), "split CL": (True, "always")}


def conv_shapes(preset: str, batch: int, size: int) -> list[dict]:
    """``x``/bank shapes, k and padding of every group conv call of one forward of the preset."""
    from pgcnn_triton import PartialGCNN
    from pgcnn_triton.nn import GroupConv, LiftingConv

    model = PartialGCNN.from_preset(preset).eval()
    shapes = []

    def hook(module, inputs, output):
        x = inputs[0]
        x5 = x[:, :, None] if x.dim() == 4 else x
        g_out = output[1]
        g_in = inputs[1] if x.dim() == 5 else None
        bank = module.make_bank(g_out, g_in, torch.float32) if g_in is not None else \
            module.make_bank(g_out, None, torch.float32)
        shapes.append(dict(name=name_of[module], x=tuple(x5.shape), bank=tuple(bank.shape), k=module.kernel_size,
                           padding=module.kernel_size // 2 if module.padding == "same" else
                           (0 if module.padding == "valid" else module.padding)))

    name_of = {}
    for name, m in model.named_modules():
        if isinstance(m, (GroupConv, LiftingConv)) and m.kernel_size > 1:
            name_of[m] = name
            m.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.randn(batch, model.lift.in_channels, size, size))
    return shapes


def time_variant(shape: dict, dtype: torch.dtype, use_split: bool, layout: str, repeats: int) -> float:
    x = torch.randn(shape["x"], dtype=dtype)
    bank = torch.randn(shape["bank"], dtype=dtype)
    k, pad = shape["k"], shape["padding"]
    saved = split.CHANNELS_LAST
    split.CHANNELS_LAST = layout
    try:
        y = reference.forward(x, bank, None, k, pad, split=use_split)
        gy = torch.randn_like(y)

        def step():
            reference.forward(x, bank, None, k, pad, split=use_split)
            reference.backward(gy, x, bank, k, pad, True, True, split=use_split)
        return timed(step, x.device, reps=repeats)
    finally:
        split.CHANNELS_LAST = saved


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="cifar10-se2-partial")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--dtypes", default="fp32,bf16")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    print(f"CPU: {cpu_model_name()}, bf16 units: {cpu_bf16_units() or 'none'}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; {args.preset}, batch {args.batch}, fwd+bwd ms (median of {args.repeats})")
    print("| layer | x [B, C, G, H, W] | k | dtype | " + " | ".join(VARIANTS) + " | split CL / dense |")
    print("|---|---|---|---|" + "---|" * (len(VARIANTS) + 1))
    rows = []
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    for shape in conv_shapes(args.preset, args.batch, args.size):
        for name in args.dtypes.split(","):
            ms = {v: time_variant(shape, dtypes[name], *VARIANTS[v], args.repeats) for v in VARIANTS}
            rows.append(dict(shape, dtype=name, **ms))
            print(f"| {shape['name']} | {list(shape['x'])} | {shape['k']} | {name} | "
                  + " | ".join(f"{ms[v]:.1f}" for v in VARIANTS)
                  + f" | {ms['split CL'] / ms['dense NCHW']:.2f} |", flush=True)
    return rows


if __name__ == "__main__":
    main()
