"""Every Triton kernel compiles for sm_90 (the H200) at its GPU block configurations — on this CPU.

Runs in a subprocess without TRITON_INTERPRET (the test process interprets kernels instead). A case
also fails there if the compiled kernel needs more shared memory than one sm_90 block may use.
"""

import os
import subprocess
import sys

import pytest
import torch
from pgcnn_triton.kernels import _compile
from pgcnn_triton.kernels import group_conv_triton as gct

SIZES = {"bf16": 2, "tf32": 4, "fp64": 8}


def compile_lines(prefixes: str, llvm_opt: bool = True) -> list[str]:
    """The ``ok`` lines of ``_compile --only prefixes`` (asserting that nothing failed). The tile sweeps
    pass ``llvm_opt=False``: shared memory, ``cp.async`` and the compile errors of our kernel code are all
    decided before LLVM's optimizer, which is half their time (``_compile.skip_llvm_optimizer``)."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    cmd = [sys.executable, "-m", "pgcnn_triton.kernels._compile", "--only", prefixes]
    proc = subprocess.run(cmd + ([] if llvm_opt else ["--no-llvm-opt"]), env=env, capture_output=True, text=True,
                          timeout=900)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not [line for line in lines if line.startswith("FAIL")]
    return [line for line in lines if line.startswith("ok")]


def compile_only(prefixes: str, llvm_opt: bool = True) -> list[str]:
    return [line.split(":")[0][5:] for line in compile_lines(prefixes, llvm_opt)]


@pytest.mark.long(20)
def test_every_kernel_compiles_for_sm90():
    """The bank and pooling kernels and the group conv's fixed tiles (the autotuned tiles: below)."""
    names = compile_only("bank,group_pool,group_conv fp16,group_conv pool")
    for module in _compile.MODULES:
        assert module in {"bank_triton", "group_conv_triton", "group_pool_triton"}
    assert any("pool" in n and n.startswith("group_conv") for n in names)
    assert any(n.startswith("bank") for n in names) and any(n.startswith("group_pool") for n in names)


@pytest.mark.long(25)
@pytest.mark.parametrize("kind", list(SIZES))
def test_every_offered_tile_compiles_for_sm90_within_shared_memory(kind):
    """Each tile ``autotune_configs`` can offer for this element size (full and quick modes), for the
    forward / input-gradient kernel and the bank-gradient kernel, compiled with the GPU's argument
    specialisation; _compile fails a case above 227 KB of shared memory."""
    names = compile_only(f"group_conv {kind} ,group_conv bank_grad {kind} ", llvm_opt=False)
    expected = {f"group_conv {pre}{kind} {m}x{n}x{k} w{w} s{s}" for m, n, k, w, s in gct.offered_configs()[SIZES[kind]]
                for pre in ("", "bank_grad ")}
    assert set(names) == expected


def test_autotune_sets_per_dtype(monkeypatch):
    monkeypatch.setenv("PGCNN_AUTOTUNE", "quick")
    quick = {d: gct.autotune_configs(d) for d in (torch.bfloat16, torch.float16, torch.float32, torch.float64)}
    monkeypatch.setenv("PGCNN_AUTOTUNE", "full")
    full = {d: gct.autotune_configs(d) for d in quick}
    for dtype, tiles in quick.items():
        size = torch.empty(0, dtype=dtype).element_size()
        assert 3 <= len(tiles) <= 4 and set(tiles) <= set(full[dtype])  # a short window; full ⊇ quick
        assert all(gct.smem_estimate(t, size) <= gct.SM90_SMEM_PER_BLOCK for t in full[dtype])
    # the wgmma-sized tiles of issue 13 are offered for bf16 in the short window
    assert (128, 256, 64, 8, 3) in quick[torch.bfloat16] and (128, 128, 64, 8, 4) in quick[torch.bfloat16]
    # a tile whose fp32 operand buffers exceed 227 KB (3 × 96 KB) is not offered for fp32, but is for bf16
    assert (128, 256, 64, 8, 3) not in full[torch.float32] and (128, 256, 64, 8, 3) in full[torch.bfloat16]
    monkeypatch.setenv("PGCNN_AUTOTUNE", "fast")
    with pytest.raises(ValueError, match="PGCNN_AUTOTUNE"):
        gct.autotune_configs(torch.bfloat16)


@pytest.mark.long(12)
def test_channels_last_bf16_builds_are_software_pipelined():
    """With channel-contiguous activations (``conv_forward(..., channels_last=True)``) the bf16 conv and
    bank-gradient kernels stage their loads with ``cp.async`` (pipelined) on sm_90; the NCHW bf16 builds
    do not (their gathered rows are not provably contiguous: BENCHMARKS.md, issue 13)."""
    lines = compile_lines("group_conv cl bf16,group_conv bank_grad cl bf16", llvm_opt=False)
    assert len(lines) == 2 * len(gct._QUICK_BY_DTYPE[2])
    assert all("cp.async yes" in line for line in lines), lines


def test_skipping_llvm_opt_changes_nothing_the_sweeps_check():
    """The tile sweeps above skip LLVM's optimizer: the same kernels, with and without it, compile with the
    same shared memory and the same ``cp.async`` pipelining (a pipelined bf16 tile, forward and bank grad;
    one process compiles both ways, the second into its own cache folder)."""
    prefixes = "group_conv cl bf16 64x64x32,group_conv bank_grad cl bf16 64x64x32"
    code = ("import sys; from pgcnn_triton.kernels import _compile as c; p = sys.argv[1]; "
            "sys.exit(c.main(['--only', p]) or c.main(['--only', p, '--no-llvm-opt']))")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run([sys.executable, "-c", code, prefixes], env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = [line.rsplit(",", 1)[0] for line in proc.stdout.splitlines() if line.startswith("ok")]  # no times
    assert len(lines) == 4 and all("cp.async yes" in line for line in lines), lines
    assert lines[2:] == lines[:2]
