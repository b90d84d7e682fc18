"""Shape traces of docs/method.md#shapes (CIFAR-10 CKResNet SE2 partial, B = 2, N = 8)."""

import pytest
import torch

import pgcnn_triton.nn.conv as conv_module
from pgcnn_triton import PartialGCNN
from pgcnn_triton.nn import GroupConv, LiftingConv, PointwiseGroupConv


def trace(model, x, monkeypatch):
    rows, banks, coords = {}, [], []
    real_bank = conv_module.kernel_bank

    def spy_bank(hidden, weight, bias, out_channels, dtype=None):
        bank = real_bank(hidden, weight, bias, out_channels, dtype)
        banks.append(tuple(bank.shape))
        return bank

    def spy_features(net, original):
        def features(c):
            coords.append(tuple(c.shape))
            return original(c)
        return features

    monkeypatch.setattr(conv_module, "kernel_bank", spy_bank)
    hooks = []
    for name, mod in model.named_modules():
        if isinstance(mod, (LiftingConv, GroupConv, PointwiseGroupConv)):
            mod.kernel_net.features = spy_features(mod.kernel_net, mod.kernel_net.features)
            hooks.append(mod.register_forward_hook(
                lambda m, inp, out, name=name: rows.__setitem__(name, (tuple(inp[0].shape), tuple(out[0].shape)))))
    model(x)
    for h in hooks:
        h.remove()
    return rows, banks, coords


def test_cifar10_trace_theta_one(monkeypatch):
    model = PartialGCNN.from_preset("cifar10-se2-partial").eval()
    rows, banks, coords = trace(model, torch.randn(2, 3, 32, 32), monkeypatch)
    assert rows == {
        "lift": ((2, 3, 32, 32), (2, 32, 8, 32, 32)),
        "blocks.0.gconv1": ((2, 32, 8, 32, 32), (2, 32, 8, 32, 32)),
        "blocks.0.gconv2": ((2, 32, 8, 32, 32), (2, 32, 8, 32, 32)),
        "blocks.0.shortcut": ((2, 32, 8, 32, 32), (2, 32, 8, 32, 32)),
        "blocks.1.gconv1": ((2, 32, 8, 16, 16), (2, 64, 8, 16, 16)),
        "blocks.1.gconv2": ((2, 64, 8, 16, 16), (2, 64, 8, 16, 16)),
        "blocks.1.shortcut": ((2, 32, 8, 16, 16), (2, 64, 8, 16, 16)),
        "last_conv": ((2, 64, 8, 8, 8), (2, 64, 8, 2, 2)),
    }
    # tap-packed banks [S, C_out·N_out, T, C_in·N_in] (the official dense kernels (8,32,3,7,7),
    # (8,32,32,8,7,7), (8,32,32,8,1,1) hold the same values plus the 20 masked taps)
    assert banks[0] == (1, 32 * 8, 29, 3)
    assert banks[1] == (1, 32 * 8, 29, 32 * 8)
    assert (1, 32 * 8, 1, 32 * 8) in banks
    # kernel-net inputs [S, N_out, N_in, T, D]: lifting D = 2, group D = 3, shortcut D = 1
    assert coords[0] == (1, 8, 1, 29, 2) and coords[1] == (1, 8, 8, 29, 3) and (1, 8, 8, 1, 1) in coords


@pytest.mark.parametrize("group,theta,g_expected,coord_dim",
                         [("SE2", 0.5, 4, 3), ("SE2", 0.1, 1, 3), ("E2", 0.5, 4, 4)])
def test_partial_theta_sets_group_axis(monkeypatch, group, theta, g_expected, coord_dim):
    model = PartialGCNN(hidden=4, kernel_hidden=8, group=group, num_elements=8)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, GroupConv):
                m.sampler.probs[0] = theta
                if group == "E2":
                    m.sampler.probs[1] = 20.0  # mirrors on
    rows, _, coords = trace(model.eval(), torch.randn(2, 3, 32, 32), monkeypatch)
    assert rows["lift"][1][2] == 8
    for name in ("blocks.0.gconv1", "blocks.0.gconv2", "blocks.1.gconv1", "blocks.1.gconv2", "last_conv"):
        assert rows[name][1][2] == g_expected
    assert rows["blocks.0.gconv2"][0][2] == g_expected  # the next layer integrates over what it received
    assert coords[1][-1] == coord_dim
