"""Every registered strategy passes the strategy contract suite on the real NB201 table."""
from __future__ import annotations

import pytest

from raynas.evaluators.tabular import TabularNB201
from raynas.space.nb201 import NB201Space
from raynas.strategies import STRATEGIES, build_strategy
from raynas.testing.strategy_contract import StrategyContract


@pytest.fixture(scope="module")
def nb201_evaluator(nb201_path):
    return TabularNB201(NB201Space(), TabularNB201.Config(data_path=nb201_path))


@pytest.mark.parametrize("name", STRATEGIES.names())
class TestStrategyContract(StrategyContract):
    @pytest.fixture
    def strategy_factory(self, name):
        return lambda seed: build_strategy(name, NB201Space(), seed=seed)

    @pytest.fixture
    def evaluator(self, nb201_evaluator):
        return nb201_evaluator
