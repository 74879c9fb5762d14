"""Recipes: typed schema, YAML loader with ``--set`` overrides, resolved dump."""
from raynas.recipes.loader import apply_overrides, dump_recipe, load_recipe, read_yaml
from raynas.recipes.schema import Recipe, parse_recipe

__all__ = ["Recipe", "apply_overrides", "dump_recipe", "load_recipe", "parse_recipe", "read_yaml"]
