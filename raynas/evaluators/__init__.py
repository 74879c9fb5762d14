"""Evaluators. Importing this package registers the built-in ones."""
from raynas.evaluators.base import EVALUATORS, TEST_ACC, VALID_ACC, Evaluator, Result
from raynas.evaluators import cost, tabular  # noqa: F401  (registers "cost", "tabular")
from raynas.evaluators import supernet  # noqa: F401  (registers "supernet"; torch imported lazily)

__all__ = ["EVALUATORS", "TEST_ACC", "VALID_ACC", "Evaluator", "Result"]
