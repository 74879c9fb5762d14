"""The example plugin passes raynas's contract suites (``raynas.testing``): space, strategy, evaluator.

Run with the package installed, or from a checkout: ``PYTHONPATH=examples/custom-space/src pytest
examples/custom-space/tests``.
"""
from __future__ import annotations

import pytest
from raynas_custom_space import ChainSpace, HillClimb, ToyAccuracy

from raynas.evaluators.cost import CostEvaluator
from raynas.testing.evaluator_contract import EvaluatorContract
from raynas.testing.space_contract import SpaceContract
from raynas.testing.strategy_contract import StrategyContract, with_overrides


class TestChainSpaceContract(SpaceContract):
    @pytest.fixture
    def space(self):
        return ChainSpace()


class TestHillClimbContract(StrategyContract):
    @pytest.fixture
    def strategy_factory(self):
        def factory(seed, **overrides):
            return HillClimb(ChainSpace(), with_overrides(HillClimb.Config(), **overrides), seed=seed)

        return factory

    @pytest.fixture
    def evaluator(self):
        return ToyAccuracy(ChainSpace())


class TestToyAccuracyContract(EvaluatorContract):
    @pytest.fixture
    def evaluator_factory(self):
        return lambda seed: ToyAccuracy(ChainSpace(), ToyAccuracy.Config(seed=seed))


class TestCostEvaluatorOnChain(EvaluatorContract):
    """raynas's own ``cost`` evaluator works on the plugin space (it has ``flops``/``params``)."""

    @pytest.fixture
    def evaluator_factory(self):
        return lambda seed: CostEvaluator(ChainSpace())
