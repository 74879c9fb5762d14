"""The router's policies in isolation (no Ray): least-loaded routing, restart + retry, hot-swap ordering,
cache keys and in-flight de-duplication. Replicas are fakes whose calls are asyncio tasks, so a test
decides exactly when each one finishes."""
from __future__ import annotations

import asyncio

import pytest
from ray.exceptions import RayActorError

from raynas.serving.router import CACHED, REPLICA, PoolConfig, PoolError, PoolRouter, Replica
from raynas.serving.server import RESULTS, VERSION
from raynas.serving.spec import ModelSpec


class Method:
    def __init__(self, fn):
        self.fn = fn

    def remote(self, *args):
        return asyncio.ensure_future(self.fn(*args))


class FakeServer:
    """Answers in submission order (like an actor); ``hold`` keeps requests in flight; ``dead`` fails them."""

    def __init__(self, name: str, version: str = "v1") -> None:
        self.name, self.version, self.dead, self.calls = name, version, False, []
        self.hold = asyncio.Event()
        self.hold.set()
        self.queue: asyncio.Lock = asyncio.Lock()
        self.evaluate, self.load = Method(self._evaluate), Method(self._load)

    async def _evaluate(self, archs):
        async with self.queue:
            await self.hold.wait()
            if self.dead:
                raise RayActorError()
            self.calls.append(list(archs))
            return {VERSION: self.version, RESULTS: [{"valid_acc": float(len(a)), "by": self.name} for a in archs]}

    async def _load(self, weights):
        async with self.queue:
            if self.dead:
                raise RayActorError()
            self.version = weights
            return weights


class FakeRouter(PoolRouter):
    """A router over fake servers; ``weights`` boxes hold the version string itself."""

    def __init__(self, replicas: int = 2, **config) -> None:
        super().__init__(ModelSpec(), PoolConfig(replicas=replicas, **config))
        self.spawned: list[FakeServer] = []

    async def _start(self) -> None:
        self.weights, self.version = ["v1"], "v1"
        self.replicas = [self._spawn(slot) for slot in range(self.config.replicas)]

    def _spawn(self, slot: int) -> Replica:
        server = FakeServer(f"s{len(self.spawned)}")
        self.spawned.append(server)
        return Replica(slot, server)

    @staticmethod
    def _kill(handle) -> None:
        handle.dead = True

    @staticmethod
    async def _own(box):
        return list(box)


def items(*names):
    return [(n, f"canon-{n}") for n in names]


def run(coro):
    return asyncio.run(coro)


def test_requests_go_to_the_replica_with_fewest_archs_in_flight():
    async def scenario():
        router = FakeRouter(archs_per_call=8)
        await router.ready()
        busy = router.replicas[0].handle
        busy.hold.clear()  # replica 0 is stuck on a long request
        long = asyncio.ensure_future(router.evaluate(items(*"abcdefgh")))
        await asyncio.sleep(0)
        shorts = await asyncio.gather(*(router.evaluate(items(n)) for n in "pqrs"))
        assert [r[0][REPLICA] for r in shorts] == [1, 1, 1, 1]  # never queued behind the long one
        busy.hold.set()
        assert {r[REPLICA] for r in await long} == {0}
        assert router.stats()["dispatched"] == [8, 4]

    run(scenario())


def test_ties_rotate_so_concurrent_requests_spread():
    async def scenario():
        router = FakeRouter(archs_per_call=1)
        replies = await router.evaluate(items(*"abcdef"))
        assert sorted(r[REPLICA] for r in replies) == [0, 0, 0, 1, 1, 1]

    run(scenario())


def test_chunks_wait_in_the_router_and_go_to_whichever_replica_frees_first():
    async def scenario():
        router = FakeRouter(archs_per_call=1, queue_depth=2)
        await router.ready()
        slow = router.replicas[0].handle
        slow.hold.clear()
        request = asyncio.ensure_future(router.evaluate(items(*"abcdefgh")))
        for _ in range(20):
            await asyncio.sleep(0)
        assert router.stats()["dispatched"] == [2, 6]  # replica 0 got its 2 and stalled; 1 took the rest
        slow.hold.set()
        assert sorted(r[REPLICA] for r in await request) == [0, 0] + [1] * 6

    run(scenario())


def test_dead_replica_is_restarted_with_current_weights_and_the_request_retried():
    async def scenario():
        router = FakeRouter(archs_per_call=2)
        await router.ready()
        router.replicas[0].handle.dead = True
        replies = await router.evaluate(items(*"abcd"))
        assert all(r["valid_acc"] == 1.0 and r[VERSION] == "v1" for r in replies)
        assert router.restarts == 1 and len(router.spawned) == 3
        assert router.replicas[0].handle is router.spawned[2] and router.spawned[2].version == "v1"

    run(scenario())


def test_retries_are_bounded():
    async def scenario():
        router = FakeRouter(replicas=1, max_retries=2)
        await router.ready()
        original = router._spawn

        def spawn_dead(slot):
            rep = original(slot)
            rep.handle.dead = True
            return rep

        router._spawn = spawn_dead
        router.replicas[0].handle.dead = True
        with pytest.raises(PoolError, match="3 replicas in a row"):
            await router.evaluate(items("a"))
        assert router.restarts == 3 and not router._pending

    run(scenario())


def test_publish_lets_in_flight_requests_finish_on_the_old_version():
    async def scenario():
        router = FakeRouter(replicas=1, archs_per_call=8)
        await router.ready()
        server = router.replicas[0].handle
        server.hold.clear()
        before = asyncio.ensure_future(router.evaluate(items("a", "b")))
        await asyncio.sleep(0)
        publish = asyncio.ensure_future(router.publish(["v2"], "v2"))
        await asyncio.sleep(0)
        after = asyncio.ensure_future(router.evaluate(items("c")))
        server.hold.set()
        assert [r[VERSION] for r in await before] == ["v1", "v1"]
        assert await publish == "v2"
        assert [r[VERSION] for r in await after] == ["v2"]

    run(scenario())


def test_cache_is_keyed_by_canonical_and_version_and_joins_in_flight_duplicates():
    async def scenario():
        router = FakeRouter(replicas=1, archs_per_call=1)
        first = await router.evaluate([("a1", "same"), ("a2", "same")])  # one computation for both
        assert [r[CACHED] for r in first] == [False, True] and len(router.spawned[0].calls) == 1
        again = await router.evaluate([("a3", "same")])
        assert again[0][CACHED] and again[0]["valid_acc"] == first[0]["valid_acc"]
        await router.publish(["v2"], "v2")
        fresh = await router.evaluate([("a3", "same")])
        assert not fresh[0][CACHED] and fresh[0][VERSION] == "v2"
        assert router.stats()["cache"] == {"hits": 1, "misses": 3, "size": 2}

    run(scenario())
