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
    nothing more until the oldest has finished (backpressure);
  * a sqlite store takes one writer at a time: several workers only wait on its lock (sqlite's busy
    handler sleeps up to 100 ms a try) and each holds a batch's working memory. ``queue_settings`` gives
    MLflow's queue one worker for a ``sqlite:`` URI (unless the user set the variable), read when the
    queue starts, i.e. at the store's first asynchronous call: benchmarks/tracking_scale.py drains
    10,000 candidates ~15 % faster so.
``Held`` is what landed of one metric, read back after a failure.
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
from typing import Any, Iterable, Iterator

from raynas.ray_env import env_defaults

BUFFERING_ENV = "MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS"
POOL_ENV = "MLFLOW_ASYNC_LOGGING_THREADPOOL_SIZE"
# Batches of <= 1,000 metric values. While MLflow logs one it costs ~2.4 MB of Python memory on a sqlite
# store, several at once with several workers (servers); a batch waiting in MLflow's queue costs its
# metrics, ~0.3 MB. A flush of 200 candidates is 2 batches, so 4 = this flush's and the one before,
# which keeps a store that answers slowly busy between flushes.
MAX_IN_FLIGHT = 4


def background_ok() -> bool:
    """True when MLflow's asynchronous logging reports each batch's own failure (see the module docstring)."""
    return not os.environ.get(BUFFERING_ENV)


def queue_settings(tracking_uri: str) -> contextlib.AbstractContextManager[None]:
    """Around an asynchronous call: one MLflow logging worker for a sqlite store (see the module docstring)."""
    return env_defaults({POOL_ENV: "1"}) if tracking_uri.startswith("sqlite:") else contextlib.nullcontext()


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


@dataclasses.dataclass(frozen=True)
class Held:
    """The steps of one metric the server holds: every step up to ``top`` but the ``gaps`` (compact for
    the usual case, a prefix with few or no holes)."""

    top: int = -1
    gaps: frozenset[int] = frozenset()

    def __contains__(self, step: int) -> bool:
        return step <= self.top and step not in self.gaps

    @classmethod
    def of(cls, steps: Iterable[int]) -> "Held":
        present = set(steps)
        top = max(present, default=-1)
        return cls(top, frozenset(i for i in range(top + 1) if i not in present))


NOTHING = Held()
