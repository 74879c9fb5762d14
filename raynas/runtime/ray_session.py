"""Connecting to Ray: a fresh local instance by default, or an existing cluster by address."""
from __future__ import annotations

import logging


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Start or join Ray unless this process is already connected. Returns True if it connected now.

    ``address=None`` starts a private local instance (``address="local"``: never joins a stale cluster);
    ``"auto"`` or ``"ray://host:port"`` joins a running cluster.
    """
    import ray

    if ray.is_initialized():
        return False
    kwargs = {"include_dashboard": False, "logging_level": logging.WARNING}
    if address in (None, "local"):
        ray.init(address="local", num_cpus=num_cpus, **kwargs)
    else:
        ray.init(address=address, **kwargs)
    return True
