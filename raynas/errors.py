"""User-facing errors. The CLI prints ``str(err)`` as one line and exits with ``exit_code``."""
from __future__ import annotations


class RaynasError(Exception):
    """An error caused by user input (recipe, path, flag); never shown with a traceback."""

    exit_code = 2


class RecipeError(RaynasError):
    """A recipe value is wrong. ``field`` is the dotted path, e.g. ``strategy.population_size``."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


class RecipeDeprecationWarning(UserWarning):
    """A recipe uses an old field path that still works; the message names the new one."""
