"""An example raynas plugin: the ``chain`` space, the ``hill_climb`` strategy, the ``toy_accuracy`` evaluator.

Importing this package registers all three (a recipe's ``plugins: [raynas_custom_space]``); installed,
raynas finds them through the entry points of ``pyproject.toml`` instead, importing this package only when
a recipe asks for one of them.
"""
from raynas_custom_space import evaluator, space, strategy  # noqa: F401  (register the components)
from raynas_custom_space.evaluator import ToyAccuracy
from raynas_custom_space.space import ChainSpace
from raynas_custom_space.strategy import HillClimb

__all__ = ["ChainSpace", "HillClimb", "ToyAccuracy"]
