"""Elastic MobileNetV3 supernet: shapes for every kind of arch, exact weight sharing, analytic costs."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from raynas.space.mbv3 import MBV3Space
from raynas.supernet import build_supernet
from raynas.supernet.mbv3 import MBV3Supernet
from tests.supernet.conftest import CIFAR_MBV3

N_RANDOM = 40


class CostCounter(TorchFunctionMode):
    """Counts, over the conv2d / batch_norm / linear calls actually executed, the weight and bias
    elements used and the multiply-accumulates (per output element: weight elements per output channel)."""

    def __init__(self) -> None:
        super().__init__()
        self.params = self.macs = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        arg = lambda i, name: args[i] if len(args) > i else kwargs.get(name)  # noqa: E731
        tensors = ()
        if func in (F.conv2d, F.linear):
            weight = arg(1, "weight")
            tensors = (weight, arg(2, "bias"))
            self.macs += out.numel() * weight[0].numel()
        elif func is F.batch_norm:
            tensors = (arg(3, "weight"), arg(4, "bias"))
        self.params += sum(t.numel() for t in tensors if t is not None)
        return out


@pytest.fixture(scope="module")
def model(mbv3_space):
    return build_supernet("mbv3", mbv3_space).eval()


def some_archs(space, n=N_RANDOM, seed=0):
    rng = np.random.default_rng(seed)
    return [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(n)]


@torch.no_grad()
def test_forward_shape_for_random_largest_and_smallest_archs(model, mbv3_space):
    x = torch.randn(2, 1, 8, 8)
    for arch in some_archs(mbv3_space):
        out = model(x, arch)
        assert out.shape == (2, 10) and torch.isfinite(out).all()


@torch.no_grad()
def test_forward_on_cifar_sized_inputs():
    space = MBV3Space(MBV3Space.Config(**CIFAR_MBV3))
    model = build_supernet("mbv3", space).eval()
    for arch in some_archs(space, n=3):
        assert model(torch.randn(2, 3, 32, 32), arch).shape == (2, 10)


def test_rejects_foreign_arch_and_space(model, mbv3_space):
    with pytest.raises(ValueError, match="not an arch of space mbv3"):
        model(torch.randn(1, 1, 8, 8), (3, 3, 3, 3, 3, 3))
    from raynas.space.nb201 import NB201Space

    with pytest.raises(ValueError, match="serves space 'mbv3'"):
        MBV3Supernet(NB201Space())


def test_construction_is_seeded_and_leaves_global_rng_alone(mbv3_space):
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    a, b = build_supernet("mbv3", mbv3_space, {"seed": 3}), build_supernet("mbv3", mbv3_space, {"seed": 3})
    assert torch.rand(1) == before
    c = build_supernet("mbv3", mbv3_space, {"seed": 4})
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.stem[0].weight, c.stem[0].weight)


def test_params_and_flops_match_the_executed_subnet(model, mbv3_space):
    for arch in some_archs(mbv3_space, n=8, seed=1):
        with CostCounter() as counter, torch.no_grad():
            model(torch.randn(1, 1, 8, 8), arch)
        assert (counter.macs, counter.params) == (mbv3_space.flops(arch), mbv3_space.params(arch))


def test_smallest_subnet_trains_only_the_leading_slices(mbv3_space):
    model = build_supernet("mbv3", mbv3_space)
    small = mbv3_space.smallest()
    out = model(torch.randn(8, 1, 8, 8), small)
    (out * torch.randn_like(out)).sum().backward()
    block = model.stages[0][0]
    mid, k, kmax = 8 * small.expands[0], small.kernels[0], mbv3_space.kernel_choices[-1]
    s = (kmax - k) // 2
    grad = block.depthwise.weight.grad
    inside = torch.zeros_like(grad, dtype=torch.bool)
    inside[:mid, :, s:s + k, s:s + k] = True
    assert grad[inside].abs().sum() > 0 and (grad[~inside] == 0).all()
    assert (block.expand_conv.weight.grad[mid:] == 0).all() and block.expand_conv.weight.grad[:mid].abs().sum() > 0
    assert (block.project.weight.grad[:, mid:] == 0).all()
    assert all(p.grad is None or (p.grad == 0).all() for p in model.stages[0][mbv3_space.max_depth - 1].parameters())


@torch.no_grad()
def test_editing_shared_weights_changes_exactly_the_subnets_that_use_them(mbv3_space):
    model = build_supernet("mbv3", mbv3_space).train()  # batch statistics: O(1) activations
    x = torch.randn(4, 1, 8, 8)
    big, small = mbv3_space.largest(), mbv3_space.smallest()
    base_big, base_small = model(x, big), model(x, small)
    weight = model.stages[0][0].depthwise.weight  # one tensor serves every arch's first block
    weight[0, 0, 0, 0] += 5.0  # outer ring of the 7x7 kernel: only 7x7 archs use it
    assert torch.equal(model(x, small), base_small) and not torch.equal(model(x, big), base_big)
    weight[0, 0, 3, 3] += 5.0  # the centre tap: every kernel size uses it
    assert not torch.equal(model(x, small), base_small)


@torch.no_grad()
def test_functionally_equal_archs_give_equal_outputs(mbv3_space):
    model = build_supernet("mbv3", mbv3_space).train()
    x = torch.randn(4, 1, 8, 8)
    rng = np.random.default_rng(2)
    for arch in [mbv3_space.sample(rng) for _ in range(10)]:
        other = mbv3_space.sample(rng)._replace(depths=arch.depths)
        variant = mbv3_space.normalize(arch)
        # same active settings, different inactive ones and equivalent kernels
        kernels = [variant.kernels[i] if mbv3_space.is_active(arch, i) else other.kernels[i]
                   for i in range(mbv3_space.num_slots)]
        variant = variant._replace(kernels=tuple(kernels))
        assert mbv3_space.canonical(variant) == mbv3_space.canonical(arch)
        assert torch.equal(model(x, variant), model(x, arch))
        assert not torch.equal(model(x, mbv3_space.mutate(arch, rng)), model(x, arch))


@torch.no_grad()
def test_effective_kernel_only_drops_taps_that_multiply_padding(mbv3_space):
    """The space's kernel classes, checked against real convolutions at every slot's geometry."""
    from raynas.supernet.ops import DynamicDepthwiseConv

    gen = torch.Generator().manual_seed(0)
    for slot in range(mbv3_space.num_slots):
        _, _, stride, res = mbv3_space.slot_geometry(slot)
        conv = DynamicDepthwiseConv(4, mbv3_space.kernel_choices[-1], stride)
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen))
        x = torch.randn(2, 4, res, res, generator=gen)
        for k in mbv3_space.kernel_choices:
            eff = mbv3_space.effective_kernel(slot, k)
            assert torch.allclose(conv(x, k), conv(x, eff), atol=1e-5), (slot, k, eff)
            if eff != k:
                assert eff < k
