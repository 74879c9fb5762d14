"""Which trial errors mean the trial was *lost* (its worker process, actor or node died, or an object
it needed went with them) rather than its evaluation failing: a lost trial's candidates are worth
proposing again (``SearchDriver(requeue_lost=…)``); an evaluation error is not.

Tune retries an errored trial itself (``FailureConfig``), but with actor reuse Ray 2.60 may hand the
retry of a trial lost with its node to a cached actor on that same dead node; that actor's ``reset``
fails while the trial is ``PENDING`` and Tune then errors the trial instead of retrying it. Requeueing
lost candidates covers that race.
"""
from __future__ import annotations

from functools import lru_cache

# Subclasses of ObjectLostError that are programming errors, not a loss: proposing again won't help.
NOT_LOST = frozenset({"ObjectFreedError", "ReferenceCountingAssertionError"})


@lru_cache(maxsize=1)
def lost_worker_errors() -> frozenset[str]:
    """Names of Ray's exceptions for a dead actor, worker or node, or a lost object, subclasses
    included (what ``failures.error_line`` starts a line with)."""
    from ray import exceptions as rex

    todo = [rex.RayActorError, rex.WorkerCrashedError, rex.NodeDiedError, rex.ObjectLostError]
    names: set[str] = set()
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return frozenset(names - NOT_LOST)


def is_lost(error_line: str) -> bool:
    """Whether a trial's error line (``"<Type>: <message>"``) says its worker was lost."""
    return error_line.split(":", 1)[0].strip() in lost_worker_errors()
