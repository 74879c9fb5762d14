"""The benchmark scripts that train supernets or stand-alone networks, run like the others
(``test_benchmarks_run.py``) in a tiny configuration."""
from __future__ import annotations

import pytest

from tests.benchmarks.test_benchmarks_run import TRAINING, run_benchmark


@pytest.mark.parametrize("script", sorted(TRAINING))
def test_training_benchmark_runs(script, tmp_path):
    run_benchmark(script, tmp_path)
