"""Build typed dataclasses from plain dicts (parsed YAML), naming the field path in every error.

The config vocabulary of every layer (each component declares a ``Config`` dataclass with it).
Supported field types: ``int``, ``float``, ``str``, ``bool``, ``X | None``, ``Literal[...]``, nested
dataclasses, ``dict[str, float|int|str]`` and ``list[...]`` of those. Range checks come from field metadata:
``gt``, ``ge``, ``lt``, ``le`` (numbers) — see ``bounded``. A dataclass may declare ``MOVED = {old: "new.path"}``
(a ``ClassVar``): a value given at an old field name is moved to its new path with a one-line
``RecipeDeprecationWarning``; giving both is an error.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import types
import typing
import warnings
from typing import Any, Literal, Mapping, Union

from raynas.errors import RecipeDeprecationWarning, RecipeError

MOVED_ATTR = "MOVED"


def bounded(default: Any, **limits: float) -> Any:
    """A dataclass field with numeric limits, e.g. ``bounded(10, gt=0)``."""
    return dataclasses.field(default=default, metadata=limits)


_LIMITS = {"gt": (lambda v, b: v > b, ">"), "ge": (lambda v, b: v >= b, ">="),
           "lt": (lambda v, b: v < b, "<"), "le": (lambda v, b: v <= b, "<=")}


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def convert(value: Any, tp: Any, path: str) -> Any:
    """Convert ``value`` to type ``tp`` or raise ``RecipeError(path, …)``."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return convert(value, non_none[0], path)
        for arg in non_none:
            try:
                return convert(value, arg, path)
            except RecipeError:
                continue
        raise RecipeError(path, f"must be one of {', '.join(map(_type_name, non_none))}, got {value!r}")
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise RecipeError(path, f"must be one of {', '.join(map(str, choices))}, got {value!r}")
        return value
    if origin is dict:
        key_t, val_t = typing.get_args(tp)
        if not isinstance(value, dict):
            raise RecipeError(path, f"must be a mapping, got {value!r}")
        return {convert(k, key_t, path): convert(v, val_t, _join(path, str(k))) for k, v in value.items()}
    if origin is list:
        (item_t,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise RecipeError(path, f"must be a list, got {value!r}")
        return [convert(v, item_t, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(tp, type) and hasattr(tp, "parse"):
        return tp.parse(value, path)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)
    return _scalar(value, tp, path)


def _scalar(value: Any, tp: Any, path: str) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise RecipeError(path, f"must be a finite number, got {value!r}")
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp is Any:
        return value
    raise RecipeError(path, f"must be {_type_name(tp)}, got {value!r}")


def from_dict(cls: type, data: Any, path: str = "") -> Any:
    """Instantiate dataclass ``cls`` from ``data``: unknown keys, wrong types and limits are errors."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError(path or "recipe", f"must be a mapping, got {data!r}")
    data = _move_renamed(data, getattr(cls, MOVED_ATTR, {}), path)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise RecipeError(_join(path, str(unknown[0])), f"unknown field; known: {', '.join(sorted(fields))}")
    kwargs = {}
    for name, f in fields.items():
        fpath = _join(path, name)
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise RecipeError(fpath, "is required")
            continue
        value = convert(data[name], hints[name], fpath)
        _check_limits(value, f.metadata, fpath)
        kwargs[name] = value
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate(path)
    return obj


def _move_renamed(data: dict, moved: Mapping[str, str], path: str) -> dict:
    """``data`` with each old field name of ``moved`` put at its new dotted path (a copy; warns)."""
    old_names = [old for old in moved if old in data]
    if not old_names:
        return data
    data = copy.deepcopy(data)
    for old in old_names:
        *parents, leaf = moved[old].split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise RecipeError(_join(path, part), f"must be a mapping, got {node!r}")
        if leaf in node:
            raise RecipeError(_join(path, old), f"given twice: here and as {_join(path, moved[old])}")
        node[leaf] = data.pop(old)
        warnings.warn(f"{_join(path, old)} is deprecated: use {_join(path, moved[old])}",
                      RecipeDeprecationWarning, stacklevel=2)
    return data


def _check_limits(value: Any, meta: typing.Mapping[str, Any], path: str) -> None:
    if value is None or isinstance(value, str):  # limits bound numbers (a field may also take a word)
        return
    for key, (ok, sym) in _LIMITS.items():
        if key in meta and not ok(value, meta[key]):
            raise RecipeError(path, f"must be {sym} {meta[key]}, got {value!r}")


def to_dict(obj: Any) -> Any:
    """Plain-dict form of a (nested) dataclass, suitable for YAML and MLflow params."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj
