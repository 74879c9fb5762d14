"""A Ray Tune trial whose supernet is trained by Ray Train ``TorchTrainer`` runs (a data-parallel PBT member).

Ray Train V2 runs inside Tune as Ray documents it: the Tune trial is the *driver* of Train runs
(``fit_ddp``) and their workers do the training. ``run_data_parallel_trial(config, report, checkpoint,
storage_path, segment_epochs)`` (``config`` a ``SupernetTrialConfig`` as a dict, ``train.workers > 1``)
trains in *segments* that end at the epochs where PBT may exploit and explore (multiples of
``segment_epochs``, its ``perturbation_interval``; None: one segment to ``train.epochs``):

  * each segment is one ``fit_ddp`` run that starts from the previous segment's checkpoint — the first
    from the trial's Tune checkpoint (a PBT exploit's donor, a failure retry's last one) — given in
    ``DDPRun.start_from``; the workers load it and then apply the trial's
    *current* hyperparameters (lr, weight decay, momentum, ``kd_alpha``, the rule's options: those PBT
    explores), as a single-process member does;
  * when the run has ended, every epoch's metrics (rank 0's) are reported to Tune in order, the last
    with a Tune checkpoint of the run's last checkpoint (``weights.npz``, ``optimizer.npz``,
    ``state.json``), which PBT clones into other members.
A segment's Train run has therefore finished — its workers and placement group released — before Tune
sees the report at which it may pause or stop the trial: Tune never kills a trial in the middle of a
Train run (whose workers would then hold their resources until Ray Train's cleaner noticed, and
without a dashboard it cannot). A Train run that fails beyond ``train.max_failures`` raises, and Tune's
``FailureConfig`` retries the member from its last checkpoint; a worker that fails *within* a run is
restored by Ray Train, and the epochs before its checkpoint are then not reported to Tune (their
metrics went with the failed worker group). Each segment costs one worker-group
start (seconds): keep ``perturbation_interval`` well above that in epoch time.
The runs are kept in the trial's own directory: emptied when the trial (re)starts — it starts from its
Tune checkpoint — and each run deleted once the next has loaded its checkpoint, so a member leaves at
most its last run behind. The trial process only waits: it asks for no CPU, only a process's memory
(``TRIAL_RESOURCES``: Tune refuses an empty request, and a token CPU share would keep its own
workers' last fraction of a CPU from fitting); the workers take ``train.cpus_per_worker`` /
``gpus_per_worker`` each, placed by Ray Train.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Callable

from raynas.storage import join, remove
from raynas.supernet.ddp import RUN_PREFIX, DDPRun, fit_ddp

TRIAL_RESOURCES = {"cpu": 0, "memory": 256 * 2**20}  # a Train run's driver: no CPU (it waits), a process's memory
SEGMENT_PREFIX = "epochs-"  # a segment's Train run: epochs-<from>-<to>
ReportFn = Callable[..., None]


def run_data_parallel_trial(config: dict[str, Any], report: ReportFn, checkpoint: Any = None,
                            storage_path: str | None = None, segment_epochs: int | None = None) -> None:
    """Train ``config`` on its ``train.workers`` Ray Train workers from ``checkpoint`` (a Tune
    checkpoint or None), calling ``report(metrics[, checkpoint=tune.Checkpoint])`` once per epoch (see
    the module docstring). The Train runs are kept under ``storage_path``, the trial's own
    directory, emptied first (default: a temporary directory; give shared storage on a multi-node
    cluster)."""
    epochs = int(config.get("train", {}).get("epochs", 1))
    if storage_path is not None:
        remove(storage_path)  # an earlier attempt's runs: this one starts from its Tune checkpoint
    storage = storage_path or tempfile.mkdtemp(prefix=RUN_PREFIX)
    done, previous = epochs_done(checkpoint), None
    while done < epochs:
        until = segment_end(done, epochs, segment_epochs)
        name = f"{SEGMENT_PREFIX}{done}-{until}"
        result = fit_ddp(DDPRun(trial=config, until=until, start_from=checkpoint), storage, name=name)
        if previous is not None:  # its checkpoint, this run's start, has been loaded (and Tune keeps a copy)
            remove(join(storage, previous))
        _forward(report, result.history, result.checkpoint)
        checkpoint, done, previous = result.checkpoint, until, name


def segment_end(done: int, epochs: int, segment_epochs: int | None) -> int:
    """The epochs done when the segment starting after ``done`` ends: the next multiple of
    ``segment_epochs`` (None: ``epochs``), at most ``epochs``."""
    if segment_epochs is None:
        return epochs
    return min(epochs, (done // segment_epochs + 1) * segment_epochs)


def epochs_done(checkpoint: Any) -> int:
    """The epochs a checkpoint of ``write_checkpoint``'s files had trained (0 for None)."""
    from raynas.supernet.trainable import EPOCHS_DONE, STATE_FILE

    if checkpoint is None:
        return 0
    with checkpoint.as_directory() as directory:
        return int(json.loads((Path(directory) / STATE_FILE).read_text())[EPOCHS_DONE])


def _forward(report: ReportFn, history: list[dict[str, Any]], train_checkpoint: Any) -> None:
    """``report`` each epoch's metrics; the last with a Tune checkpoint of the run's last checkpoint."""
    from ray import tune

    if not history:  # a worker group restored at the segment's end trained nothing: Tune retries the member
        raise RuntimeError("the data-parallel segment reported no epoch")
    for metrics in history[:-1]:
        report(dict(metrics))
    with train_checkpoint.as_directory() as directory:
        report(dict(history[-1]), checkpoint=tune.Checkpoint.from_directory(directory))
