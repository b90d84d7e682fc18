import math

import pytest
import torch

from pgcnn_triton.training import build_optimizer, build_scheduler, lr_factor


def test_warmup_then_cosine_values():
    kw = dict(warmup_steps=10, total_steps=110, base_lr=1e-3, min_lr=1e-6)
    assert lr_factor(0, **kw) == pytest.approx(0.1)
    assert lr_factor(4, **kw) == pytest.approx(0.5)
    assert lr_factor(9, **kw) == pytest.approx(1.0)
    assert lr_factor(10, **kw) == pytest.approx(1.0)
    floor = 1e-6 / 1e-3
    assert lr_factor(60, **kw) == pytest.approx(floor + (1 - floor) * 0.5)            # half-way: cos(π/2) = 0
    assert lr_factor(35, **kw) == pytest.approx(floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_factor(110, **kw) * 1e-3 == pytest.approx(1e-6)                          # ends at min_lr
    assert lr_factor(500, **kw) * 1e-3 == pytest.approx(1e-6)
    assert lr_factor(3, scheduler="constant", **kw) == 1.0


def test_scheduler_per_group_lrs_and_steps():
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam([{"params": [model.weight], "lr": 1e-3}, {"params": [model.bias], "lr": 1e-4}])
    sched = build_scheduler(opt, steps_per_epoch=4, epochs=10, warmup_epochs=5, min_lr=1e-6)
    seen = []
    for _ in range(40):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    assert seen[0] == pytest.approx([1e-3 / 20, 1e-4 / 20])       # warm-up: 5 epochs × 4 steps
    assert seen[19] == pytest.approx([1e-3, 1e-4])
    assert seen[30][0] == pytest.approx(1e-6 + (1e-3 - 1e-6) * 0.5 * (1 + math.cos(math.pi * 10 / 20)))
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-6, 1e-6])  # both anneal to min_lr


def test_short_runs_shorten_the_warmup():
    opt = torch.optim.Adam(torch.nn.Linear(1, 1).parameters(), lr=1.0)
    sched = build_scheduler(opt, steps_per_epoch=2, epochs=1, warmup_epochs=5)
    assert opt.param_groups[0]["lr"] == pytest.approx(1.0)  # 1 epoch: no warm-up, straight to cosine
    with pytest.raises(ValueError, match="steps_per_epoch"):
        build_scheduler(opt, steps_per_epoch=0, epochs=1)
    assert sched.last_epoch == 0


def test_param_groups():
    from pgcnn_triton import PartialGCNN

    model = PartialGCNN.from_preset("mnist6-m-e2-partial", hidden=2, num_elements=4, kernel_size=3,
                                    kernel_net="SIREN", learn_omega0=True)
    opt = build_optimizer(model, lr=1e-3, lr_probs=1e-4, lr_omega0=5e-4)
    groups = {g["name"]: g for g in opt.param_groups}
    assert {k: g["lr"] for k, g in groups.items()} == {"weights": 1e-3, "probs": 1e-4, "omega0": 5e-4}
    assert len(groups["probs"]["params"]) == 5 and all(p.shape == (2,) for p in groups["probs"]["params"])
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))
