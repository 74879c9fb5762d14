"""Never let a dead tracking server stall a search: short HTTP timeouts and a retry backoff.

MLflow's HTTP client retries a failed request for minutes by default (7 retries, growing backoff,
120-s timeout). ``quick_http()`` lowers those limits, through the environment variables MLflow reads
at each request, for the duration of the tracker's own calls; a value the user exported wins. Requests
MLflow's background logging makes for the tracker run after the call that queued them returned:
``Background`` keeps the limits in force (and MLflow's error line per failed batch of the tracker's run
quiet: the tracker reports outages and refusals itself, once) while any such request is in flight.
``Backoff`` paces the tracker's retries of a failed sync so that a search pays at most one quick
failed attempt per backoff period while the server is away.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from typing import Any

from raynas.ray_env import env_defaults

HTTP_MAX_RETRIES_ENV = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"
HTTP_TIMEOUT_ENV = "MLFLOW_HTTP_REQUEST_TIMEOUT"
HTTP_BACKOFF_FACTOR_ENV = "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"
# No HTTP-level retry (``Backoff`` retries whole syncs) and 5 s per request: an unreachable server
# costs one refused connection, a hung one at most 5 s per attempt.
QUICK_HTTP = {HTTP_MAX_RETRIES_ENV: "0", HTTP_TIMEOUT_ENV: "5", HTTP_BACKOFF_FACTOR_ENV: "0"}


def quick_http(settings: dict[str, str] | None = None) -> contextlib.AbstractContextManager[None]:
    """Within the block, MLflow HTTP requests give up fast (unless the user set the variables)."""
    return env_defaults(settings or QUICK_HTTP)


ASYNC_LOGGER = "mlflow.utils.async_logging.async_logging_queue"  # logs "Run Id <id>: Failed to log run data…"


class _RunErrors(logging.Filter):
    """Drops MLflow's error record of a failed background batch of run ``run_id``."""

    def __init__(self) -> None:
        super().__init__()
        self.run_id: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        return not (self.run_id and str(record.msg).startswith(f"Run Id {self.run_id}:"))


class Background:
    """``quick_http()`` and a quiet MLflow for a tracker's background requests: ``hold(run_id)`` when
    handing MLflow a batch, ``release()`` once none is in flight. Process-wide, like ``quick_http``; a
    pickled copy holds nothing."""

    def __init__(self) -> None:
        self._stack: contextlib.ExitStack | None = None
        self._filter = _RunErrors()

    def hold(self, run_id: str | None) -> None:
        self._filter.run_id = run_id
        if self._stack is None:
            self._stack = contextlib.ExitStack()
            self._stack.enter_context(quick_http())
            logger = logging.getLogger(ASYNC_LOGGER)
            logger.addFilter(self._filter)
            self._stack.callback(logger.removeFilter, self._filter)

    def release(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()


@dataclasses.dataclass
class Backoff:
    """Exponential backoff: after the k-th consecutive failure, wait ``min(base_s·factor^(k-1), max_s)``."""

    base_s: float = 1.0
    factor: float = 2.0
    max_s: float = 30.0
    failures: int = 0
    next_at: float = 0.0

    def ready(self, now: float | None = None) -> bool:
        """True when no failure is pending or its wait is over."""
        return (time.monotonic() if now is None else now) >= self.next_at

    def delay_s(self) -> float:
        if self.failures == 0:
            return 0.0
        return min(self.base_s * self.factor ** (self.failures - 1), self.max_s)

    def failed(self, now: float | None = None) -> float:
        """Record a failure; returns the wait before the next attempt."""
        self.failures += 1
        self.next_at = (time.monotonic() if now is None else now) + self.delay_s()
        return self.delay_s()

    def reset(self) -> None:
        self.failures, self.next_at = 0, 0.0


_REASONS = (("Connection refused", "connection refused"), ("timed out", "timed out"),
            ("Name or service not known", "unknown host"))


def reason(err: BaseException, limit: int = 160) -> str:
    """A short, one-line reason for a failed tracking call (MLflow's messages run to a paragraph)."""
    text = str(err)
    for marker, short in _REASONS:
        if marker in text:
            return short
    first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
    return first[:limit]


# MLflow error codes of a store that is there but cannot serve now (an overloaded or failing server,
# a locked database, or MLflow's code for "the request did not get through": INTERNAL_ERROR, which it
# gives a refused connection). Any other code is the store saying no to the request itself.
TRANSIENT = frozenset({"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED", "DEADLINE_EXCEEDED",
                       "ABORTED", "SERVICE_UNDER_MAINTENANCE", "WORKSPACE_TEMPORARILY_UNAVAILABLE"})


def _mlflow_code(err: BaseException) -> str | None:
    from mlflow.exceptions import MlflowException

    return err.error_code if isinstance(err, MlflowException) else None


def outage(err: BaseException) -> bool:
    """True for a store that cannot be reached or cannot serve now (retry later): connection and
    timeout errors (``OSError``, which ``requests``' errors are), database errors (``sqlalchemy``'s
    ``OperationalError``: locked, unreachable) and MLflow's transient codes (``TRANSIENT``)."""
    if isinstance(err, OSError):
        return True
    code = _mlflow_code(err)
    if code is not None:
        return code in TRANSIENT
    try:
        from sqlalchemy.exc import OperationalError
    except ImportError:  # an HTTP-only MLflow client
        return False
    return isinstance(err, OperationalError)


def refused(err: BaseException) -> bool:
    """True when the tracking store answered and said no (an MLflow error code outside ``TRANSIENT``:
    an invalid value, a permission, a missing run …): retrying the same request will not help."""
    code = _mlflow_code(err)
    return code is not None and code not in TRANSIENT
