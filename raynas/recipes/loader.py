"""Load a YAML recipe, apply ``--set a.b=c`` overrides, validate into a ``Recipe``, dump it resolved."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable

import yaml

from raynas.errors import RaynasError, RecipeError
from raynas.recipes.schema import Recipe, parse_recipe


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
    return parse_recipe(apply_overrides(read_yaml(path), overrides))


def dump_recipe(recipe: Recipe) -> str:
    return yaml.safe_dump(recipe.to_dict(), sort_keys=False)
