"""A real two-node Ray cluster on this machine for tests: ``ray.cluster_utils.Cluster`` with a head and
one worker node (loopback, ``RAY_AUTH_MODE=disabled``). It stops only the nodes it started."""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def two_nodes(cpus_per_node: int) -> Iterator[tuple[object, object]]:
    """Yields ``(cluster, worker node)``, both nodes up, each with ``cpus_per_node`` CPUs; shuts the
    cluster down afterwards (a driver connected to it must ``ray.shutdown()`` first)."""
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": cpus_per_node})
    try:
        worker = cluster.add_node(num_cpus=cpus_per_node)
        cluster.wait_for_nodes()
        yield cluster, worker
    finally:
        cluster.shutdown()
