"""PBT of data-parallel supernets: each member's Tune trial drives Ray Train runs (real Ray, gloo, torch).
Its own file, so that pytest-xdist runs it beside ``test_pbt.py``'s single-process members."""
from __future__ import annotations

import dataclasses

import pytest

from raynas.supernet.pbt import PBT_METRIC, run_pbt
from raynas.supernet.weights import weights_version
from tests.supernet.test_pbt import PBT, TRIAL


@pytest.mark.timeout(400)
def test_data_parallel_members_train_on_ray_train_workers(ray_local, tmp_path):
    """``train.workers: 2``: each member's Tune trial drives Ray Train runs of 2 gloo workers, one per
    perturbation interval; PBT exploits through the same checkpoint files, and the runs' directories
    are cleaned up as the members go (serving the result: test_pbt.py, the same files)."""
    from raynas.supernet.pbt import DDP_RUNS

    trial = {**TRIAL, "train": {**TRIAL["train"], "workers": 2, "cpus_per_worker": 0.5}}
    reuse = dataclasses.replace(PBT, reuse_actors=True)  # faster (fewer process starts); not reproducible
    result = run_pbt(trial, reuse, tmp_path / "tune", name="ddp")
    assert result.num_exploits >= 1 and result.best_metrics["epoch"] == 2
    assert all(r["workers"] == 2 and PBT_METRIC in r for h in result.histories for r in h)
    assert weights_version(result.best_weights) == result.best_metrics["weights_version"]
    runs = [run.name for member in (tmp_path / "tune" / f"ddp{DDP_RUNS}").iterdir() for run in member.iterdir()]
    assert len(runs) <= PBT.population and all(run.startswith("epochs-") for run in runs), runs  # the last per member
