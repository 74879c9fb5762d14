"""How a failed evaluation reaches the search: its error as one line, from either backend.

``simulate`` catches the evaluator's exception itself; ``tune`` learns of a failed trial through
``FailureNotes``, a Tune ``Callback`` whose ``on_trial_error`` (called after the Searcher's
``on_trial_complete(error=True)``) reads the error Tune saved for the trial and hands its first line to
``SearchDriver.trial_error``. Input errors (``RaynasError``) are not evaluation failures: they stop
the search at once.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ray.tune import Callback

from raynas.runtime.driver import NOT_REPORTED, SearchDriver

ERROR_LINE_LIMIT = 300


def error_line(err: BaseException) -> str:
    """``"<Type>: <first line of the message>"`` of an exception; for a Ray task error, of its cause."""
    cause = getattr(err, "cause", None)
    err = cause if isinstance(cause, BaseException) else err
    text = str(err).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(err).__name__}: {first}"[:ERROR_LINE_LIMIT] if first else type(err).__name__


def trial_error_line(trial: Any) -> str:
    """The first line of the error Tune recorded for ``trial`` (the pickled exception, else the last
    line of its error file)."""
    from ray import cloudpickle  # what Tune pickles trial errors with

    pickled = trial.pickled_error_file
    if pickled and Path(pickled).is_file():
        try:
            with open(pickled, "rb") as f:
                return error_line(cloudpickle.load(f))
        except Exception:  # noqa: BLE001 - an exception that does not unpickle here: use the text
            pass
    text_file = trial.error_file
    if text_file and Path(text_file).is_file():
        lines = [ln for ln in Path(text_file).read_text(errors="replace").splitlines() if ln.strip()]
        if lines:
            return lines[-1].strip()[:ERROR_LINE_LIMIT]
    return NOT_REPORTED


class FailureNotes(Callback):
    """Tells the driver why each errored trial failed (see the module docstring)."""

    def __init__(self, driver: SearchDriver) -> None:
        self.driver = driver

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.driver.trial_error(trial.trial_id, trial_error_line(trial))
