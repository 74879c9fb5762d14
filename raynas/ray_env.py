"""The environment raynas runs in: the one way to connect to Ray and the one way to keep Tune quiet.

* ``ensure_ray(address, num_cpus)`` starts a private local Ray or joins a cluster, once per process;
  every worker process of a Ray session raynas starts runs ``quiet_worker_logs``.
* ``quiet_tune()`` is a block within which raynas' own Tune runs are quiet — no experiment box or
  status tables, optionally no per-trial loggers, only errors from Tune's loggers that warn about files
  we never read. Everything it changes is restored on exit, so other Tune runs in the process keep
  their output.
* ``check_resources(demands)`` fails at start, naming the recipe field, when a resource bundle the
  recipe asks for (``Demand``: a Tune trial, a pool replica …) fits no node of the cluster — Ray would
  wait for it forever.
* ``env_defaults(values)`` is the scoped-environment primitive both use (the tracker uses it for
  MLflow's HTTP settings): set what the user did not export, for one block.
Ray is imported lazily: importing this module costs nothing.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from typing import Iterator, Mapping, Sequence

from raynas.errors import RecipeError

CHATTY_WORKER_LOGGERS = ("ray.tune.trainable.trainable", "ray.train._internal.storage")
QUIET_WORKERS_HOOK = "raynas.ray_env.quiet_worker_logs"
LOCAL = "local"
RAY_CPU, RAY_GPU = "CPU", "GPU"  # Ray's resource names

# raynas logs to MLflow itself and draws its own progress lines.
TUNE_CONSOLE_OFF = {"RAY_AIR_NEW_OUTPUT": "0"}  # with verbose=0: no experiment box, no status tables
TUNE_TRIAL_LOGGERS_OFF = {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}  # no per-trial JSON/CSV/TensorBoard
# Short trials that checkpoint every epoch (split trees, PBT) make Tune snapshot its experiment often and
# warn about it on every snapshot; the snapshots are what resume needs, the warning is noise.
TUNE_SNAPSHOT_WARNING_OFF = {"TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0"}
# Tune loggers that only warn about per-trial files: the ResultGrid cannot read the files of disabled
# loggers; a restored trial's CSV logger finds no progress.csv yet. We read neither.
TUNE_FILE_WARNING_LOGGERS = ("ray.tune.analysis.experiment_analysis", "ray.tune.logger.logger")


@contextlib.contextmanager
def env_defaults(values: Mapping[str, str]) -> Iterator[None]:
    """Within the block, each variable not already set has the given value; afterwards the variables
    this call added are removed again (those the user had set are never touched)."""
    added = [key for key in values if key not in os.environ]
    os.environ.update({key: values[key] for key in added})
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


@contextlib.contextmanager
def log_level(names: tuple[str, ...], level: int) -> Iterator[None]:
    """Within the block, the loggers ``names`` pass only records at ``level`` or above."""
    loggers = [logging.getLogger(name) for name in names]
    saved = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(level)
    try:
        yield
    finally:
        for log, old in zip(loggers, saved):
            log.setLevel(old)


@contextlib.contextmanager
def quiet_tune(trial_loggers: bool = False) -> Iterator[None]:
    """A quiet block for raynas' own ``Tuner.fit`` (run it with ``verbose=0``): console output off,
    per-trial loggers off unless ``trial_loggers``, Tune's warnings about their files silenced."""
    env = {**TUNE_CONSOLE_OFF, **TUNE_SNAPSHOT_WARNING_OFF, **({} if trial_loggers else TUNE_TRIAL_LOGGERS_OFF)}
    with env_defaults(env), log_level(TUNE_FILE_WARNING_LOGGERS, logging.ERROR):
        yield


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
    if address in (None, LOCAL):
        ray.init(address=LOCAL, num_cpus=num_cpus, **kwargs)
    else:
        ray.init(address=address, **kwargs)
    return True


@dataclasses.dataclass(frozen=True)
class Demand:
    """One resource bundle a recipe asks Ray for, all on one node: ``amounts`` (``{"CPU": 1, "GPU": 0}``)
    and, per resource, the recipe field that sets it (``{"GPU": "backend.gpus_per_worker"}``)."""

    what: str  # what needs it, for the message: "each Tune trial", "each pool replica"
    amounts: Mapping[str, float]
    fields: Mapping[str, str]


def node_resources() -> list[dict[str, float]]:
    """The total resources of each alive node of the connected cluster."""
    import ray

    return [dict(n["Resources"]) for n in ray.nodes() if n.get("Alive")]


def check_resources(demands: Sequence[Demand], nodes: Sequence[Mapping[str, float]] | None = None) -> None:
    """``RecipeError`` naming the field of the first resource of a demand that no node of ``nodes``
    (default: the connected cluster's) can give, with what the cluster has."""
    nodes = node_resources() if nodes is None else nodes
    for demand in demands:
        wanted = {r: a for r, a in demand.amounts.items() if a > 0}
        if any(all(node.get(r, 0.0) >= a for r, a in wanted.items()) for node in nodes):
            continue
        short = next((r for r, a in wanted.items() if max((n.get(r, 0.0) for n in nodes), default=0.0) < a),
                     next(iter(wanted)))
        largest = max((n.get(short, 0.0) for n in nodes), default=0.0)
        raise RecipeError(demand.fields[short], f"{demand.what} needs {_amounts(wanted)} on one node, but the "
                          f"Ray cluster's largest has {largest:g} {short} ({_cluster(nodes)}); lower it or add "
                          f"nodes (set ray.autoscaling: true if the cluster adds them on demand)")


def _amounts(amounts: Mapping[str, float]) -> str:
    return " and ".join(f"{a:g} {r}" for r, a in amounts.items())


def _cluster(nodes: Sequence[Mapping[str, float]]) -> str:
    total = {r: sum(n.get(r, 0.0) for n in nodes) for r in (RAY_CPU, RAY_GPU)}
    return f"{len(nodes)} node{'s' if len(nodes) != 1 else ''}, {total[RAY_CPU]:g} CPUs, {total[RAY_GPU]:g} GPUs in all"
