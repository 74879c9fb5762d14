"""Batches MLflow logs in the background for a tracker: ``MlflowClient.log_batch(synchronous=False)``.

MLflow's asynchronous logging (``mlflow.utils.async_logging``) puts each batch on an unbounded queue
that one thread hands to a pool of ``MLFLOW_ASYNC_LOGGING_THREADPOOL_SIZE`` (10) workers, and returns a
``RunOperations`` whose futures finish when the store has answered. What a tracker must know about it:

  * batches may land out of order (several workers), so what the server holds after a failure is
    found by looking (``RunSync``'s reconcile), never assumed from the order of sending;
  * ``RunOperations.wait()`` re-raises every error wrapped in one ``MlflowException`` with code
    ``INTERNAL_ERROR``, which would read as an outage even when the store refused the batch; ``error``
    reads the store's own exception from the operation's futures instead;
  * with ``MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS`` set, MLflow merges queued batches into one request
    and reports a failure only to the first of them: the others would count as sent though they were
    not. ``background_ok()`` is then False and the tracker logs synchronously;
  * the queue has no bound: ``InFlight`` holds at most ``limit`` operations; the caller hands MLflow
    nothing more until the oldest has finished (backpressure).
"""
from __future__ import annotations

import collections
import dataclasses
import os
from typing import Any, Iterator

BUFFERING_ENV = "MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS"
MAX_IN_FLIGHT = 8  # batches of <= 1,000 metrics: a few MB of MLflow entities at most


def background_ok() -> bool:
    """True when MLflow's asynchronous logging reports each batch's own failure (see the module docstring)."""
    return not os.environ.get(BUFFERING_ENV)


def _futures(op: Any) -> list | None:
    return getattr(op, "_operation_futures", None)  # RunOperations' only state (MLflow 2.x and 3.x)


def done(op: Any) -> bool:
    """True once every request of ``op`` (a ``RunOperations``) has been answered."""
    futures = _futures(op)
    return futures is None or all(f.done() for f in futures)


def error(op: Any) -> BaseException | None:
    """Wait for ``op`` and return the first error a store raised for it, as raised (``None``: logged)."""
    futures = _futures(op)
    if futures is None:  # an MLflow without the futures: only wait()'s wrapped error is there
        try:
            op.wait()
        except Exception as err:  # noqa: BLE001 - returned, classified by the caller
            return err
        return None
    return next((e for e in (f.exception() for f in futures) if e is not None), None)


@dataclasses.dataclass
class Sent:
    """One batch in flight: ``what`` names it in messages; it carries candidates ``first..end-1``."""

    what: str
    first: int
    end: int
    op: Any


class InFlight:
    """The batches in flight, oldest first, at most ``limit`` (``full`` then)."""

    def __init__(self, limit: int = MAX_IN_FLIGHT) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self.limit = limit
        self._sent: collections.deque[Sent] = collections.deque()

    def __len__(self) -> int:
        return len(self._sent)

    def __iter__(self) -> Iterator[Sent]:
        return iter(self._sent)

    @property
    def full(self) -> bool:
        return len(self._sent) >= self.limit

    @property
    def first(self) -> int | None:
        """The first candidate of the oldest batch in flight (``None`` when none is)."""
        return self._sent[0].first if self._sent else None

    def add(self, sent: Sent) -> None:
        self._sent.append(sent)

    def oldest_done(self) -> bool:
        return bool(self._sent) and done(self._sent[0].op)

    def pop(self) -> tuple[Sent, BaseException | None]:
        """The oldest batch and its error, once it has finished (waits for it)."""
        sent = self._sent[0]
        err = error(sent.op)
        self._sent.popleft()
        return sent, err

    def __getstate__(self) -> dict[str, Any]:  # futures hold locks; a copy has nothing in flight
        return {"limit": self.limit, "_sent": collections.deque()}
