"""Execution backends behind one Searcher API: ``simulate`` (in-process event loop on the search clock,
in the manner of Syne Tune's simulator backend) and ``tune`` (a real Ray Tune ``Tuner``)."""
from __future__ import annotations

import heapq
import time
from typing import Any

import ray
from ray.tune.search import Searcher

from raynas.errors import RaynasError
from raynas.evaluators.base import EpochEvaluator, Evaluator
from raynas.metrics import COST_S
from raynas.ray_env import RAY_CPU, RAY_GPU, node_resources, quiet_tune
from raynas.recipes.schema import BackendSpec
from raynas.runtime.driver import CANDIDATES, EVAL_WALL_S, SearchDriver
from raynas.runtime.epochs import build_scheduler, epoch_trainable
from raynas.runtime.failures import FailureNotes, error_line
from raynas.runtime.startup import new_barrier, pass_barrier, workers_that_fit
from raynas.storage import join, resolve


def evaluate_candidates(evaluator: Evaluator, config: dict[str, Any]) -> dict[str, Any]:
    """Evaluate a trial's candidates; the one function both backends run per trial."""
    space = evaluator.space
    archs = [space.from_str(c["arch"]) for c in config[CANDIDATES]]
    start = time.perf_counter()
    results = evaluator.evaluate(archs)
    out: dict[str, Any] = {CANDIDATES: [r.to_dict() for r in results], EVAL_WALL_S: time.perf_counter() - start}
    for key in results[0].metrics:
        out[key] = max(r.metrics[key] for r in results)  # a scalar Tune can show/sort by
    return out


def _evaluate_retrying(evaluator: Evaluator, config: dict[str, Any], max_failures: int) -> dict[str, Any] | str:
    """The trial's result, or the first line of its last error after ``max_failures`` retries."""
    for _ in range(max_failures + 1):
        try:
            return evaluate_candidates(evaluator, config)
        except RaynasError:
            raise  # bad input, not a failed evaluation
        except Exception as err:  # noqa: BLE001 - a failed evaluation is counted, not fatal
            last = error_line(err)
    return last


def run_simulated(driver: SearchDriver, evaluator: Evaluator, max_failures: int = 0) -> None:
    """Run the search in this process: virtual workers, completions delivered in clock order. A trial
    that raises is re-run up to ``max_failures`` times, then fails its candidates."""
    events: list[tuple[float, int, str, dict]] = []
    seq, finished = 0, False
    while True:
        while not finished and driver.workers.idle():
            trial_id = f"sim_{seq:06d}"
            config = driver.suggest(trial_id)
            if config == Searcher.FINISHED:
                finished = True
            if not isinstance(config, dict):
                break
            seq += 1
            result = _evaluate_retrying(evaluator, config, max_failures)
            if isinstance(result, str):
                driver.on_trial_complete(trial_id, error=True)
                driver.trial_error(trial_id, result)
                continue
            end = driver.workers.start_of(trial_id) + sum(c[COST_S] for c in result[CANDIDATES])
            heapq.heappush(events, (end, seq, trial_id, result))
        if not events:
            return
        _, _, trial_id, result = heapq.heappop(events)
        driver.on_trial_complete(trial_id, result)


def _trainable(config: dict[str, Any], evaluator: Evaluator, barrier: Any = None, barrier_name: str = "") -> None:
    from ray import tune

    pass_barrier(barrier, barrier_name)  # an actor's first trial waits for the other workers' actors
    tune.report(evaluate_candidates(evaluator, config))


def _trial_name(trial: Any) -> str:
    return f"trial_{trial.trial_id}"


def experiment_path(backend: BackendSpec, name: str) -> str:
    """Where the Tune experiment ``name`` lives: ``<backend.storage_path>/<name>`` (a path or a URI)."""
    return join(resolve(backend.storage_path), name)


def run_tune(driver: SearchDriver, evaluator: Evaluator, backend: BackendSpec, *, name: str,
             restore: bool = False) -> None:
    """Run the search as a Ray Tune experiment ``name``: one trial per batch of candidates, actors
    reused, ``backend.workers`` trials at once with ``backend``'s resources each; a failed trial is
    retried ``backend.max_failures`` times (Tune's ``FailureConfig``), then fails its candidates.
    ``restore``: continue the experiment ``name`` after its driver died (``Tuner.restore``: trials
    that were running or had errored run again; ``driver`` gets the saved Searcher state). Each trial
    actor's first trial waits at a ``StartupBarrier`` for the actors of the workers that fit the
    cluster (``runtime.startup``: Tune would otherwise discard actors still starting). An
    ``EpochEvaluator``'s candidates run one per trial, reporting every epoch (``runtime.epochs``), under
    ``backend.scheduler`` when set."""
    from ray import tune

    bundle = {RAY_CPU: backend.cpus_per_worker, RAY_GPU: backend.gpus_per_worker}
    barrier = new_barrier(workers_that_fit(backend.workers, bundle, node_resources(), ray.available_resources()))
    function = epoch_trainable if isinstance(evaluator, EpochEvaluator) else _trainable
    trainable = tune.with_resources(
        tune.with_parameters(function, evaluator=evaluator, barrier=barrier, barrier_name=f"{name}-{id(barrier)}"),
        {"cpu": backend.cpus_per_worker, "gpu": backend.gpus_per_worker})
    try:
        with quiet_tune():
            tuner = _restored(experiment_path(backend, name), trainable, driver) if restore else \
                _tuner(driver, trainable, backend, name, evaluator)
            tuner.fit()
    finally:
        ray.kill(barrier)


def _restored(path: str, trainable: Any, driver: SearchDriver) -> Any:
    """The Tuner of the experiment at ``path``, continuing with ``driver``. Tune restores the Searcher
    and callbacks pickled when the search began — copies without this process's listeners (tracker,
    progress) — so it is handed this process's driver, built from the same recipe, instead; Tune then
    loads the saved state into it (``Searcher.restore_from_dir``) before the first suggestion."""
    from ray import tune

    if not tune.Tuner.can_restore(path):
        raise RaynasError(f"no Tune experiment to resume at {path}")
    tuner = tune.Tuner.restore(path, trainable=trainable, resume_errored=True)
    internal = getattr(tuner, "_local_tuner", None)  # Tuner.restore has no argument for either (Ray 2.60)
    if internal is None:
        raise RaynasError("resuming needs the driver on the cluster (ray.address auto or HOST:PORT), "
                          "not a Ray Client (ray://) connection")
    internal._tune_config.search_alg = driver
    internal.get_run_config().callbacks = [FailureNotes(driver)]
    return tuner


def _tuner(driver: SearchDriver, trainable: Any, backend: BackendSpec, name: str, evaluator: Evaluator) -> Any:
    from ray import tune

    storage = resolve(backend.storage_path)
    epochs = isinstance(evaluator, EpochEvaluator)
    scheduler = None if backend.scheduler is None or not epochs else \
        build_scheduler(backend.scheduler, evaluator, driver.metric, driver.mode)
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=driver, num_samples=-1, max_concurrent_trials=backend.workers,
                                    reuse_actors=True, trial_name_creator=_trial_name,
                                    trial_dirname_creator=_trial_name, scheduler=scheduler),
        # A batch trial reports exactly once. Stopping it on that report saves one actor round trip
        # per trial: without it Tune calls train() again only to learn that the function has returned.
        run_config=tune.RunConfig(name=name, storage_path=storage, verbose=0,
                                  stop=None if epochs else {"training_iteration": 1},
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                                  failure_config=tune.FailureConfig(max_failures=backend.max_failures),
                                  callbacks=[FailureNotes(driver)]),
    )
