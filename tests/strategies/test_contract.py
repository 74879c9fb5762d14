"""Every registered strategy passes the strategy contract suite on the real NB201 table."""
from __future__ import annotations

import pytest

from raynas.evaluators.cost import nb201_flops_params
from raynas.evaluators.tabular import TabularNB201
from raynas.space.nb201 import NB201Space
from raynas.strategies import STRATEGIES, build_strategy
from raynas.testing.strategy_contract import StrategyContract, with_overrides

# Options that keep the suite cheap without changing what it checks (bananas: small ensembles, rare refits).
CHEAP = {"bananas": {"n_estimators": 5, "ensemble_size": 2, "refit_every": 20}}
# Configurations whose code paths differ enough to pass the contract on their own: name -> (strategy, options)
VARIANTS = {**{name: (name, {}) for name in STRATEGIES.names()},
            "bananas-ridge-all": ("bananas", {"predictor": "ridge", "candidate_mode": "all"})}


@pytest.fixture(scope="module")
def nb201_evaluator(nb201_path):
    return TabularNB201(NB201Space(), TabularNB201.Config(data_path=nb201_path, latency_device="pixel3"))


@pytest.mark.parametrize("variant", VARIANTS)
class TestStrategyContract(StrategyContract):
    @pytest.fixture
    def strategy_factory(self, variant):
        name, options = VARIANTS[variant]

        def factory(seed, **overrides):
            cls = STRATEGIES.get(name)
            config = with_overrides(cls.Config(), **{**CHEAP.get(name, {}), **options, **overrides})
            # a cheap stand-in proxy for strategies that need one: the params of the arch
            scorer = (lambda arch: nb201_flops_params(arch)[1]) if cls.scorer_proxy(config) else None
            return build_strategy(name, NB201Space(), config, seed=seed, scorer=scorer)

        return factory

    @pytest.fixture
    def evaluator(self, nb201_evaluator):
        return nb201_evaluator
