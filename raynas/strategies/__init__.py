"""Search strategies (Ray Tune Searchers). Importing this package registers the built-in ones."""
from raynas.strategies.base import STRATEGIES, Observation, Proposal, Strategy, build_strategy
from raynas.strategies import random_search, rea  # noqa: F401  (register "random", "rea")

__all__ = ["STRATEGIES", "Observation", "Proposal", "Strategy", "build_strategy"]
