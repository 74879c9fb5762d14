"""Load a YAML recipe, apply ``--set a.b=c`` overrides, validate into a ``Recipe``, dump it resolved.

Plugins come first: the modules of the recipe's ``plugins:`` list are imported (``plugins[i]`` names one
that cannot be), then the entry points the ``space``/``evaluator``/``strategy`` names ask for are loaded
(``<section>.name`` names a broken one), and only then is the recipe validated against the registries.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Iterable

import yaml

from raynas.errors import RaynasError, RecipeError
from raynas.recipes.schema import EvaluatorSpec, Recipe, SpaceSpec, StrategySpec, parse_recipe
from raynas.registry import PluginError, import_plugin

PLUGINS = "plugins"  # the recipe key listing plugin modules
COMPONENT_SPECS = {"space": SpaceSpec, "evaluator": EvaluatorSpec, "strategy": StrategySpec}
MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def read_yaml(path: str | Path) -> Any:
    p = Path(path)
    if not p.is_file():
        raise RaynasError(f"recipe {p}: no such file")
    try:
        return yaml.safe_load(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise RaynasError(f"recipe {p}: not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset "
                          f"{err.start})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise RaynasError(f"recipe {p}:{where}: invalid YAML: {problem}") from None


def apply_overrides(data: Any, overrides: Iterable[str]) -> Any:
    """Return a copy of ``data`` with each ``dotted.path=value`` set (value parsed as YAML)."""
    data = copy.deepcopy(data) if data is not None else {}
    overrides = list(overrides)
    if overrides and not isinstance(data, dict):
        raise RecipeError("recipe", f"must be a mapping of sections, got {type(data).__name__}")
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise RaynasError(f"--set {item!r}: expected dotted.path=value")
        parts = key.strip().split(".")
        node = data
        for i, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise RecipeError(".".join(parts[: i + 1]), f"is not a mapping, cannot set {key}")
        try:
            node[parts[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError:
            node[parts[-1]] = raw
    return data


def load_recipe(path: str | Path, overrides: Iterable[str] = ()) -> Recipe:
    return parse_with_plugins(apply_overrides(read_yaml(path), overrides))


def parse_with_plugins(data: Any) -> Recipe:
    """``parse_recipe`` after importing the recipe's plugins and loading the components it names."""
    import_plugins(data)
    load_components(data)
    return parse_recipe(data)


def import_plugins(data: Any) -> None:
    """Import each module of ``data["plugins"]``, in order; ``RecipeError`` naming ``plugins[i]``."""
    modules = data.get(PLUGINS) if isinstance(data, dict) else None
    if modules is None:
        return
    if not isinstance(modules, list):
        raise RecipeError(PLUGINS, f"must be a list of module names, got {modules!r}")
    for i, module in enumerate(modules):
        path = f"{PLUGINS}[{i}]"
        if not isinstance(module, str) or not MODULE_NAME.fullmatch(module):
            raise RecipeError(path, f"must be a module name such as my_pkg.my_space, got {module!r}")
        try:
            import_plugin(module)
        except PluginError as err:
            raise RecipeError(path, str(err)) from None


def load_components(data: Any) -> None:
    """Load the entry point behind each component name of ``data`` now, so that a broken plugin is an
    error naming its field (``space.name``…); unknown names are left to ``parse_recipe``."""
    if not isinstance(data, dict):
        return
    for section, spec in COMPONENT_SPECS.items():
        value = data.get(section)
        name = value.get("name") if isinstance(value, dict) else value
        if not isinstance(name, str) or name not in spec.registry.names():
            continue
        try:
            spec.registry.get(name)
        except PluginError as err:
            raise RecipeError(f"{section}.name", str(err)) from None


def dump_recipe(recipe: Recipe) -> str:
    return yaml.safe_dump(recipe.to_dict(), sort_keys=False)
