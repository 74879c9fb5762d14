"""Epoch-wise trials: one Tune trial per candidate of an ``EpochEvaluator``, reporting after every epoch,
so that a Tune scheduler can stop bad candidates early (``backend.scheduler``).

Contract:
  * ``epoch_trainable`` trains its trial's one candidate epoch by epoch; after each epoch it reports
    what ``evaluate_candidates`` reports for a batch of one (``candidates``, ``eval_wall_s`` and the
    candidate's metrics as scalars: the scheduler's metric) with a checkpoint (the run's own files).
    A trial Tune restores (``FailureConfig`` retry, ``Tuner.restore``) continues after the epoch of
    its latest checkpoint.
  * ``build_scheduler`` is Tune's ``ASHAScheduler`` on ``training_iteration`` (= epochs), metric and
    mode the search's: ``asha`` one bracket, ``hyperband`` every bracket from ``grace_period`` to
    ``max_t`` (asynchronous Hyperband, Li et al. 2020). Tune's synchronous ``HyperBandScheduler`` is
    not used: it pauses trials until a bracket fills, which never happens while ``backend.workers``
    trials at a time hold every worker.
  * A stopped candidate reaches the driver as its last report (Tune's ``on_trial_complete`` with the
    last result): strategies see the metric of the epoch it reached, and tracking records it with
    ``epochs`` = that epoch.
  * ``check_scheduler`` is the recipe's rule: a scheduler needs the tune backend and an
    ``EpochEvaluator`` whose epochs are at least ``max_t`` (``RecipeError`` naming the field).
"""
from __future__ import annotations

import math
import tempfile
import time
from typing import Any

from raynas.errors import RecipeError
from raynas.evaluators.base import EpochEvaluator, Evaluator, Result
from raynas.recipes.schema import HYPERBAND, SIMULATE, BackendSpec, SchedulerSpec
from raynas.runtime.driver import CANDIDATES, EVAL_WALL_S
from raynas.runtime.startup import pass_barrier

TIME_ATTR = "training_iteration"  # Tune counts one iteration per report: one per epoch


def epoch_report(result: Result, wall_s: float) -> dict[str, Any]:
    """What a trial reports after an epoch (the shape of ``evaluate_candidates``' report)."""
    return {CANDIDATES: [result.to_dict()], EVAL_WALL_S: wall_s, **result.metrics}


def epoch_trainable(config: dict[str, Any], evaluator: EpochEvaluator, barrier: Any = None,
                    barrier_name: str = "") -> None:
    """Ray Tune function trainable of one candidate (see the module docstring)."""
    from ray import tune

    pass_barrier(barrier, barrier_name)
    (candidate,) = config[CANDIDATES]
    arch = evaluator.space.from_str(candidate["arch"])
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        run = evaluator.start(arch)
    else:
        with checkpoint.as_directory() as directory:
            run = evaluator.start(arch, directory)
    while run.epochs_done < evaluator.max_epochs():
        start = time.perf_counter()
        result = run.run_epoch()
        wall_s = time.perf_counter() - start
        with tempfile.TemporaryDirectory() as directory:
            run.save(directory)
            tune.report(epoch_report(result, wall_s), checkpoint=tune.Checkpoint.from_directory(directory))


def build_scheduler(spec: SchedulerSpec, evaluator: EpochEvaluator, metric: str, mode: str) -> Any:
    """Tune's scheduler for ``spec`` (see the module docstring)."""
    from ray.tune.schedulers import ASHAScheduler

    max_t = spec.max_t or evaluator.max_epochs()
    brackets = 1
    if spec.name == HYPERBAND:
        brackets = 1 + int(math.log(max(1, max_t / spec.grace_period), spec.reduction_factor) + 1e-9)
    return ASHAScheduler(time_attr=TIME_ATTR, metric=metric, mode=mode, max_t=max_t,
                         grace_period=min(spec.grace_period, max_t), reduction_factor=spec.reduction_factor,
                         brackets=brackets)


def check_scheduler(backend: BackendSpec, evaluator: Evaluator, evaluator_name: str) -> None:
    """``RecipeError`` naming the field when ``backend.scheduler`` cannot apply (module docstring)."""
    spec = backend.scheduler
    if spec is None:
        return
    if backend.name == SIMULATE:
        raise RecipeError("backend.scheduler", "needs backend.name: tune (Tune's schedulers stop real trials)")
    if not isinstance(evaluator, EpochEvaluator):
        raise RecipeError("backend.scheduler", f"evaluator {evaluator_name!r} does not report per epoch; "
                          "a scheduler needs one that does (scratch)")
    if spec.max_t is not None and spec.max_t > evaluator.max_epochs():
        raise RecipeError("backend.scheduler.max_t", f"is {spec.max_t} but candidates train "
                          f"{evaluator.max_epochs()} epochs (evaluator.train.epochs)")
