"""``StartupBarrier``: every Tune trial actor's first trial waits until the search's workers are up.

Why. With ``reuse_actors=True``, Tune hands the actor of a finished trial to the oldest pending trial
and discards the actor it was starting for that trial (ray-project/ray#36020). At start-up, every
worker's actor is starting; the first one up finishes its first trial, takes the next pending trial,
and the actor being started for that one is thrown away — each finished trial kills one starting
actor, so while trials are shorter than an actor's start-up the search runs on a few workers and keeps
starting processes that never serve (measured: 16 workers of 1-s candidates on 2 cores, 6.6 workers
effective). Holding each actor's first trial until the workers' actors have arrived means no trial
finishes while actors are starting, so none is discarded.

The barrier is a Ray actor (no CPU) created by the driver for one ``Tuner.fit`` and killed after it;
an actor process arrives once (its first trial); a process started later (a replaced actor) passes
at once once the barrier has opened.
"""
from __future__ import annotations

import asyncio
import math
import os
import time
from typing import Any, Mapping, Sequence

import ray

STARTUP_TIMEOUT_S = 120.0  # the longest a first trial waits for the other workers' actors
QUIET_S = 5.0  # ... or this long (at least) without a new actor arriving
POLL_S = 0.05
_ARRIVED: set[str] = set()  # barrier names this process has passed (an actor's later trials go on)


@ray.remote(num_cpus=0)
class StartupBarrier:
    """Opens once ``expected`` distinct processes have arrived; or, when fewer come (a cluster without
    room for all, still scaling up), once no new one has arrived for as long as the first took to
    come (at least ``QUIET_S``), and at the latest ``timeout_s`` after the first arrival."""

    def __init__(self, expected: int, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        self.expected, self.timeout_s = expected, timeout_s
        self.created = time.monotonic()
        self.arrived: dict[int, float] = {}  # pid -> when
        self.open = False

    async def arrive(self, pid: int) -> int:
        """Wait until the barrier opens; returns the number of processes arrived by then."""
        self.arrived.setdefault(pid, time.monotonic())
        while not self._opens():
            await asyncio.sleep(POLL_S)
        return len(self.arrived)

    def _opens(self) -> bool:
        if not self.open:
            now, times = time.monotonic(), sorted(self.arrived.values())
            quiet = max(QUIET_S, times[0] - self.created)
            self.open = (len(times) >= self.expected or now - times[-1] >= quiet
                         or now - times[0] >= self.timeout_s)
        return self.open


def new_barrier(expected: int) -> Any:
    """A barrier for ``expected`` trial actors, on this (the driver's) node: a worker node lost takes
    it not with it."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    return StartupBarrier.options(scheduling_strategy=here).remote(expected)


def pass_barrier(barrier: Any, name: str) -> None:
    """In a trial: wait at ``barrier`` the first time this process runs a trial of it. A barrier that
    is gone (its search driver died; a resumed one makes its own) holds nothing."""
    from ray.exceptions import RayActorError

    if barrier is None or name in _ARRIVED:
        return
    try:
        ray.get(barrier.arrive.remote(os.getpid()))
    except RayActorError:
        pass
    _ARRIVED.add(name)


def workers_that_fit(workers: int, bundle: Mapping[str, float], nodes: Sequence[Mapping[str, float]],
                     available: Mapping[str, float] | None = None) -> int:
    """How many of ``workers`` trial bundles the cluster's ``nodes`` (total resources of each) hold at
    once, and no more than the cluster's ``available`` resources (what the evaluator's own actors left;
    ``ray.available_resources()``) hold; at least 1."""
    wanted = {r: a for r, a in bundle.items() if a > 0}

    def fits(res: Mapping[str, float]) -> int:
        return min((math.floor(res.get(r, 0.0) / a + 1e-9) for r, a in wanted.items()), default=workers)

    fit = sum(fits(n) for n in nodes)
    if available is not None:
        fit = min(fit, fits(available))
    return max(1, min(workers, fit))
