"""BN recalibration: exact cumulative statistics of the given batches, per arch, deterministic."""
from __future__ import annotations

import pytest
import torch

from raynas.supernet import build_supernet
from raynas.supernet.bn import batchnorms, recalibrate_bn
from raynas.supernet.ops import DynamicBatchNorm2d


def stats(model):
    return [(bn.running_mean.clone(), bn.running_var.clone()) for bn in batchnorms(model)]


@pytest.fixture
def batches():
    gen = torch.Generator().manual_seed(0)
    return [(torch.randn(16, 1, 8, 8, generator=gen), torch.zeros(16, dtype=torch.long)) for _ in range(3)]


def test_recalibration_sets_the_exact_mean_of_batch_statistics(mbv3_space, batches):
    model = build_supernet("mbv3", mbv3_space)
    used = recalibrate_bn(model, mbv3_space.smallest(), batches, num_batches=2)
    assert used == 2 and not model.training
    stem_conv, stem_bn = model.stem[0], model.stem[1]
    with torch.no_grad():
        means = [stem_conv(x).mean(dim=(0, 2, 3)) for x, _ in batches[:2]]
    assert torch.allclose(stem_bn.running_mean, torch.stack(means).mean(0), atol=1e-5)
    assert all(bn.momentum == 0.1 for bn in batchnorms(model))  # momenta restored


def test_recalibration_is_deterministic_and_arch_specific(mbv3_space, batches):
    model = build_supernet("mbv3", mbv3_space)
    before = stats(model)
    recalibrate_bn(model, mbv3_space.largest(), batches)
    big = stats(model)
    recalibrate_bn(model, mbv3_space.smallest(), batches)
    small = stats(model)
    recalibrate_bn(model, mbv3_space.largest(), iter(batches))
    again = stats(model)
    assert any(not torch.equal(a[0], b[0]) for a, b in zip(before, big))
    assert any(not torch.equal(a[0], b[0]) for a, b in zip(big, small))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(big, again))


def test_only_the_active_channel_slice_gets_statistics(mbv3_space, batches):
    model = build_supernet("mbv3", mbv3_space)
    small = mbv3_space.smallest()
    recalibrate_bn(model, small, batches)
    bn = model.stages[0][0].expand_bn
    assert isinstance(bn, DynamicBatchNorm2d)
    mid = model.stages[0][0].expand_conv.weight.shape[1] * small.expands[0]
    assert (bn.running_mean[mid:] == 0).all() and (bn.running_var[mid:] == 1).all()
    assert (bn.running_mean[:mid] != 0).all()


def test_recalibration_needs_a_batch(mbv3_space):
    with pytest.raises(ValueError, match="at least one"):
        recalibrate_bn(build_supernet("mbv3", mbv3_space), mbv3_space.smallest(), [])
