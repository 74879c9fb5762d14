"""Bounded LRU caches: BN statistics in a replica and evaluation results in a pool's router.

``EvalCache`` keys results by ``(canonical arch hash, weights version)``: functionally equal archs
(same ``space.canonical``) scored with the same weights share one entry, and a new weights version
never sees an older version's results. It counts hits and misses.
"""
from __future__ import annotations

import collections
from typing import Any, Hashable


class LRUCache:
    """A dict bounded to ``capacity`` entries, evicting the least recently used (capacity 0: no caching)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}")
        self.capacity = capacity
        self._items: collections.OrderedDict[Hashable, Any] = collections.OrderedDict()

    def get(self, key: Hashable) -> Any | None:
        if key not in self._items:
            return None
        self._items.move_to_end(key)
        return self._items[key]

    def put(self, key: Hashable, value: Any) -> None:
        if self.capacity == 0:
            return
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items


class EvalCache(LRUCache):
    """Results keyed by ``(canonical, version)``; ``hits``/``misses`` count lookups."""

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.hits = 0
        self.misses = 0

    def lookup(self, canonical: str, version: str) -> dict[str, Any] | None:
        found = self.get((canonical, version))
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def store(self, canonical: str, version: str, result: dict[str, Any]) -> None:
        self.put((canonical, version), dict(result))

    def stats(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "size": len(self)}
