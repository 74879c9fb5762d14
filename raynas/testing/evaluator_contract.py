"""The evaluator contract suite: every registered ``Evaluator`` passes it (like Optuna's
``StorageTestCase``, reused by each implementation's tests).

Subclasses provide an ``evaluator_factory`` fixture: ``(seed) -> Evaluator``, a fresh evaluator whose
random choices (initialisation, training) follow ``seed``, built the same way for equal seeds (and
closed by the fixture at teardown). The suite checks what ``raynas.evaluators.base`` promises:
  * an arch outside the space is a ``ValueError`` naming it;
  * one ``Result`` per arch, in order (a repeated arch gets the same scores);
  * hidden (report-only) metrics never appear among the visible ones, and the objective metric is
    visible in every result;
  * every result's visible metrics are exactly those ``metrics()`` declares;
  * pickling has no side effects (no Ray actor appears, the evaluator's state is unchanged) and the
    copy scores as the original;
  * equal seeds give equal scores.
"""
from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest

from raynas.metrics import COST_S, MAX, MIN, TEST_ACC
from raynas.space.base import distinct_samples

NUM_ARCHS = 3
NOT_AN_ARCH = "not-an-arch"


def sample_archs(space, n: int = NUM_ARCHS, seed: int = 0) -> list[Any]:
    """``n`` seeded archs of ``space`` with distinct functions (canonical keys)."""
    return distinct_samples(space, n, np.random.default_rng(seed))


def scores(results) -> list[tuple[dict, dict]]:
    """What a result says about its arch (metrics and hidden metrics), without clock costs."""
    return [(dict(r.metrics), dict(r.hidden)) for r in results]


def named_actors() -> set[str]:
    """Names of the Ray actors alive now (empty without Ray)."""
    import ray

    if not ray.is_initialized():
        return set()
    return {a["name"] for a in ray.util.list_named_actors(all_namespaces=True)}


class EvaluatorContract:
    @pytest.fixture
    def evaluator_factory(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def test_an_arch_outside_the_space_is_a_value_error_naming_it(self, evaluator_factory):
        evaluator = evaluator_factory(0)
        with pytest.raises(ValueError, match=NOT_AN_ARCH):
            evaluator.evaluate([*sample_archs(evaluator.space, 1), NOT_AN_ARCH])

    def test_one_result_per_arch_in_order(self, evaluator_factory):
        evaluator = evaluator_factory(0)
        a, b, c = sample_archs(evaluator.space)
        forward = evaluator.evaluate([a, b, c, a])
        backward = evaluator.evaluate([c, b, a])
        assert len(forward) == 4 and len(backward) == 3
        assert scores(forward[:3]) == scores(backward[::-1]) and scores(forward[3:]) == scores(forward[:1])
        assert all(r.cost_s >= 0 and r.evaluator == evaluator.id for r in forward)

    def test_hidden_metrics_are_never_visible(self, evaluator_factory):
        evaluator = evaluator_factory(0)
        metric, mode = evaluator.objective()
        assert mode in (MAX, MIN)
        for result in evaluator.evaluate(sample_archs(evaluator.space)):
            assert not set(result.metrics) & set(result.hidden)
            assert TEST_ACC not in result.metrics and COST_S not in result.metrics
            assert metric in result.metrics

    def test_results_hold_exactly_the_declared_metrics(self, evaluator_factory):
        evaluator = evaluator_factory(0)
        declared = evaluator.metrics()
        assert len(set(declared)) == len(declared)
        for result in evaluator.evaluate(sample_archs(evaluator.space)):
            assert set(result.metrics) == set(declared)

    def test_pickling_has_no_side_effects(self, evaluator_factory):
        evaluator = evaluator_factory(0)
        state, actors = dict(evaluator.__dict__), named_actors()
        clone = pickle.loads(pickle.dumps(evaluator))
        assert named_actors() == actors
        assert evaluator.__dict__.keys() == state.keys()
        assert all(evaluator.__dict__[k] is v for k, v in state.items())
        archs = sample_archs(evaluator.space, 2)
        assert scores(evaluator.evaluate(archs)) == scores(clone.evaluate(archs))

    def test_deterministic_for_a_seed(self, evaluator_factory):
        archs = sample_archs(evaluator_factory(0).space, seed=1)
        assert scores(evaluator_factory(5).evaluate(archs)) == scores(evaluator_factory(5).evaluate(archs))
