"""`--compile` with the static shape mode: the trainer's compiled step computes eager's gradients.

The comparison is one training step's gradients, not results after training. Adam moves every
parameter by about ±lr whatever its gradient's size, so after a few steps rounding-level differences
of near-zero gradients become lr-sized parameter differences: a loss after training measures the
optimizer's sensitivity to rounding (a fresh clone once saw 7 % between eager and compiled), not the
compiled graph.

Tolerance from float rounding: model and data run in float64, but the trainer casts the logits to
float32 for the loss, so eager and compiled gradients can differ by the float32 rounding of the
loss gradient, ~1e-7 relative (float32 eps 1.2e-7). Each parameter's gradient must agree to 1e-5
relative (100× that). The model is E(2) partial with the Gumbel temperature annealed over the one
step: a compiled backward that recomputed τ after the counter advanced (the bug that
``sampling.snapshot`` prevents) gets τ = 1e-4 instead of 0.5 and mirror-logit gradients that are
off by orders of magnitude.

The digits get a little noise: their constant background makes exact ties in the max pools, where
eager and inductor route the gradient to different (equally valid) positions; tied inputs changed
the lift's bias gradients by 20–90 % while every weight gradient agreed to 1e-10.

The model has one residual block and 2-layer kernel nets: inductor compiles each fused kernel with the
system C++ compiler (~1 s each on a 2-core CPU), so the cold compile time follows the graph's size
(two blocks: 83 s in the suite; one block: ~60 s); one block still holds every layer kind and three
gated E(2) layers.
"""

from types import SimpleNamespace

import pytest
import torch
import torch._inductor.config as inductor_config
from torch.utils.data import Dataset

from pgcnn_triton.training import Trainer, build_model
from tests.training.tiny import tiny_config, tiny_data, tiny_spec

TOL = 1e-5


class Float64TieFree(Dataset):
    """The images in float64, plus fixed noise that breaks max-pool ties (see the module docstring)."""

    def __init__(self, data):
        self.data = data

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        x, y = self.data[index]
        noise = torch.randn(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(index))
        return x.double() + 1e-3 * noise, y


def first_step_gradients(tmp_path, compile_model):
    """Gradients of the trainer's first training step (captured before the optimizer applies them)."""
    torch._dynamo.reset()  # no compiled code or recompile counts left over from other tests
    torch.manual_seed(0)
    spec = tiny_spec("mnist6-m-e2-partial", shape_mode="static", num_blocks=1, pool_blocks=(1,), kernel_layers=2)
    data = tiny_data("mirror")
    data = SimpleNamespace(**{**vars(data), **{s: Float64TieFree(getattr(data, s)) for s in ("train", "val", "test")}})
    config = tiny_config(epochs=1, max_batches=1, weight_decay=1e-3, compile=compile_model)
    trainer = Trainer(build_model(spec).double(), data, config, tmp_path, model_spec=spec)
    assert isinstance(trainer.net, torch._dynamo.eval_frame.OptimizedModule) == compile_model
    captured = {}
    step = trainer.optimizer.step

    def capture(*args, **kwargs):
        captured.update({n: p.grad.detach().clone() for n, p in trainer.model.named_parameters()
                         if p.grad is not None})
        return step(*args, **kwargs)

    trainer.optimizer.step = capture
    with torch._dynamo.config.patch(fail_on_recompile_limit_hit=True), inductor_config.patch(fallback_random=True):
        metrics = trainer.train_epoch(1)
    return captured, metrics


@pytest.mark.long(55)
def test_compiled_static_training_step_matches_eager(tmp_path):
    eager, eager_metrics = first_step_gradients(tmp_path / "eager", False)
    compiled, compiled_metrics = first_step_gradients(tmp_path / "compiled", True)
    assert set(compiled) == set(eager) and any("probs" in n for n in eager)
    # the mirror gates' gradients are exercised (a closed gate has none, quirk Q7)
    assert sum(float(g[1].abs()) > 0 for n, g in eager.items() if n.endswith("sampler.probs")) >= 2
    scale = torch.cat([g.flatten() for g in eager.values()]).norm()
    for name, g in eager.items():
        diff = float((compiled[name] - g).norm())
        assert diff <= TOL * float(g.norm()) + 1e-12 * float(scale), (name, diff, float(g.norm()))
    assert abs(compiled_metrics["train_loss"] - eager_metrics["train_loss"]) <= 1e-6 * eager_metrics["train_loss"]
