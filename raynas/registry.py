"""Name → class registries: things are registered by decorator, or found as plugins, and built by name.

Contract:
  * ``Registry.register(name)`` decorates a class; ``get(name)`` returns it or raises ``KeyError`` whose
    message lists the known names; ``names()`` is sorted and stable; ``unregister(name)`` removes one.
  * A registry built with an entry-point ``group`` (``raynas.spaces``…) also knows the entry points of
    that group that installed distributions declare. ``names()`` lists them without importing anything
    (entry-point metadata only); an entry point is loaded when its name is asked for (``get``, ``in``).
    Its value names either
      - a class (``my_pkg.space:MySpace``): registered under the entry point's name, or
      - a module (``my_pkg.space``): imported; it must register the entry point's name itself (decorator).
    A name registered in Python wins over an entry point of the same name (the entry point is not loaded).
    An entry point that fails to load, or that two distributions declare, is a ``PluginError`` naming the
    entry point and its distribution — never skipped.
  * ``import_plugin(module)`` imports a user module (a recipe's ``plugins:``) with the current directory
    importable, as ``python -m`` has it, and records it in ``$RAYNAS_PLUGINS``; a registry that misses a
    name imports the modules listed there first (once), so Ray workers started from this process (they
    inherit its environment) know the same components.

This module stays at the bottom layer: it imports nothing of raynas (import-linter holds it).
"""
from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
from types import ModuleType
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")
PLUGINS_ENV = "RAYNAS_PLUGINS"  # comma-separated plugin modules imported by a registry that misses a name
PLUGINS_SEP = ","


class PluginError(Exception):
    """A plugin (entry point or module) could not be loaded; the message names it (one line).

    A user-input error like ``raynas.errors.RaynasError`` (the CLI prints it as one line, exit 2), but not
    a subclass: ``registry`` and ``errors`` are independent modules of the bottom layer."""

    exit_code = 2


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def _cwd_importable() -> None:
    """Let modules in the current directory be imported (appended: never shadows an installed one)."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)


def import_plugin(module: str) -> ModuleType:
    """Import ``module`` (and record it in ``$RAYNAS_PLUGINS``); ``PluginError`` saying why it cannot be."""
    _cwd_importable()
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name and (module == err.name or module.startswith(f"{err.name}.")):
            raise PluginError(f"no module named {module!r} (install it, or put it on PYTHONPATH or in the "
                              f"current directory)") from None
        raise PluginError(f"module {module!r} failed to import: {_first_line(err)}") from None
    except Exception as err:  # a plugin's own bug: report it, one line
        raise PluginError(f"module {module!r} failed to import: {_first_line(err)}") from None
    _record_plugin(module)
    return mod


def _env_plugins() -> list[str]:
    return [m for m in os.environ.get(PLUGINS_ENV, "").split(PLUGINS_SEP) if m.strip()]


def _record_plugin(module: str) -> None:
    known = _env_plugins()
    if module not in known:
        os.environ[PLUGINS_ENV] = PLUGINS_SEP.join([*known, module])


_imported_env: set[str] = set()


def import_env_plugins() -> None:
    """Import the modules of ``$RAYNAS_PLUGINS`` not imported yet by this function."""
    for module in _env_plugins():
        if module not in _imported_env:
            _imported_env.add(module)
            try:
                import_plugin(module)
            except PluginError as err:
                raise PluginError(f"${PLUGINS_ENV}: {err}") from None


def describe(ep: importlib.metadata.EntryPoint) -> str:
    """``entry point 'name = value' (group …) of distribution NAME VERSION`` for messages."""
    dist = getattr(ep, "dist", None)
    where = f"distribution {dist.name} {dist.version}" if dist is not None else "an unknown distribution"
    return f"entry point '{ep.name} = {ep.value}' (group {ep.group}) of {where}"


class Registry(Generic[T]):
    """A named collection of implementations of one interface (spaces, evaluators, strategies…),
    with the entry points of ``group`` as lazily loaded plugins (see the module docstring)."""

    def __init__(self, kind: str, group: str | None = None) -> None:
        self.kind = kind
        self.group = group
        self._items: dict[str, type[T]] = {}
        self._scan: tuple[tuple[str, ...], dict[str, list[importlib.metadata.EntryPoint]]] | None = None

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def deco(cls: type[T]) -> type[T]:
            if name in self._items and self._items[name] is not cls:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = cls
            cls.registry_name = name  # type: ignore[attr-defined]
            return cls

        return deco

    def unregister(self, name: str) -> None:
        """Forget ``name`` (a component registered for a while, e.g. by a test); unknown names are a
        ``KeyError``."""
        self.get(name)
        del self._items[name]

    def get(self, name: str) -> type[T]:
        """The class registered as ``name``, loading its entry point (or ``$RAYNAS_PLUGINS``) if needed."""
        found = self._find(name)
        if found is None:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        return found

    def names(self) -> list[str]:
        """Registered names and entry-point names, sorted; imports no plugin."""
        return sorted({*self._items, *self.entry_points()})

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._find(name) is not None

    # --- plugins -----------------------------------------------------------------------------
    def entry_points(self) -> dict[str, list[importlib.metadata.EntryPoint]]:
        """This registry's entry points by name (rescanned when ``sys.path`` changes); metadata only."""
        if self.group is None:
            return {}
        key = tuple(sys.path)
        if self._scan is None or self._scan[0] != key:
            found: dict[str, list[importlib.metadata.EntryPoint]] = {}
            for ep in importlib.metadata.entry_points(group=self.group):
                found.setdefault(ep.name, []).append(ep)
            self._scan = (key, found)
        return self._scan[1]

    def _find(self, name: str) -> type[T] | None:
        if name in self._items:
            return self._items[name]
        eps = self.entry_points().get(name)
        if eps:
            return self._load(name, eps)
        import_env_plugins()
        return self._items.get(name)

    def _load(self, name: str, eps: list[importlib.metadata.EntryPoint]) -> type[T]:
        if len(eps) > 1:
            first, second = sorted(describe(ep) for ep in eps)[:2]
            raise PluginError(f"{self.kind} {name!r} is declared twice: {first} and {second}")
        (ep,) = eps
        try:
            obj: Any = ep.load()
        except Exception as err:  # a broken plugin is an error naming it, never skipped
            raise PluginError(f"{self.kind} {name!r}: {describe(ep)} failed to load: {_first_line(err)}") from None
        if isinstance(obj, ModuleType):
            if name not in self._items:
                raise PluginError(f"{self.kind} {name!r}: {describe(ep)} names module {obj.__name__}, which "
                                  f"registered no {self.kind} {name!r}")
            return self._items[name]
        if not isinstance(obj, type):
            raise PluginError(f"{self.kind} {name!r}: {describe(ep)} must name a class or a module, not "
                              f"{type(obj).__name__}")
        if name in self._items and self._items[name] is not obj:  # the module registered another class
            raise PluginError(f"{self.kind} {name!r}: {describe(ep)} names {obj.__qualname__}, but importing it "
                              f"registered {self._items[name].__qualname__} as {name!r}")
        return self.register(name)(obj)
