"""``PickledState``: the one way a raynas Tune ``Searcher`` saves and restores itself.

Tune calls ``save(path)`` with the experiment's checkpoints and ``restore(path)`` on ``Tuner.restore``;
both go through the class's ``get_state()``/``set_state(state)``, pickled whole.
"""
from __future__ import annotations

import pickle
from typing import Any


class PickledState:
    """Mixin: ``save``/``restore`` as a pickle of ``get_state()`` (which the class defines)."""

    def get_state(self) -> dict[str, Any]:  # pragma: no cover - defined by the class
        raise NotImplementedError

    def set_state(self, state: dict[str, Any]) -> None:  # pragma: no cover - defined by the class
        raise NotImplementedError

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.get_state(), f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.set_state(pickle.load(f))
