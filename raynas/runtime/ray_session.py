"""Connecting to Ray: a fresh local instance by default, or an existing cluster by address."""
from __future__ import annotations

import logging


CHATTY_WORKER_LOGGERS = ("ray.tune.trainable.trainable", "ray.train._internal.storage")
QUIET_WORKERS_HOOK = "raynas.runtime.ray_session.quiet_worker_logs"


def quiet_worker_logs() -> None:
    """Run in every worker process of a Ray session raynas starts: Tune's trial workers log an INFO
    line per checkpoint and per restore (dozens per PBT run) that the console does not need."""
    for name in CHATTY_WORKER_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Start or join Ray unless this process is already connected. Returns True if it connected now.

    ``address=None`` starts a private local instance (``address="local"``: never joins a stale cluster);
    ``"auto"`` or ``"ray://host:port"`` joins a running cluster.
    """
    import ray

    if ray.is_initialized():
        return False
    kwargs = {"include_dashboard": False, "logging_level": logging.WARNING,
              "runtime_env": {"worker_process_setup_hook": QUIET_WORKERS_HOOK}}
    if address in (None, "local"):
        ray.init(address="local", num_cpus=num_cpus, **kwargs)
    else:
        ray.init(address=address, **kwargs)
    return True
