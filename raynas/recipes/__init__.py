"""Recipes: typed schema, YAML loader with overrides, resolved dump.

Names are imported lazily: components (spaces, strategies…) import ``raynas.recipes.typed`` for their
``Config`` dataclasses, while the schema imports the component registries.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "apply_overrides": "raynas.recipes.loader", "dump_recipe": "raynas.recipes.loader",
    "load_recipe": "raynas.recipes.loader", "read_yaml": "raynas.recipes.loader",
    "Recipe": "raynas.recipes.schema", "parse_recipe": "raynas.recipes.schema",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'raynas.recipes' has no attribute {name!r}")
