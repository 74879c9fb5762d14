"""Evaluators. Importing this package registers the built-in ones (none imports torch until used)."""
from raynas.evaluators import cost, scratch, supernet, tabular, zero_cost  # noqa: F401  (register them)
from raynas.evaluators.base import EVALUATORS, EpochEvaluator, EpochRun, Evaluator, Result

__all__ = ["EVALUATORS", "EpochEvaluator", "EpochRun", "Evaluator", "Result"]
