"""Best-so-far curves of the searches in one experiment (what ``raynas compare`` plots)."""
from __future__ import annotations

from raynas.errors import RaynasError
from raynas.metrics import PARENT_RUN_TAG, VALID_ACC
from raynas.tracking.sync import BEST_SO_FAR_PREFIX, METRIC_TAG, metric_name

DEFAULT_METRIC = VALID_ACC
MAX_RUNS = 1000


Curve = tuple[list[int], list[float]]  # (steps, values)


def best_so_far_curves(client, experiment: str, where: str = "") -> tuple[dict[str, Curve], str]:
    """``({label: (steps, values)}, metric)`` for every search run (child runs excluded) of
    ``experiment`` that logged ``best_so_far/<metric>``; label = run name (+ id prefix if repeated).

    Raises ``RaynasError`` when the experiment does not exist or has no such run.
    """
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        known = ", ".join(sorted(e.name for e in client.search_experiments())) or "none"
        raise RaynasError(f"experiment {experiment!r} not found at {where or 'the tracking store'}; known: {known}")
    runs = [r for r in client.search_runs([exp.experiment_id], max_results=MAX_RUNS, order_by=["start_time ASC"])
            if PARENT_RUN_TAG not in r.data.tags]
    curves, metrics, seen = {}, set(), set()
    for run in runs:
        metric = run.data.tags.get(METRIC_TAG, DEFAULT_METRIC)
        history = sorted(client.get_metric_history(run.info.run_id, BEST_SO_FAR_PREFIX + metric_name(metric)),
                         key=lambda m: m.step)
        if not history:
            continue
        label = run.info.run_name or run.info.run_id
        if label in seen:
            label = f"{label} ({run.info.run_id[:6]})"
        seen.add(label)
        metrics.add(metric)
        curves[label] = ([m.step for m in history], [m.value for m in history])
    if not curves:
        raise RaynasError(f"experiment {experiment!r} has no run with a best-so-far metric to compare")
    return curves, " / ".join(sorted(metrics))
