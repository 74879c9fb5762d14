"""The strategy contract suite: every ``Strategy`` (a Ray Tune ``Searcher``) passes it.

Subclasses provide ``strategy_factory`` (``(seed, **config_overrides) -> Strategy``) and ``evaluator``
fixtures. The suite
drives the Searcher API directly (``suggest``/``on_trial_complete``), as Tune and the simulator do.
"""
from __future__ import annotations

import dataclasses

import pytest

from raynas.evaluators.base import Evaluator
from raynas.runtime.backends import run_simulated
from raynas.runtime.driver import SearchDriver
from raynas.strategies.base import DEDUP_FUNCTION

STEPS = 60


def drive(strategy, evaluator: Evaluator, steps: int, start: int = 0, concurrent: int = 1) -> list[dict]:
    """Run ``steps`` proposals, ``concurrent`` in flight; return the configs in proposal order."""
    configs, inflight = [], []
    for i in range(start, start + steps):
        trial_id = f"t{i}"
        cfg = strategy.suggest(trial_id)
        assert cfg is not None
        configs.append(cfg)
        inflight.append((trial_id, cfg))
        if len(inflight) >= concurrent:
            tid, c = inflight.pop(0)
            res = evaluator.evaluate([evaluator.space.from_str(c["arch"])])[0]
            strategy.on_trial_complete(tid, dict(res.metrics))
    return configs


class StrategyContract:
    @pytest.fixture
    def strategy_factory(self):  # pragma: no cover - overridden
        raise NotImplementedError

    @pytest.fixture
    def evaluator(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def test_deterministic_for_a_seed(self, strategy_factory, evaluator):
        a = drive(strategy_factory(3), evaluator, STEPS)
        b = drive(strategy_factory(3), evaluator, STEPS)
        assert a == b

    def test_different_seeds_differ(self, strategy_factory, evaluator):
        assert drive(strategy_factory(1), evaluator, STEPS) != drive(strategy_factory(2), evaluator, STEPS)

    def test_proposals_are_in_the_space(self, strategy_factory, evaluator):
        space = evaluator.space
        for cfg in drive(strategy_factory(0), evaluator, STEPS, concurrent=3):
            assert space.contains(space.from_str(cfg["arch"]))
            if cfg["parent"] is not None:
                assert space.contains(space.from_str(cfg["parent"]))

    @pytest.mark.parametrize("concurrent", [1, 3])
    def test_save_restore_mid_search_continues_identically(self, strategy_factory, evaluator, tmp_path,
                                                           concurrent):
        original = strategy_factory(11)
        drive(original, evaluator, STEPS // 2, concurrent=concurrent)
        # save with trials still pending
        pending = [(f"p{i}", original.suggest(f"p{i}")) for i in range(2)]
        path = tmp_path / "strategy.pkl"
        original.save(str(path))
        restored = strategy_factory(999)  # a different seed: restore must bring the RNG back
        restored.restore(str(path))
        for strategy in (original, restored):
            for tid, cfg in pending:
                res = evaluator.evaluate([evaluator.space.from_str(cfg["arch"])])[0]
                strategy.on_trial_complete(tid, dict(res.metrics))
        cont_a = drive(original, evaluator, STEPS, start=1000, concurrent=concurrent)
        cont_b = drive(restored, evaluator, STEPS, start=1000, concurrent=concurrent)
        assert cont_a == cont_b

    def test_failed_trials_are_tolerated(self, strategy_factory, evaluator):
        strategy = strategy_factory(0)
        for i in range(20):
            strategy.suggest(f"f{i}")
            strategy.on_trial_complete(f"f{i}", error=True)
        assert strategy.suggest("after") is not None

    def test_never_reevaluates_an_equivalent_arch_with_dedup(self, strategy_factory, evaluator):
        probe = strategy_factory(0)
        if not hasattr(probe.config, "dedup"):
            pytest.skip(f"{type(probe).__name__} has no dedup option")
        strategy = strategy_factory(0, dedup=DEDUP_FUNCTION)
        configs = drive(strategy, evaluator, 120, concurrent=2)
        keys = [evaluator.space.canonical(evaluator.space.from_str(c["arch"])) for c in configs]
        assert len(set(keys)) == len(keys)

    @pytest.mark.parametrize("workers", [1, 3])
    def test_respects_the_budget(self, strategy_factory, evaluator, workers):
        for budget in ({"sim_budget_s": 2500.0, "max_candidates": None},
                       {"sim_budget_s": None, "max_candidates": 25}):
            driver = SearchDriver(strategy_factory(0), workers=workers, **budget)
            run_simulated(driver, evaluator)
            s = driver.summary
            assert s.num_candidates > 0
            if budget["max_candidates"]:
                assert s.num_candidates == budget["max_candidates"]
            if budget["sim_budget_s"] and evaluator.simulated:
                assert s.sim_time_s <= budget["sim_budget_s"]


def with_overrides(config, **overrides):
    """A copy of a strategy ``Config`` with some fields replaced (for ``strategy_factory``)."""
    return dataclasses.replace(config, **overrides)
