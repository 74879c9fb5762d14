"""Sampling rules: seeded determinism, resumable RNG state, sandwich extremes, FLOPs-bin coverage."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from raynas.space.nb201 import NB201Space
from raynas.supernet import SAMPLERS, build_sampler, kd_loss
from raynas.supernet.sampling import COMPLEXITY, SANDWICH, UNIFORM, ComplexityAwareRule

N_STEPS = 30


@pytest.mark.parametrize("name", SAMPLERS.names())
def test_rule_is_deterministic_for_a_seed_and_differs_across_seeds(name, mbv3_space):
    def steps(seed):
        rule = build_sampler(name, mbv3_space, {"seed": seed})
        return [rule.next_step() for _ in range(N_STEPS)]

    first = steps(3)
    assert first == steps(3) != steps(4)
    assert all(mbv3_space.contains(a) for step in first for a in step.archs)


@pytest.mark.parametrize("name", SAMPLERS.names())
def test_state_round_trip_continues_the_sequence(name, mbv3_space):
    rule = build_sampler(name, mbv3_space, {"seed": 1})
    for _ in range(5):
        rule.next_step()
    state = rule.state()
    expected = [rule.next_step() for _ in range(5)]
    clone = build_sampler(name, mbv3_space, {"seed": 1})  # a restarted trial rebuilds from its config
    clone.load_state(state)
    assert [clone.next_step() for _ in range(5)] == expected


def test_sandwich_is_largest_smallest_then_random(mbv3_space):
    rule = build_sampler(SANDWICH, mbv3_space, {"num_random": 2})
    step = rule.next_step()
    assert step.distill and len(step.archs) == 4
    assert step.archs[0] == mbv3_space.largest() and step.archs[1] == mbv3_space.smallest()
    assert build_sampler(SANDWICH, mbv3_space, {"inplace_distill": False}).next_step().distill is False


def test_uniform_is_single_path_without_distillation(mbv3_space):
    step = build_sampler(UNIFORM, mbv3_space).next_step()
    assert len(step.archs) == 1 and not step.distill


def test_rules_needing_space_extras_fail_fast_on_nb201():
    for name, what in ((SANDWICH, "largest"), (COMPLEXITY, "flops")):
        with pytest.raises(ValueError, match=what):
            build_sampler(name, NB201Space())


def test_complexity_aware_sampling_covers_flops_bins_uniformly(mbv3_space):
    rule = build_sampler(COMPLEXITY, mbv3_space, {"num_bins": 6, "pool_size": 600, "seed": 0})
    assert isinstance(rule, ComplexityAwareRule)
    n = 600
    bins = lambda archs: np.bincount([int(rule.bin_of(mbv3_space.flops(a))) for a in archs], minlength=6)  # noqa
    aware = bins([rule.next_step().archs[0] for _ in range(n)])
    rng = np.random.default_rng(0)
    uniform = bins([mbv3_space.sample(rng) for _ in range(n)])
    expected = n / len(rule.bins)
    assert len(rule.bins) >= 5
    assert all(0.6 * expected <= aware[b] <= 1.4 * expected for b in rule.bins), aware
    assert uniform.min() < 0.4 * expected  # plain uniform sampling starves the extreme bins


def test_kd_loss_is_zero_for_identical_logits_and_detaches_the_teacher():
    teacher = torch.randn(8, 10, requires_grad=True)
    student = torch.randn(8, 10, requires_grad=True)
    assert kd_loss(teacher.detach().clone(), teacher).item() == pytest.approx(0.0, abs=1e-6)
    loss = kd_loss(student, teacher, temperature=2.0)
    loss.backward()
    assert loss.item() > 0 and student.grad is not None and teacher.grad is None
