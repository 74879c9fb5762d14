"""Evaluators. Importing this package registers the built-in ones."""
from raynas.evaluators import (  # noqa: F401  (registers "cost", "tabular")
    cost,
    supernet,  # noqa: F401  (registers "supernet"; torch imported lazily)
    tabular,
)
from raynas.evaluators.base import EVALUATORS, Evaluator, Result

__all__ = ["EVALUATORS", "Evaluator", "Result"]
