"""Static shape mode under ``torch.compile(fullgraph=True)``: forward and training step compile without
graph breaks (so no ``.item()`` / ``.tolist()`` / data-dependent shapes) and match eager.

These steps compile with ``aot_eager``: the same AOTAutograd partitioning as inductor (where the
Gumbel-counter bug lived) without its code generation. The inductor step is compared with eager,
parameter by parameter in float64, through the trainer in tests/training/test_compiled_training.py.

Here: the C_n gates (two gated group convs in a row) and per-sample elements, on the GCNN. Random elements
(θ, mirrors, masked slots) compile in tests/models/test_static_exact.py, SE(2) on the CKResNet (residual
block, shortcut, 'valid' last conv) and E(2) on the GCNN; there the compiled step and evaluation equal
eager *dynamic* mode exactly. The models are as small as the checks allow (the GCNN: a lift and one or two
group convs; 2-layer kernel nets): Dynamo / AOT tracing time grows with the graph, and the code of each
sampling method and group is the sampler's and the group's, not the architecture's."""

import copy

import pytest
import torch
import torch.nn.functional as F

from pgcnn_triton import GCNN, PartialGCNN
from pgcnn_triton.nn import collect_kernel_norms

SMALL = dict(in_channels=1, num_classes=3, hidden=4, num_blocks=1, block_width_factors=(1, 1), pool_blocks=(1,),
             kernel_size=3, kernel_hidden=6, kernel_layers=2)
GCNN_SMALL = dict(in_channels=1, num_classes=3, hidden=4, pool_blocks=(1,), dropout_blocks=(), kernel_hidden=4,
                  kernel_layers=2, num_elements=4, shape_mode="static")
CASES = {
    "se2-gates": lambda: GCNN(**GCNN_SMALL, num_blocks=2, block_width_factors=(1, 2), group="SE2",
                              method="deterministic"),
    "gcnn-per-sample": lambda: GCNN(**GCNN_SMALL, num_blocks=1, block_width_factors=(1, 1), per_batch_element=True),
}


@pytest.fixture(autouse=True)
def fresh_dynamo():
    # every test compiles from scratch: a recompile limit reached by earlier tests would make Dynamo
    # fall back to eager silently, and the comparisons below would compare eager with eager
    torch._dynamo.reset()
    with torch._dynamo.config.patch(fail_on_recompile_limit_hit=True):
        yield


def grads(model):
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def rel(a, b):
    return float((a - b).norm() / b.norm())


def loss_fn(model, x, y):
    with collect_kernel_norms() as norms:
        logits = model(x)
    return F.cross_entropy(logits, y) + 1e-3 * torch.stack(norms).sum()


def assert_step_matches(eager, compiled_model, step, x, y, loss_tol, grad_tol):
    """One training step of ``eager`` and of ``step(compiled_model, x, y)`` from the same random state."""
    for m in (eager, compiled_model):
        m.zero_grad(set_to_none=True)
    torch.manual_seed(1)
    loss_e = loss_fn(eager, x, y)
    loss_e.backward()
    torch.manual_seed(1)
    loss_c = step(compiled_model, x, y)
    loss_c.backward()
    assert rel(loss_c.detach(), loss_e.detach()) < loss_tol
    assert rel(grads(compiled_model), grads(eager)) < grad_tol


@pytest.mark.parametrize("case", sorted(CASES))
def test_fullgraph_training_step_and_eval_match_eager(case):
    torch.manual_seed(0)
    eager = CASES[case]()
    compiled_model = copy.deepcopy(eager)
    x, y = torch.randn(3, 1, 10, 10), torch.tensor([0, 2, 1])
    # the whole step (forward, kernel-norm regulariser, loss) is one graph; backward is its AOT backward
    step = torch.compile(lambda m, a, b: loss_fn(m, a, b), fullgraph=True, backend="aot_eager")
    for _ in range(2):  # twice: the Gumbel counters and BN statistics move between steps
        assert_step_matches(eager, compiled_model, step, x, y, 1e-6, 1e-5)
    eager.eval()
    compiled_model.eval()
    forward = torch.compile(compiled_model, fullgraph=True, backend="aot_eager")
    with torch.no_grad():
        assert rel(forward(x), eager(x)) < 1e-6


def test_dynamic_mode_breaks_fullgraph_so_the_check_is_real():  # ~2 s: Dynamo stops at the first graph break
    model = PartialGCNN(**SMALL, num_elements=4, shape_mode="dynamic")
    with pytest.raises(Exception, match="(?i)item|scalar|data.dependent|graph break|Unsupported"):
        torch.compile(model, fullgraph=True, backend="aot_eager")(torch.randn(2, 1, 10, 10))
