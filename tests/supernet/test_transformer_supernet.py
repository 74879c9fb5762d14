"""Elastic transformer supernet: shapes, exact weight entanglement, closed-form costs checked against the
built modules and torch's FLOP counter, extraction, harmless BN recalibration, the sampling rules.

FLOP convention: ``space.flops`` counts multiply-accumulates; ``torch.utils.flop_counter.FlopCounterMode``
counts 2 FLOPs per MAC of the matmuls and convolutions it sees (``convolution``, ``addmm``/``mm``,
``bmm``) and nothing else (biases, LayerNorm, softmax, GELU, additions), so ``total == 2 * flops``.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from raynas.space.nb201 import NB201Space
from raynas.space.transformer import TransformerSpace
from raynas.supernet import SAMPLERS, build_sampler, build_supernet
from raynas.supernet.base import SubnetModule
from raynas.supernet.bn import batchnorms, recalibrate_bn
from raynas.supernet.sampling import PADA
from raynas.supernet.transformer import TransformerSupernet

N_COST_ARCHS = 60
COUNTED_OPS = {"convolution", "addmm", "mm", "bmm"}


@pytest.fixture(scope="module")
def space():
    return TransformerSpace()


@pytest.fixture(scope="module")
def model(space):
    return build_supernet("transformer", space).eval()


def some_archs(space, n, seed=0):
    rng = np.random.default_rng(seed)
    return [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(n)]


def flop_count(module, *args):
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(*args)
    ops = {str(op).split(".")[-1] for op in counter.get_flop_counts()["Global"]}
    return counter.get_total_flops(), ops


@torch.no_grad()
def test_forward_shape_for_random_largest_and_smallest_archs(model, space):
    x = torch.randn(3, 1, 8, 8)
    for arch in some_archs(space, 30):
        out = model(x, arch)
        assert out.shape == (3, 10) and torch.isfinite(out).all()


@torch.no_grad()
def test_forward_on_cifar_sized_inputs():
    space = TransformerSpace(TransformerSpace.Config(resolution=32, in_channels=3, patch_size=4))
    model = build_supernet("transformer", space).eval()
    assert space.num_tokens == 65
    for arch in some_archs(space, 2):
        assert model(torch.randn(2, 3, 32, 32), arch).shape == (2, 10)


def test_rejects_foreign_arch_and_space(model):
    with pytest.raises(ValueError, match="not an arch of space transformer"):
        model(torch.randn(1, 1, 8, 8), (3, 3, 3, 3, 3, 3))
    with pytest.raises(ValueError, match="serves space 'transformer'"):
        TransformerSupernet(NB201Space())


def test_construction_is_seeded_and_leaves_global_rng_alone(space):
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    a, b = build_supernet("transformer", space, {"seed": 3}), build_supernet("transformer", space, {"seed": 3})
    assert torch.rand(1) == before
    c = build_supernet("transformer", space, {"seed": 4})
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.layers[0].qkv.weight, c.layers[0].qkv.weight)
    assert torch.equal(a.layers[0].norm1.weight, torch.ones(64)) and not a.layers[0].fc1.bias.any()


def test_supernet_holds_the_largest_subnet(model, space):
    assert sum(p.numel() for p in model.parameters()) == space.params(space.largest())


def test_closed_form_params_equal_the_extracted_module(model, space):
    for arch in some_archs(space, N_COST_ARCHS, seed=1):
        sub = model.extract(arch)
        assert sum(p.numel() for p in sub.parameters()) == space.params(arch), space.to_str(arch)


def test_closed_form_flops_equal_torchs_flop_counter(model, space):
    x = torch.randn(1, 1, 8, 8)
    for arch in some_archs(space, N_COST_ARCHS, seed=2):
        for module, args in ((model, (x, arch)), (model.extract(arch), (x,))):
            total, ops = flop_count(module, *args)
            assert total == 2 * space.flops(arch), space.to_str(arch)
            assert ops <= COUNTED_OPS


def test_flops_scale_with_the_batch(model, space):
    arch = space.sample(np.random.default_rng(5))
    assert flop_count(model, torch.randn(4, 1, 8, 8), arch)[0] == 4 * 2 * space.flops(arch)


def test_smallest_subnet_trains_only_the_leading_slices(space):
    model = build_supernet("transformer", space)
    small = space.smallest()
    out = model(torch.randn(8, 1, 8, 8), small)
    (out * torch.randn_like(out)).sum().backward()
    e, q, h = small.embed_dim, space.qkv_dim(small.heads[0]), small.mlp_ratios[0] * small.embed_dim
    layer = model.layers[0]
    for grad, used in ((layer.qkv.weight.grad, (slice(None), slice(0, q), slice(0, e))),
                       (layer.proj.weight.grad, (slice(0, e), slice(0, q))),
                       (layer.fc1.weight.grad, (slice(0, h), slice(0, e))),
                       (layer.fc2.weight.grad, (slice(0, e), slice(0, h))),
                       (layer.norm1.weight.grad, (slice(0, e),)),
                       (model.patch_embed.weight.grad, (slice(0, e),)),
                       (model.pos_embed.grad, (slice(None), slice(None), slice(0, e))),
                       (model.head.weight.grad, (slice(None), slice(0, e)))):
        inside = torch.zeros_like(grad, dtype=torch.bool)
        inside[used] = True
        assert grad[inside].abs().sum() > 0 and (grad[~inside] == 0).all()
    assert all(p.grad is None for p in model.layers[small.depth].parameters())


@torch.no_grad()
def test_editing_shared_weights_changes_exactly_the_subnets_that_use_them(space):
    model = build_supernet("transformer", space).eval()
    x = torch.randn(4, 1, 8, 8)
    big, small = space.largest(), space.smallest()
    base_big, base_small = model(x, big), model(x, small)
    fc1 = model.layers[0].fc1.weight  # one tensor serves every arch's first MLP
    fc1[-1, -1] += 5.0  # the last hidden unit of the last embed feature: only the widest archs use it
    assert torch.equal(model(x, small), base_small) and not torch.equal(model(x, big), base_big)
    fc1[0, 0] += 5.0  # the first hidden unit of the first feature: every arch uses it
    assert not torch.equal(model(x, small), base_small)


@torch.no_grad()
def test_functionally_equal_archs_give_equal_outputs(model, space):
    x = torch.randn(4, 1, 8, 8)
    rng = np.random.default_rng(2)
    for arch in [space.sample(rng) for _ in range(10)]:
        other = space.sample(rng)
        variant = arch._replace(heads=arch.heads[:arch.depth] + other.heads[arch.depth:],
                                mlp_ratios=arch.mlp_ratios[:arch.depth] + other.mlp_ratios[arch.depth:])
        assert space.canonical(variant) == space.canonical(arch)
        assert torch.equal(model(x, variant), model(x, arch))
        assert not torch.equal(model(x, space.mutate(arch, rng)), model(x, arch))


def test_extract_is_a_static_copy_with_the_supernets_outputs(space):
    model = build_supernet("transformer", space, {"dropout": 0.2})
    x = torch.randn(16, 1, 8, 8)
    for arch in some_archs(space, 8, seed=3):
        sub = model.extract(arch)
        assert not isinstance(sub, SubnetModule) and not sub.training
        with torch.no_grad():
            torch.testing.assert_close(sub(x), model.eval()(x, arch), rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # a copy: changing the supernet afterwards leaves it alone
        before = sub(x)
        for p in model.parameters():
            p.add_(1.0)
        torch.testing.assert_close(sub(x), before)


def test_bn_recalibration_is_a_no_op(space):
    model = build_supernet("transformer", space, {"dropout": 0.1}).eval()
    x = torch.randn(8, 1, 8, 8)
    arch = space.sample(np.random.default_rng(4))
    with torch.no_grad():
        before = model(x, arch)
    assert batchnorms(model) == []
    assert recalibrate_bn(model, arch, [(torch.randn(16, 1, 8, 8), None)] * 3, num_batches=2) == 0  # no pass run
    assert not model.training
    with torch.no_grad():
        assert torch.equal(model(x, arch), before)


@pytest.mark.parametrize("name", sorted(set(SAMPLERS.names()) - {PADA}))
def test_sampling_rules_draw_archs_of_the_space(name, space):
    def steps(seed):
        rule = build_sampler(name, space, {"seed": seed})
        return [rule.next_step() for _ in range(10)]

    first = steps(1)
    assert first == steps(1) != steps(2)
    assert all(space.contains(a) for step in first for a in step.archs)


def test_pada_is_refused_with_a_clear_error(space, model):
    with pytest.raises(ValueError, match="edge-choice space"):
        build_sampler(PADA, space).bind(model)
