"""Evaluators. Importing this package registers the built-in ones (none imports torch until used)."""
from raynas.evaluators import cost, supernet, tabular, zero_cost  # noqa: F401  (register them)
from raynas.evaluators.base import EVALUATORS, Evaluator, Result

__all__ = ["EVALUATORS", "Evaluator", "Result"]
