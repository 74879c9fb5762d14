"""Name → class registries: things are registered by decorator and built by name from recipes.

Contract: ``Registry.register(name)`` decorates a class; ``Registry.get(name)`` returns it or raises
``KeyError`` whose message lists the known names; ``names()`` is sorted and stable; ``unregister(name)``
removes one.
"""
from __future__ import annotations

from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of implementations of one interface (spaces, evaluators, strategies…)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, type[T]] = {}

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
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items
