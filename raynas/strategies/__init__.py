"""Search strategies (Ray Tune Searchers). Importing this package registers the built-in ones."""
from raynas.strategies import bananas, local_search, map_elites, nsga2, predictor, proxy_prefilter, random_search, rea  # noqa: F401  (registers them)
from raynas.strategies.base import STRATEGIES, Observation, Proposal, Strategy, build_strategy

__all__ = ["STRATEGIES", "Observation", "Proposal", "Strategy", "build_strategy"]
