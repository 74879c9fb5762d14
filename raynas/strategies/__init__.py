"""Search strategies (Ray Tune Searchers). Importing this package registers the built-in ones."""
from raynas.strategies.base import STRATEGIES, Observation, Proposal, Strategy, build_strategy
from raynas.strategies import map_elites, nsga2, predictor, random_search, rea  # noqa: F401  (registers them)

__all__ = ["STRATEGIES", "Observation", "Proposal", "Strategy", "build_strategy"]
