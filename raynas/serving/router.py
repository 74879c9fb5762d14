"""``PoolRouter``: the async Ray actor behind a ``ServerPool`` — replicas, routing, hot swap, restarts,
and the evaluation cache. One router per pool; every client (the driver, Tune's trial workers, other
searches given the pool's name) talks to it, so all of them share its cache and its view of load.

Contract:
  * Start (first ``ready``/``evaluate``/``publish``): one Ray task (``prepare_*`` resources) builds the
    ``EvalData`` and, when the pool has a weights factory, produces the weights (trains or loads them);
    the router keeps its own copies of both in the object store (on its node, which is the node of the
    process that created the pool: a worker node lost takes neither with it). Then ``replicas``
    ``SupernetServer`` actors start with ``num_cpus``/``num_gpus`` each (fractional GPUs share a device)
    and load that one weights ref.
  * ``evaluate(items)`` takes ``(arch string, canonical hash)`` pairs and returns one dict per item:
    the replica's score dict plus ``version`` (the weights it was scored with), ``replica`` (slot) and
    ``cached``. Results are cached by ``(canonical, version)`` (LRU, ``cache_size``); an item whose key is
    already being computed waits for that computation. Misses are cut into chunks of ``archs_per_call``
    and each chunk goes to the least-loaded replica (fewest archs in flight; ties: least recently used).
  * ``publish(box, version)`` hot-swaps weights: the router's version changes at once (later requests
    look up and are stamped with the new version), every replica gets ``load`` after the requests
    already submitted to it, so those finish on the old weights. The router re-puts published weights
    (it owns every weights object it serves), so they outlive the process that published them.
  * Replicas are spread over the cluster's nodes: one placement group (Ray's ``SPREAD`` strategy) holds
    a bundle per slot, and slot ``i``'s actor (and any replacement) runs in bundle ``i``. ``SPREAD`` is
    best effort: on one node, or when nodes are full, bundles share a node. When a node dies, Ray
    re-places its bundles on the remaining nodes and replaced replicas start there.
  * A request whose replica dies (``RayActorError``) restarts that replica — a new actor loading the
    *current* weights ref — and is retried on the least-loaded replica, at most ``max_retries`` times;
    then ``PoolError``.
Weights refs travel in a one-element list (a "box") so that Ray passes the ref, not the arrays.
"""
from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, Callable, Sequence

import ray
from ray.exceptions import RayActorError
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from raynas.ray_env import RAY_CPU, RAY_GPU
from raynas.serving.cache import EvalCache
from raynas.serving.server import RESULTS, VERSION, SupernetServer, threads_for
from raynas.serving.spec import EvalData, ModelSpec, load_splits
from raynas.typed import bounded

REPLICA, CACHED = "replica", "cached"
SPREAD = "SPREAD"  # Ray's placement strategy: bundles on distinct nodes where possible
WeightsFactory = Callable[[ModelSpec, Any], dict]  # (spec, splits) -> arrays; picklable


class PoolError(RuntimeError):
    """The pool cannot serve: no weights, a version mismatch, or a request out of retries."""


@dataclasses.dataclass(frozen=True)
class PoolConfig:
    """Replicas and their resources, routing and cache settings of one pool (a recipe's
    ``evaluator.pool`` section)."""

    replicas: int = bounded(1, gt=0)
    num_cpus: float = bounded(1.0, gt=0)  # per replica (torch threads: its whole part, at least 1)
    num_gpus: float = bounded(0.0, ge=0)  # per replica; fractions share a GPU
    archs_per_call: int = bounded(4, gt=0)  # archs per replica call (a request's misses are cut into such chunks)
    queue_depth: int = bounded(2, gt=0)  # chunks a replica holds at once (one running, the rest queued); more wait
    cache_size: int = bounded(100_000, ge=0)  # evaluation-cache entries (0: off)
    max_retries: int = bounded(3, ge=0)  # per request chunk, after a replica died
    prepare_num_cpus: float = bounded(1.0, gt=0)  # the start-up task: trains/loads weights, builds the eval data
    prepare_num_gpus: float = bounded(0.0, ge=0)


@dataclasses.dataclass
class Replica:
    slot: int
    handle: Any
    inflight: int = 0  # archs submitted and not yet answered
    last_used: int = -1  # dispatch sequence number of its latest request


def prepare(spec: ModelSpec, factory: WeightsFactory | None) -> tuple[EvalData, dict | None]:
    """The pool's start-up task: evaluation data, and the factory's weights (None without one)."""
    splits = load_splits(spec)
    data = EvalData.build(spec, splits)
    return data, (factory(spec, splits) if factory is not None else None)


