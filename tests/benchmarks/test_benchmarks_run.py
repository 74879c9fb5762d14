"""Every benchmark script still runs end to end, in a tiny configuration (the real runs take minutes to
an hour; their figures live in docs/BENCHMARKS.md). Each runs as its own process, from a scratch
directory, without ``--write``: the docs are never touched."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUNS = {
    "nb201_search.py": (["--seeds", "2", "--datasets", "cifar10"], "| cifar10 | 12,000 s | REA |"),
    "nb201_strategies.py": (["--seeds", "1", "--workers", "1", "--datasets", "cifar10", "--strategies",
                             "map_elites,rea"], "MAP-Elites vs random search, coverage"),
    "zero_cost_proxies.py": (["--archs", "20"], "naswot"),
    "tracking_scale.py": (["--n", "30", "--tune-n", "10"], "| tune-callback | 10 |"),
    "overhead.py": (["--candidates", "8", "--delay", "0.01", "--batch", "auto,4", "--pause", "0"], "raw"),
    "driver_profile.py": (["--trials", "6", "--delay", "0.01"], "| driver total |"),
    # one worker count: each is one more Tune run of the same code
    "scaling.py": (["--workers", "2", "--per-worker", "3", "--delay", "0.05", "--saturation", "30",
                    "--router-calls", "5", "--cpus", "4"], "**Router**"),
    "serving_throughput.py": (["--archs", "4", "--repeats", "1", "--big-mb", "1"], "Hot swap"),
    "ranking_testbed.py": (["--archs", "3", "--seeds", "2", "--epochs", "1", "--dataset-config",
                            '{"train_size": 600, "val_size": 300, "test_size": 300}'], "**noise ceiling**"),
    # one method: the split trees' Tune trials are what the supernet tests cover, and they cost a minute here
    "few_shot_ranking.py": (["--archs", "4", "--seeds", "1", "--budget", "7", "--root-epochs", "2", "--gm-root", "1",
                             "--gm-mid", "1", "--methods", "uniform", "--rea", "0",
                             "--dataset-config", '{"train_size": 200, "val_size": 100, "test_size": 100}',
                             "--out", "few-shot.json"], "| one-shot, uniform (SPOS) |"),
    "scratch_asha.py": (["--budget", "6", "--epochs", "2", "--seeds", "0", "--retrain-seeds", "1"],
                        "| **asha mean** |"),
    "supernet_ranking.py": (["--archs", "4", "--epochs", "1", "--standalone-seeds", "2", "--supernet-seeds", "1",
                             "--pbt-population", "2", "--pbt-interval", "1"],
                            "PBT vs the non-PBT baseline at equal compute"),
    # 2 workers only: the per-shard row and the sync_bn row (1 worker adds a Ray Train run, not a code path)
    "supernet_training_scale.py": (["--workers", "2", "--batch-sizes", "32", "--steps", "2", "--warmup", "1",
                                    "--tiny"], "| global batch (sync_bn) |"),
    "nb201_tune.py": (["--strategy", "local_search", "--grid", "init_samples=5,10", "--seeds", "2",
                       "--datasets", "cifar10", "--workers", "1"], "init_samples"),
}


# Run from tests/benchmarks/test_benchmarks_training.py: a second file, so that ``make test``'s workers
# (pytest-xdist, a file per worker) run the two halves at once.
TRAINING = {"supernet_ranking.py", "ranking_testbed.py", "few_shot_ranking.py", "scratch_asha.py",
            "supernet_training_scale.py"}


def run_benchmark(script, tmp_path):
    """Run ``script`` with its tiny arguments from ``tmp_path``; it must exit 0 printing what it should."""
    args, expected = RUNS[script]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert expected in proc.stdout, proc.stdout[-3000:]


@pytest.mark.parametrize("script", sorted(set(RUNS) - TRAINING))
def test_benchmark_runs(script, tmp_path):
    run_benchmark(script, tmp_path)


def test_every_benchmark_script_is_exercised():
    scripts = {p.name for p in (REPO / "benchmarks").glob("*.py")} - {"__init__.py", "docs.py"}
    assert scripts == set(RUNS)
