"""Ray Tune function trainable for supernet training, with numpy (npz) checkpoints and resume.

``supernet_trainable(config)`` trains one supernet (``config`` is a ``SupernetTrialConfig`` as a dict);
after every epoch it calls ``tune.report(metrics, checkpoint=...)`` with a checkpoint directory of
  * ``weights.npz``   — ``to_numpy(model)`` (parameters and BN buffers),
  * ``optimizer.npz`` — optimizer tensors (``optimizer_to_numpy``),
  * ``state.json``    — epochs done, weights version, optimizer scalars/param groups, sampler RNG.
When Tune restores the trial (failure retry, PBT exploit, ``Tuner.restore``), ``tune.get_checkpoint()``
is loaded and training continues with the epoch after the checkpoint's, under the trial's current
config (its learning rate, weight decay and momentum replace the checkpoint's). The reported metrics are those
of ``train_supernet`` plus ``weights_version`` (the content hash of ``weights.npz``).
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Callable

from raynas.metrics import WEIGHTS_VERSION
from raynas.supernet.sampling import SamplingRule
from raynas.supernet.train import apply_hyperparams, make_optimizer, train_supernet
from raynas.supernet.trial import build_trial
from raynas.supernet.weights import (
    load_npz,
    load_numpy,
    optimizer_load_numpy,
    optimizer_to_numpy,
    save_npz,
    to_numpy,
    weights_version,
)

WEIGHTS_FILE, OPTIMIZER_FILE, STATE_FILE = "weights.npz", "optimizer.npz", "state.json"
EPOCHS_DONE = "epochs_done"
OPTIMIZER_META, SAMPLER_STATE = "optimizer", "sampler"
ReportFn = Callable[..., None]


def write_checkpoint(directory: str | Path, model: Any, optimizer: Any, rule: SamplingRule, epochs_done: int) -> str:
    """Write the three checkpoint files into ``directory``; returns the weights version."""
    directory = Path(directory)
    arrays = to_numpy(model)
    save_npz(directory / WEIGHTS_FILE, arrays)
    opt_arrays, opt_meta = optimizer_to_numpy(optimizer)
    save_npz(directory / OPTIMIZER_FILE, opt_arrays)
    version = weights_version(arrays)
    state = {EPOCHS_DONE: epochs_done, WEIGHTS_VERSION: version, OPTIMIZER_META: opt_meta,
             SAMPLER_STATE: rule.state()}
    (directory / STATE_FILE).write_text(json.dumps(state))
    return version


def read_checkpoint(directory: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(weights arrays, state)`` of a checkpoint directory written by ``write_checkpoint``."""
    directory = Path(directory)
    return load_npz(directory / WEIGHTS_FILE), json.loads((directory / STATE_FILE).read_text())


def restore_checkpoint(directory: str | Path, model: Any, optimizer: Any, rule: SamplingRule | None = None) -> int:
    """Load a checkpoint into the model, optimizer and (unless ``None``: a few-shot child, which samples
    a sub-space of its own) rule; returns the epochs it had completed."""
    arrays, state = read_checkpoint(directory)
    load_numpy(model, arrays)
    optimizer_load_numpy(optimizer, load_npz(Path(directory) / OPTIMIZER_FILE), state[OPTIMIZER_META])
    if rule is not None:
        rule.load_state(state[SAMPLER_STATE])
    return int(state[EPOCHS_DONE])


def run_supernet_trial(config: dict[str, Any], report: ReportFn, checkpoint: Any = None) -> list[dict[str, Any]]:
    """Train as ``supernet_trainable`` does, with the reporting function and the starting checkpoint
    (a ``tune.Checkpoint`` or None) passed in; returns the metrics of the epochs trained here."""
    from ray import tune

    trial = build_trial(config)
    optimizer = make_optimizer(trial.model, trial.config.train)
    start = 0
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            start = restore_checkpoint(directory, trial.model, optimizer, trial.rule)
        apply_hyperparams(optimizer, trial.config.train)

    def on_epoch(epoch: int, metrics: dict[str, Any]) -> None:
        with tempfile.TemporaryDirectory() as directory:
            metrics[WEIGHTS_VERSION] = write_checkpoint(directory, trial.model, optimizer, trial.rule, epoch)
            report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))

    return train_supernet(trial.model, trial.rule, trial.splits, trial.config.train, eval_archs=trial.eval_archs,
                          optimizer=optimizer, start_epoch=start, on_epoch=on_epoch)


def supernet_trainable(config: dict[str, Any]) -> None:
    """Ray Tune function trainable: ``tune.Tuner(supernet_trainable, param_space=config)``."""
    from ray import tune

    run_supernet_trial(config, report=tune.report, checkpoint=tune.get_checkpoint())