def _consume(fut: asyncio.Future) -> None:
    if not fut.cancelled():
        fut.exception()  # mark retrieved: waiters (if any) re-raise it themselves


class PoolRouter:
    """The actor class (``ServerPool`` wraps it with ``ray.remote(num_cpus=0)``)."""

    def __init__(self, spec: ModelSpec, config: PoolConfig, factory: WeightsFactory | None = None) -> None:
        self.spec, self.config, self.factory = spec, config, factory
        self.cache = EvalCache(config.cache_size)
        self.replicas: list[Replica] = []
        self.weights: list[Any] = []  # [ObjectRef] of the current weights
        self.version: str | None = None
        self.data_ref: Any = None
        self.restarts = self.published = self.seq = 0
        self.dispatched = [0] * config.replicas  # archs sent per slot, over all its incarnations
        self._start_task: asyncio.Task | None = None
        self._pending: dict[tuple[str, str], asyncio.Future] = {}
        self._free: asyncio.Condition | None = None  # signalled when a replica's load drops
        self._group: Any = None  # the replicas' placement group (one bundle per slot)

    # --- start-up ----------------------------------------------------------------------------
    async def ready(self) -> str:
        """Start the pool once (later calls wait for the same start); returns the weights version."""
        if self._start_task is None:
            self._start_task = asyncio.get_running_loop().create_task(self._start())
        await asyncio.shield(self._start_task)
        return self.version

    async def _start(self) -> None:
        task = ray.remote(prepare).options(num_returns=2, num_cpus=self.config.prepare_num_cpus,
                                           num_gpus=self.config.prepare_num_gpus, max_retries=0)
        data_ref, arrays_ref = task.remote(self.spec, self.factory)
        if self.factory is None and not self.weights:
            raise PoolError("the pool has neither weights nor a weights factory: publish weights first")
        # Copies in this node's object store: the task's results live on the node it ran on and would
        # be lost with it (replicas restarted after a node failure load these).
        self.data_ref = ray.put(await data_ref)
        if self.factory is not None:
            self.weights = [ray.put(await arrays_ref)]
        self._group = placement_group([self._bundle()] * self.config.replicas, strategy=SPREAD)
        await self._group.ready()
        self.replicas = [self._spawn(slot) for slot in range(self.config.replicas)]
        versions = await asyncio.gather(*(r.handle.load.remote(self.weights[0]) for r in self.replicas))
        if len(set(versions)) != 1 or (self.version is not None and versions[0] != self.version):
            raise PoolError(f"replicas loaded versions {sorted(set(versions))}, expected {self.version}")
        self.version = versions[0]

    def _bundle(self) -> dict[str, float]:
        """One replica's resources, as a placement-group bundle (Ray refuses zero amounts)."""
        wanted = {RAY_CPU: self.config.num_cpus, RAY_GPU: self.config.num_gpus}
        return {r: a for r, a in wanted.items() if a > 0}

    def _spawn(self, slot: int) -> Replica:
        cfg = self.config
        where = PlacementGroupSchedulingStrategy(self._group, placement_group_bundle_index=slot)
        actor = ray.remote(SupernetServer).options(num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus, max_restarts=0,
                                                   scheduling_strategy=where)
        return Replica(slot, actor.remote(self.spec, self.data_ref, threads_for(cfg.num_cpus)))

    @staticmethod
    def _kill(handle: Any) -> None:
        ray.kill(handle, no_restart=True)

    def _replace(self, dead: Replica) -> None:
        """Restart ``dead``'s slot with the current weights (once, however many requests saw it die)."""
        if self.replicas[dead.slot] is not dead:
            return
        self._kill(dead.handle)
        fresh = self._spawn(dead.slot)
        fresh.handle.load.remote(self.weights[0])  # runs before any request submitted to it later
        self.replicas[dead.slot] = fresh
        self.restarts += 1

    # --- requests ----------------------------------------------------------------------------
    async def evaluate(self, items: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        """Score ``(arch, canonical)`` items (see the module docstring)."""
        await self.ready()
        version, loop = self.version, asyncio.get_running_loop()
        out: list[Any] = [None] * len(items)
        todo, joined = [], []
        for i, (_, canonical) in enumerate(items):
            key = (canonical, version)
            hit = self.cache.lookup(canonical, version)
            if hit is not None:
                out[i] = {**hit, CACHED: True}
            elif key in self._pending:
                joined.append((i, self._pending[key]))
            else:
                fut = loop.create_future()
                fut.add_done_callback(_consume)
                self._pending[key] = fut
                todo.append((i, key, fut))
        step = self.config.archs_per_call
        chunks = [todo[k:k + step] for k in range(0, len(todo), step)]
        await asyncio.gather(*(self._run(chunk, items, out) for chunk in chunks))
        for i, fut in joined:
            out[i] = {**(await fut), CACHED: True}
        return out

    async def _run(self, chunk: list, items: Sequence[tuple[str, str]], out: list) -> None:
        try:
            reply, slot = await self._dispatch([items[i][0] for i, _, _ in chunk])
        except BaseException as err:
            for _, key, fut in chunk:
                self._pending.pop(key, None)
                if not fut.done():
                    fut.set_exception(err)
            raise
        for (i, key, fut), res in zip(chunk, reply[RESULTS]):
            res = {**res, VERSION: reply[VERSION], REPLICA: slot, CACHED: False}
            self.cache.store(key[0], reply[VERSION], res)
            self._pending.pop(key, None)
            fut.set_result(res)
            out[i] = res

    def _least_loaded(self) -> Replica:
        return min(self.replicas, key=lambda r: (r.inflight, r.last_used))

    def _has_room(self) -> bool:
        return self._least_loaded().inflight < self.config.queue_depth * self.config.archs_per_call

    async def _acquire(self, n: int) -> Replica:
        """Wait until some replica holds fewer than ``queue_depth`` chunks, then book ``n`` archs on the
        least-loaded one."""
        if self._free is None:
            self._free = asyncio.Condition()
        async with self._free:
            await self._free.wait_for(self._has_room)
            rep = self._least_loaded()
            self.seq += 1
            rep.inflight, rep.last_used = rep.inflight + n, self.seq
            self.dispatched[rep.slot] += n
            return rep

    async def _release(self, rep: Replica, n: int) -> None:
        async with self._free:
            rep.inflight -= n
            self._free.notify_all()

    async def _dispatch(self, archs: list[str]) -> tuple[dict[str, Any], int]:
        """Send ``archs`` to the least-loaded replica; restart it and retry when it died."""
        last: Exception | None = None
        for _ in range(self.config.max_retries + 1):
            rep = await self._acquire(len(archs))
            try:
                return await rep.handle.evaluate.remote(archs), rep.slot
            except RayActorError as err:
                last = err
                self._replace(rep)
            finally:
                await self._release(rep, len(archs))
        raise PoolError(f"{len(archs)} archs failed on {self.config.max_retries + 1} replicas in a row; "
                        f"last error: {last}") from last

    # --- weights -----------------------------------------------------------------------------
    async def publish(self, box: list[Any], version: str) -> str:
        """Serve the weights in ``box`` (a one-element list holding their ref) from now on."""
        box = await self._own(box)
        if self._start_task is None:
            self.weights, self.version = list(box), version
            return await self.ready()
        await self.ready()
        self.weights, self.version = list(box), version
        loads = [(rep, rep.handle.load.remote(box[0])) for rep in list(self.replicas)]
        for rep, ref in loads:
            try:
                got = await ref
            except RayActorError:
                self._replace(rep)  # the replacement loads the current (new) weights
                continue
            if got != version:
                raise PoolError(f"replica {rep.slot} loaded version {got}, expected {version}")
        self.published += 1
        return version

    @staticmethod
    async def _own(box: list[Any]) -> list[Any]:
        """The router's own copy of published weights: an object dies with the process that ``ray.put``
        it, and a replica restarted after the publisher exited could not load it any more."""
        return [ray.put(await box[0])]

    async def weights_box(self) -> list[Any]:
        """The current weights ref, boxed."""
        await self.ready()
        return list(self.weights)

    async def current_version(self) -> str:
        return await self.ready()

    # --- introspection -----------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        return {"version": self.version, "restarts": self.restarts, "published": self.published,
                "cache": self.cache.stats(), "dispatched": list(self.dispatched),
                "inflight": [r.inflight for r in self.replicas], "pending": len(self._pending)}

    def handles(self) -> list[Any]:
        """The replicas' actor handles (slot order)."""
        return [r.handle for r in self.replicas]

    def shutdown(self) -> None:
        for rep in self.replicas:
            self._kill(rep.handle)
        self.replicas = []
        if self._group is not None:
            remove_placement_group(self._group)
            self._group = None
