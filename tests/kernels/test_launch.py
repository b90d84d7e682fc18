"""The one launch point of the Triton kernels (kernels/_launch.py): every launch goes through it, and it
makes the tensors' CUDA device current and refuses grids past CUDA's limits."""

import ast
from pathlib import Path

import pytest
import torch
from pgcnn_triton.kernels import _launch

KERNELS = Path(_launch.__file__).resolve().parent


def _jit_names(tree) -> set:
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
            and any("jit" in ast.unparse(d) or "autotune" in ast.unparse(d) for d in node.decorator_list)}


def _is_launch(call: ast.Call, kernels: set) -> bool:
    """``kernel[grid](...)``: a Triton kernel (or an expression making one) subscripted with a grid."""
    if not isinstance(call.func, ast.Subscript):
        return False
    value, index = call.func.value, call.func.slice
    return (isinstance(value, ast.Name) and value.id in kernels) or isinstance(value, ast.Call) \
        or isinstance(index, ast.Tuple) or "grid" in ast.unparse(index)


def test_no_kernel_launch_bypasses_the_launch_helper():
    """A ``kernel[grid](...)`` call anywhere but in ``_launch.launch`` would skip the device guard and the
    grid check."""
    trees = {path.name: ast.parse(path.read_text()) for path in sorted(KERNELS.glob("*.py"))}
    kernels = set().union(*map(_jit_names, trees.values()))
    assert {"_conv_kernel", "bank_fwd_kernel", "_group_max_fwd_kernel"} <= kernels
    bypasses = [f"{name}:{node.lineno}" for name, tree in trees.items() if name != "_launch.py"
                for node in ast.walk(tree) if isinstance(node, ast.Call) and _is_launch(node, kernels)]
    assert not bypasses, f"kernel launches outside kernels/_launch.py's launch(): {bypasses}"


class FakeKernel:
    """Records the grid, the arguments and the CUDA device current at launch."""

    def __init__(self, current):
        self.current, self.launches = current, []

    def __getitem__(self, grid):
        def run(*args, **meta):
            nonlocal grid
            if callable(grid):  # as Triton does: the grid of the kernel's meta-parameters
                grid = grid(meta)
            self.launches.append((grid, args, meta, self.current[-1] if self.current else None))
        return run


def test_launch_makes_the_tensors_device_current(monkeypatch):
    current = []

    class FakeDeviceGuard:  # torch.cuda.device without a GPU
        def __init__(self, device):
            self.device = torch.device(device)

        def __enter__(self):
            current.append(self.device)

        def __exit__(self, *exc):
            current.pop()

    monkeypatch.setattr(torch.cuda, "device", FakeDeviceGuard)
    kernel = FakeKernel(current)
    _launch.launch(kernel, (3, 2), torch.device("cuda", 1), "a", 7, BLOCK=16)
    assert kernel.launches == [((3, 2, 1), ("a", 7), {"BLOCK": 16}, torch.device("cuda", 1))]
    assert current == []  # restored after the launch
    _launch.launch(kernel, (1,), torch.device("cpu"))  # CPU (interpreter): no CUDA call at all
    assert kernel.launches[-1][3] is None
    _launch.launch(kernel, (0, 4), torch.device("cpu"))  # an empty grid launches nothing
    assert len(kernel.launches) == 2


def test_launch_checks_the_grid_against_the_limits(monkeypatch):
    kernel = FakeKernel([])
    with pytest.raises(_launch.GridLimitError, match="65536 programs on axis z"):
        _launch.launch(kernel, (1, 1, 65536), torch.device("cpu"))
    with pytest.raises(_launch.GridLimitError, match="axis y"):
        _launch.launch(kernel, lambda meta: (1, 70000 // meta["BLOCK"]), torch.device("cpu"), BLOCK=1)
    assert kernel.launches == []
    monkeypatch.setattr(_launch, "MAX_GRID", (2**31 - 1, 4, 4))  # the launchers read it at call time
    assert _launch.fold(10, 2, "op") == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]
    with pytest.raises(_launch.GridLimitError, match="op: one item needs 5 programs"):
        _launch.fold(3, 5, "op")
