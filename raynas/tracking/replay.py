"""Replay spools left by searches whose tracking server was unreachable (``raynas resume-tracking``)."""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Sequence

from raynas.metrics import KILLED, NUM_CANDIDATES, NUM_FAILED
from raynas.tracking.resilience import Background, outage, reason, refused
from raynas.tracking.spool import RunEnd, Spool, load_state
from raynas.tracking.sync import RunSync


@dataclasses.dataclass
class Replayed:
    spool: Path
    run_id: str | None
    candidates: int
    error: str = ""  # non-empty: the spool is kept
    refused: list[str] = dataclasses.field(default_factory=list)  # requests the store refused (skipped)


def replay(path: str | Path, tracking_uri: str | None = None,
           retry_delays_s: Sequence[float] = (1.0, 2.0, 4.0)) -> Replayed:
    """Send what a spool holds to MLflow (its own URI, or ``tracking_uri``), skipping what the server
    already has; delete the spool on success. A spool without an end marks the run ``KILLED``. An
    outage is retried after each of ``retry_delays_s``; a refusal of the run is not; a refused request
    is skipped (``Replayed.refused``); any other error is a bug and propagates."""
    from mlflow.tracking import MlflowClient

    path = Path(path)
    state = load_state(path)
    if tracking_uri:
        from raynas.tracking.mlflow_tracker import default_artifact_location

        state.spec.tracking_uri = tracking_uri
        state.spec.artifact_location = default_artifact_location(tracking_uri, state.spec.experiment)
    if state.end is None:
        state.end = RunEnd(metrics={NUM_CANDIDATES: float(len(state.records)),
                                    NUM_FAILED: float(len(state.failures))}, tags={}, status=KILLED)
    sync = RunSync(MlflowClient(state.spec.tracking_uri), state, on_run=Spool(path).run, reconcile=True)
    error, background = "", Background()  # quick HTTP limits, MLflow's per-batch error lines quiet
    for delay in (0.0, *retry_delays_s):
        time.sleep(delay)
        background.hold(state.run_id)
        try:
            sync.sync()  # waits for its background batches
            error = ""
            break
        except Exception as err:
            if not (outage(err) or refused(err)):
                raise
            error = reason(err)
            if refused(err):
                break
        finally:
            background.release()
    if not error:
        path.unlink()
    return Replayed(path, state.run_id, len(state.records), error, list(sync.refusals))
