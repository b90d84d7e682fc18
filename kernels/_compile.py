"""Ahead-of-time compilation of the Triton kernels for a GPU target, without a GPU.

Triton ships ptxas, so ttir → ttgir → llir → ptx → cubin runs on a CPU-only machine (docs/kernels.md#compiling-without-a-gpu).
Every ``*_triton`` module lists its kernels at their GPU block configurations in ``compile_cases()``;
CI compiles them all for sm_90 (H200) so GPU-only compile errors (e.g. ``tl.dot`` with K < 16) fail
there. Must run in a process where ``TRITON_INTERPRET`` is unset (``@triton.jit`` then builds
compilable functions).
"""

from __future__ import annotations

import importlib

MODULES = ("bank_triton", "group_conv_triton", "group_pool_triton")


def signature(fn, pointers: dict[str, str], constexprs: dict, scalar: str = "i32") -> dict[str, str]:
    """The ``ASTSource`` signature of ``fn``: pointer types given, constexprs marked, other args ``scalar``."""
    return {name: "constexpr" if name in constexprs else pointers.get(name, scalar) for name in fn.arg_names}


def all_cases(modules=MODULES) -> list[dict]:
    cases = []
    for name in modules:
        module = importlib.import_module(f"{__package__}.{name}")
        cases.extend(module.compile_cases())
    return cases


def compile_case(case: dict, capability: int = 90, warp_size: int = 32):
    """Compile one case; returns the compiled kernel (``.asm["ptx"]``, ``.asm["cubin"]``, ``.metadata``)."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    # "ones": integer arguments the GPU launch sees as 1 (unit strides), which Triton's launcher turns into
    # constants; "divisible": arguments it sees as multiples of 16. Both change vectorisation and
    # software pipelining, so shared-memory figures are only realistic with them.
    constexprs = {**case["constexprs"], **{name: 1 for name in case.get("ones", ())}}
    signature = {name: "constexpr" if name in constexprs else kind for name, kind in case["signature"].items()}
    names = list(case["signature"])
    attrs = {(names.index(name),): [["tt.divisibility", 16]] for name in case.get("divisible", ())}
    src = ASTSource(fn=case["fn"], signature=signature, constexprs=constexprs, attrs=attrs)
    options = {"num_warps": case.get("num_warps", 4), "num_stages": case.get("num_stages", 3)}
    return triton.compile(src, target=GPUTarget("cuda", capability, warp_size), options=options)


def skip_llvm_optimizer() -> None:
    """Make Triton hand each kernel's LLVM IR to the PTX back end without running LLVM's O3 pipeline.

    For quick sweeps over many block configurations: what they check is decided before that pipeline
    (shared memory is allocated on the TTGIR, ``cp.async`` is emitted by the TTGIR → LLVM lowering, and the
    errors our kernel code can cause come from those lowerings or from ptxas, which still runs), while O3
    is about half of the compile time (the bf16/TF32/fp64 tile sweeps: 90 → 46 CPU s on a 2-core Xeon).
    Applies to this process only. Its kernels are not the ones a GPU run uses, and Triton's cache key
    does not see the change, so they are cached in a folder of their own (``<cache dir>/no-llvm-opt``).
    """
    import os

    import triton
    from triton._C.libtriton import llvm

    llvm.optimize_module = lambda *args, **kwargs: None
    triton.knobs.cache.dir = os.path.join(triton.knobs.cache.dir, "no-llvm-opt")


def main(argv=None) -> int:
    """Compile every case (or those whose name starts with one of ``--only``'s comma-separated prefixes);
    a case fails if it does not compile or needs more shared memory than its ``smem_limit``."""
    import argparse
    import time

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--only", default="", help="comma-separated case-name prefixes")
    parser.add_argument("--no-llvm-opt", action="store_true",
                        help="skip LLVM's O3 pass (quick sweeps; see skip_llvm_optimizer)")
    args = parser.parse_args(argv)
    prefixes = tuple(p for p in args.only.split(",") if p)
    if args.no_llvm_opt:
        skip_llvm_optimizer()
    failures = 0
    for case in all_cases():
        if prefixes and not case["name"].startswith(prefixes):
            continue
        start = time.perf_counter()
        try:
            compiled = compile_case(case)
        except Exception as error:  # report every failing case, not only the first
            failures += 1
            print(f"FAIL {case['name']}: {type(error).__name__}: {str(error).splitlines()[0][:300]}")
            continue
        shared = compiled.metadata.shared
        if shared > case.get("smem_limit", float("inf")):
            failures += 1
            print(f"FAIL {case['name']}: shared {shared} B exceeds the sm_{case.get('capability', 90)} "
                  f"limit of {case['smem_limit']} B per block")
            continue
        pipelined = "cp.async" in compiled.asm["ptx"]
        print(f"ok   {case['name']}: shared {shared} B, cp.async {'yes' if pipelined else 'no'}, "
              f"{time.perf_counter() - start:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
