"""The Ray Tune supernet trainable: per-epoch reports with npz checkpoints, resume after a crash.

The trial crashes right after its first report; Tune retries it (``max_failures=1``) from the latest
checkpoint, and the retry must continue with epoch 2 instead of starting over."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from raynas.supernet.trainable import STATE_FILE, WEIGHTS_FILE, read_checkpoint, run_supernet_trial
from raynas.supernet.weights import weights_version
from tests.supernet.conftest import TINY_MBV3

LOG, MARKER = "report_log", "crash_marker"


def crash_after_first_report(config):
    """Train like ``supernet_trainable``, log every reported epoch, and crash once after the first."""
    from ray import tune

    log, marker = Path(config.pop(LOG)), Path(config.pop(MARKER))

    def report(metrics, checkpoint=None):
        tune.report(metrics, checkpoint=checkpoint)
        with log.open("a") as f:
            f.write(json.dumps({"epoch": metrics["epoch"], "version": metrics["weights_version"]}) + "\n")
        if not marker.exists():
            marker.touch()
            raise RuntimeError("injected crash after the first report")

    run_supernet_trial(config, report=report, checkpoint=tune.get_checkpoint())


@pytest.mark.timeout(300)
def test_trainable_checkpoints_and_resumes_from_the_checkpoint_epoch(ray_local, tmp_path):
    from ray import tune

    config = {
        "space": "mbv3", "space_config": TINY_MBV3, "sampling": "uniform", "dataset": "digits",
        "train": {"epochs": 2, "batch_size": 128, "num_threads": 1, "device": "cpu"},
        LOG: str(tmp_path / "log.jsonl"), MARKER: str(tmp_path / "crashed"),
    }
    tuner = tune.Tuner(
        tune.with_resources(crash_after_first_report, {"cpu": 1}), param_space=config,
        run_config=tune.RunConfig(name="supernet", storage_path=str(tmp_path / "tune"), verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=1)))
    result = tuner.fit()[0]
    assert result.error is None
    epochs = [json.loads(line)["epoch"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]  # the retry resumed after epoch 1 rather than starting over
    assert result.metrics["epoch"] == 2 and "val_acc_largest" in result.metrics
    with result.checkpoint.as_directory() as directory:
        assert {WEIGHTS_FILE, STATE_FILE} <= {p.name for p in Path(directory).iterdir()}
        arrays, state = read_checkpoint(directory)
    assert state["epochs_done"] == 2
    assert weights_version(arrays) == state["weights_version"] == result.metrics["weights_version"]
