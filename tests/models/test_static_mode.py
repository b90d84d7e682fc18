"""Static shape mode: no host-device synchronisation, no data-dependent shapes, nothing kept on modules."""

import pytest
import torch
from torch.overrides import TorchFunctionMode

from pgcnn_triton import GCNN, PartialGCNN

SYNCING = {"item", "tolist", "__bool__", "__float__", "__int__", "__index__", "nonzero", "masked_select", "unique"}


class ForbidHostSync(TorchFunctionMode):
    """Raise on every tensor operation that reads device values on the host or makes shapes data dependent."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in SYNCING:
            raise AssertionError(f"host sync in forward: Tensor.{name}")
        if name == "__getitem__" and any(
                isinstance(i, torch.Tensor) and i.dtype == torch.bool
                for i in (args[1] if isinstance(args[1], tuple) else (args[1],))):
            raise AssertionError("boolean-mask indexing in forward")
        return func(*args, **(kwargs or {}))


SMALL = dict(in_channels=1, num_classes=3, hidden=4, pool_blocks=(), kernel_size=3, kernel_hidden=6)


@pytest.mark.parametrize("group,method", [("SE2", "random"), ("E2", "random"), ("SE2", "deterministic"),
                                          ("E2", "deterministic")])
def test_static_training_step_never_syncs(group, method):
    model = PartialGCNN(**SMALL, group=group, num_elements=4, method=method, shape_mode="static",
                        gumbel_anneal_steps=100)
    x = torch.randn(2, 1, 9, 9)
    with ForbidHostSync():
        for _ in range(2):
            loss = model(x).logsumexp(-1).sum()
            loss.backward()
        model.eval()
        model(x)


def test_static_gcnn_per_batch_never_syncs():
    model = GCNN(in_channels=1, num_classes=3, hidden=4, num_blocks=2, block_width_factors=(1, 2),
                 pool_blocks=(1,), dropout_blocks=(2,), kernel_hidden=4, num_elements=4,
                 per_batch_element=True, shape_mode="static")
    with ForbidHostSync():
        model(torch.randn(2, 1, 8, 8)).sum().backward()


def test_dynamic_mode_does_sync_so_the_check_is_real():
    model = PartialGCNN(**SMALL, num_elements=4, shape_mode="dynamic")
    with pytest.raises(AssertionError, match="host sync"):
        with ForbidHostSync():
            model(torch.randn(2, 1, 9, 9))


def test_static_shapes_do_not_follow_theta():
    model = PartialGCNN(**SMALL, num_elements=8, shape_mode="static")
    shapes = []
    model.blocks[0].gconv1.register_forward_hook(lambda m, i, o: shapes.append(tuple(o[0].shape)))
    for theta in (1.0, 0.4, 0.05):
        with torch.no_grad():
            model.blocks[0].gconv1.sampler.probs.fill_(theta)
        model(torch.randn(2, 1, 9, 9))
    assert len(set(shapes)) == 1 and shapes[0][2] == 8


def test_forward_keeps_no_tensors_on_modules():
    model = PartialGCNN(**SMALL, group="E2", num_elements=4)

    def tensors():
        found = {}
        for name, m in model.named_modules():
            for key, value in vars(m).items():
                if isinstance(value, torch.Tensor):
                    found[f"{name}.{key}"] = value.numel()
        found.update({k: v.numel() for k, v in model.state_dict().items()})
        found.update({f"nonpersistent.{k}": v.numel() for k, v in model.named_buffers()})
        return found

    before = tensors()
    model(torch.randn(2, 1, 9, 9)).sum().backward()
    assert tensors() == before
