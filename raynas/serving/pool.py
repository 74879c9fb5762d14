"""``ServerPool``: the client side of a pool of ``SupernetServer`` replicas (see ``router.py``).

A ``ServerPool`` is only a handle on the pool's ``PoolRouter`` actor, so it pickles: the driver can hand
it (or an evaluator holding it) to Tune's trial workers with ``tune.with_parameters``, and every copy
reaches the same replicas, the same evaluation cache and the same weights version. A pool created
with a ``name`` is a named (not detached) Ray actor: ``create`` with the same name from anywhere in
the Ray session returns the existing pool, so several searches can share one pool and its cache.
The pool lives as long as the process that created its router (Ray's ownership rule); the weights it
serves are owned by the router, so they outlive whoever published them.

Contract:
  * ``evaluate(archs)`` blocks until the pool is ready (the first call may wait for training) and
    returns one dict per ``(arch string, canonical hash)``: ``valid_acc``, ``test_acc`` (percent),
    ``eval_s``, ``bn_cached``, ``version``, ``replica``, ``cached``.
  * ``publish(arrays)`` puts the weights in the object store once (numpy arrays, not a pickled
    ``state_dict``: the put and every replica's get are cheap and zero-copy), hot-swaps every replica
    to them and returns their version, ``weights_version(arrays)``.
"""
from __future__ import annotations

from typing import Any, Sequence

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from raynas.serving.router import PoolConfig, PoolError, PoolRouter, WeightsFactory
from raynas.serving.spec import ModelSpec

__all__ = ["PoolConfig", "PoolError", "ServerPool"]


class ServerPool:
    """A picklable handle on a pool's router actor."""

    def __init__(self, router: Any, name: str | None = None) -> None:
        self.router = router
        self.name = name

    @classmethod
    def create(cls, spec: ModelSpec, config: PoolConfig | None = None, *, weights: dict | None = None,
               factory: WeightsFactory | None = None, name: str | None = None) -> "ServerPool":
        """A pool serving ``spec``. Weights: ``weights`` (arrays; the pool starts now) or ``factory``
        (``(spec, splits) -> arrays``, run as a Ray task when the pool is first used). With ``name``,
        an existing pool of that name is returned instead (its spec and factory are kept; ``weights``,
        if given, are published to it)."""
        if weights is None and factory is None:
            raise ValueError("give the pool weights or a weights factory")
        # On this node: the router holds the pool's state (cache, weights), so it shares the creator's
        # fate rather than a worker node's (``num_cpus=0``: it fits a head node without CPUs for work).
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        options: dict[str, Any] = {"num_cpus": 0, "max_restarts": 0, "scheduling_strategy": here}
        if name:
            options.update(name=name, get_if_exists=True)
        router = ray.remote(PoolRouter).options(**options).remote(spec, config or PoolConfig(), factory)
        pool = cls(router, name)
        if weights is not None:
            pool.publish(weights)
        return pool

    @classmethod
    def connect(cls, name: str) -> "ServerPool":
        """The running pool called ``name`` (``ValueError`` when there is none)."""
        return cls(ray.get_actor(name), name)

    def ready(self, timeout: float | None = None) -> str:
        """Wait until the pool serves (trained/loaded, replicas up); returns the weights version."""
        return ray.get(self.router.ready.remote(), timeout=timeout)

    def evaluate(self, items: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        return ray.get(self.evaluate_async(items))

    def evaluate_async(self, items: Sequence[tuple[str, str]]) -> Any:
        """An ``ObjectRef`` of ``evaluate(items)``'s answer."""
        return self.router.evaluate.remote([(str(a), str(c)) for a, c in items])

    def publish(self, arrays: dict) -> str:
        """Hot-swap to ``arrays`` (see the module docstring); returns their version."""
        from raynas.supernet.weights import weights_version

        version = weights_version(arrays)
        ref = ray.put(arrays)
        return ray.get(self.router.publish.remote([ref], version))

    def version(self) -> str:
        return ray.get(self.router.current_version.remote())

    def weights(self) -> dict:
        """The weights currently served (numpy arrays, read-only views of the object store)."""
        return ray.get(ray.get(self.router.weights_box.remote())[0])

    def stats(self) -> dict[str, Any]:
        """``version``, ``restarts``, ``published``, ``cache`` (hits/misses/size), ``dispatched`` (archs
        per replica slot), ``inflight`` (archs per replica now)."""
        return ray.get(self.router.stats.remote())

    def replica_handles(self) -> list[Any]:
        return ray.get(self.router.handles.remote())

    def shutdown(self) -> None:
        """Stop the replicas and the router (other handles on this pool stop working); a router that
        is gone already (its owner exited) is left as it is."""
        try:
            ray.get(self.router.shutdown.remote())
        except ray.exceptions.RayActorError:
            pass  # gone already
        finally:
            ray.kill(self.router, no_restart=True)

    def __repr__(self) -> str:
        return f"ServerPool(name={self.name!r})"
