"""Every public constructor checks its numbers: one argument off at a time, each case either works (and
gives finite outputs) or raises ValueError / TypeError naming the argument; θ is checked where it is
assigned, with the same error in both shape modes."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pgcnn_triton import PartialGCNN
from pgcnn_triton.kernelnets import SIREN, MAGNet
from pgcnn_triton.nn import GroupBatchNorm, GroupConv, GroupInstanceNorm, GroupLayerNorm, LiftingConv, SpatialMaxPool
from pgcnn_triton.nn.conv import split_output
from pgcnn_triton.sampling import PartialSampler, SamplingConfig, element_count
from pgcnn_triton.training import TrainConfig, build_optimizer, build_scheduler

NAN, INF = float("nan"), float("inf")
#: What a fuzzer (or a typo) hands a constructor: the edges of every numeric range, and non-numbers.
#: (Sizes stay small: a width of 10**12 is refused by the allocator, not by a check of ours.)
ODD_VALUES = [NAN, INF, -INF, 0, -1, 0.0, -0.5, 1e-300, 1e-8, 0.3, 1, 2, 3, 1.5, 1e8, 1e300,
              True, None, "2", (2,)]


def finite(*tensors):
    return all(bool(torch.isfinite(t).all()) for t in tensors if torch.is_tensor(t))


def features(c=2, g=2, hw=6):
    return torch.randn(2, c, g, hw, hw)


def norm_case(cls, size_name):
    def run(**kwargs):
        c = kwargs.get(size_name, 2)
        norm = cls(**kwargs)
        return norm(features(c if isinstance(c, int) and not isinstance(c, bool) and 0 < c < 5 else 2))
    return run


def pool_case(**kwargs):
    return SpatialMaxPool(**kwargs)(features())


def siren_case(**kwargs):
    return SIREN(2, 3, **kwargs)(torch.rand(5, 2) * 2 - 1)


def magnet_case(**kwargs):
    return MAGNet(2, 3, hidden=4, num_layers=1, **kwargs)(torch.rand(5, 2) * 2 - 1)


def conv_case(**kwargs):
    lift = LiftingConv(1, 2, 3, kernel_hidden=4, num_elements=2, **kwargs)
    y, g = split_output(lift(torch.randn(1, 1, 5, 5)))[:2]
    return GroupConv(2, 1, 3, kernel_hidden=4, num_elements=2, **kwargs)(y, g)[0]


def sampler_case(**kwargs):
    config = SamplingConfig(**{"group": "E2", "num_elements": 4, **kwargs})
    sampler = PartialSampler(config).train()
    return sampler(2)[0]


def config_case(**kwargs):
    config = TrainConfig(**{"epochs": 2, "warmup_epochs": 1, **kwargs})
    optimizer = build_optimizer(torch.nn.Linear(2, 2), config.lr, config.lr_probs, config.lr_omega0)
    scheduler = build_scheduler(optimizer, steps_per_epoch=2, epochs=config.epochs,
                                warmup_epochs=config.warmup_epochs, min_lr=config.min_lr, scheduler=config.scheduler)
    rates = []
    for _ in range(4):
        optimizer.step()
        scheduler.step()
        rates.append(optimizer.param_groups[0]["lr"])
    return torch.tensor(rates)


CASES = {
    "GroupBatchNorm": (norm_case(GroupBatchNorm, "num_features"), {"num_features": 2},
                       ["num_features", "eps", "momentum"]),
    "GroupLayerNorm": (norm_case(GroupLayerNorm, "num_channels"), {"num_channels": 2}, ["num_channels", "eps"]),
    "GroupInstanceNorm": (norm_case(GroupInstanceNorm, "-"), {}, ["eps"]),
    "SpatialMaxPool": (pool_case, {}, ["kernel_size", "stride"]),
    "SIREN": (siren_case, {}, ["hidden", "num_layers", "omega0"]),
    "MAGNet": (magnet_case, {}, ["input_scale"]),
    "GroupConv": (conv_case, {}, ["omega0", "kernel_layers", "kernel_size", "gumbel_init_temp", "mc_samples"]),
    "PartialSampler": (sampler_case, {}, ["gumbel_init_temp", "gumbel_end_temp", "gumbel_anneal_steps",
                                          "num_elements"]),
    "TrainConfig": (config_case, {}, ["lr", "lr_probs", "lr_omega0", "weight_decay", "min_lr", "gradient_clip",
                                      "epochs", "warmup_epochs"]),
}


def check_one_argument_off(name, argument, value):
    run, base, _ = CASES[name]
    try:
        out = run(**{**base, argument: value})
    except (ValueError, TypeError) as error:
        assert argument in str(error), f"{name}({argument}={value!r}): the error does not name it: {error}"
        return
    assert finite(out), f"{name}({argument}={value!r}) was accepted but gives non-finite outputs"


@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=12)
@given(data=st.data())
def test_fuzz_one_argument_off(name, data):
    argument = data.draw(st.sampled_from(CASES[name][2]), label="argument")
    value = data.draw(st.sampled_from(ODD_VALUES), label="value")
    check_one_argument_off(name, argument, value)


@pytest.mark.parametrize("name, argument, value", [
    ("GroupBatchNorm", "num_features", -1), ("GroupBatchNorm", "eps", NAN), ("GroupBatchNorm", "eps", -1e-5),
    ("GroupBatchNorm", "momentum", 2.0), ("GroupLayerNorm", "eps", 1e-300), ("GroupInstanceNorm", "eps", INF),
    ("SpatialMaxPool", "kernel_size", -1), ("SpatialMaxPool", "kernel_size", 100), ("SpatialMaxPool", "stride", 0),
    ("SIREN", "omega0", INF), ("SIREN", "omega0", 1e-300), ("GroupConv", "omega0", NAN),
    ("PartialSampler", "gumbel_init_temp", INF), ("PartialSampler", "gumbel_end_temp", NAN),
    ("TrainConfig", "lr", INF), ("TrainConfig", "lr", NAN), ("TrainConfig", "min_lr", INF),
    ("TrainConfig", "gradient_clip", NAN),
])
def test_reported_cases_are_clear_errors(name, argument, value):
    run, base, _ = CASES[name]
    with pytest.raises((ValueError, TypeError), match=argument):
        run(**{**base, argument: value})


def test_model_constructor_numbers():
    small = dict(in_channels=1, num_classes=2, hidden=2, num_blocks=1, block_width_factors=(1, 1), pool_blocks=(),
                 kernel_size=3, kernel_hidden=4, num_elements=2)
    for argument, value in [("dropout", NAN), ("dropout", 1.0), ("num_classes", 0), ("hidden", -2),
                            ("omega0", INF), ("pool_blocks", (1.5,)), ("block_width_factors", (NAN, 1)),
                            ("num_blocks", -1)]:
        with pytest.raises((ValueError, TypeError), match=argument.split("_factors")[0]):
            PartialGCNN(**{**small, argument: value})
    model = PartialGCNN(**{**small, "dropout": 0.5}).eval()
    assert finite(model(torch.randn(1, 1, 8, 8)))


def partial_conv(shape_mode):
    torch.manual_seed(0)
    return GroupConv(1, 1, 3, kernel_hidden=4, num_elements=4, shape_mode=shape_mode)


@pytest.mark.parametrize("theta", [NAN, INF, -INF, 1e300])
def test_bad_theta_gives_the_same_error_in_both_shape_modes(theta):
    errors = {}
    for mode in ("dynamic", "static"):
        conv = partial_conv(mode)
        with pytest.raises(ValueError) as info:
            conv.sampler.set_theta(theta)
        errors[mode] = str(info.value)
        assert "theta" in errors[mode] and conv.sampler.probs[0].item() == 1.0, "a refused θ is not kept"
        state = {k: v.clone() for k, v in conv.state_dict().items()}
        state["sampler.probs"][0] = torch.tensor(theta, dtype=torch.float64).float()  # 1e300 → inf in float32
        with pytest.raises(ValueError, match="sampler.probs") as loaded:
            conv.load_state_dict(state)
        errors[mode + " load"] = str(loaded.value)
    assert errors["dynamic"] == errors["static"] and errors["dynamic load"] == errors["static load"]
    # dynamic mode reads θ on the host anyway: a θ written around the setter raises the same error there
    if not math.isfinite(theta):
        with pytest.raises(ValueError) as info:
            element_count(4, theta)
        assert str(info.value) == errors["dynamic"]


@pytest.mark.parametrize("theta", [1e30, -1e30, 1e-300, 0.3, -0.7])
def test_extreme_finite_theta_works_alike_in_both_shape_modes(theta):
    x = torch.randn(2, 1, 4, 6, 6)
    g = torch.linspace(0, 5, 4, dtype=torch.float64)[None]
    outs = {}
    for mode in ("dynamic", "static"):
        conv = partial_conv(mode).eval()
        conv.sampler.set_theta(theta)
        outs[mode] = split_output(conv(x, g))
    (yd, gd), (ys, gs, mask) = outs["dynamic"][:2], outs["static"]
    n = element_count(4, theta)
    assert finite(yd, ys) and yd.shape[2] == n == int(mask.sum())
    assert torch.allclose(yd, ys[:, :, :n], atol=1e-5) and torch.allclose(gd, gs[:, :n])


def test_set_probs_checks_size_and_values():
    sampler = PartialSampler(SamplingConfig(group="E2", num_elements=4))
    sampler.set_probs([0.5, -2.0])
    assert sampler.probs.tolist() == [0.5, -2.0]
    with pytest.raises(ValueError, match="probs"):
        sampler.set_probs([0.5, NAN])
    with pytest.raises(ValueError, match="2 entries"):
        sampler.set_probs([0.5])
    gates = PartialSampler(SamplingConfig(num_elements=4, method="deterministic"))
    with pytest.raises(ValueError, match="set_probs"):
        gates.set_theta(0.5)
    assert math.isfinite(sampler.probs.sum().item())
