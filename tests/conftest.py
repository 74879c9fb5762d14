"""Shared fixtures: the real NB201 table from ../shared/data, one local Ray session per module."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NB201_DIR = REPO.parent / "shared" / "data" / "nb201"


@pytest.fixture(scope="session")
def nb201_path() -> str:
    path = os.environ.get("RAYNAS_NB201_PATH", str(NB201_DIR))
    assert Path(path, "nb201.csv.gz").is_file(), f"NB201 table missing at {path}"
    return path


@pytest.fixture(scope="module")
def ray_local():
    """A private local Ray (never joins a stale cluster); one per test module."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


# The files that take a minute or more (measured in CI runs, docs: --durations), longest first. They are
# collected first, so that ``make test``'s xdist workers (``--dist loadfile``: whole files, handed out in
# collection order) start them at once and the many short files fill in around them; collected in the
# default order, one of them ran last on one worker while the other sat idle. A file missing from the
# list runs after these, in the default order.
LONG_FIRST = ("benchmarks/test_benchmarks_training.py", "benchmarks/test_benchmarks_run.py",
              "supernet/test_pbt.py", "supernet/test_ddp.py", "supernet/test_pbt_ddp.py", "supernet/test_fewshot.py",
              "cli/test_few_shot_e2e.py", "runtime/test_epochs.py", "clusters/test_faults.py",
              "cli/test_ddp_digits_e2e.py", "cli/test_scratch_asha_e2e.py", "cli/test_plugins_cli.py",
              "runtime/test_failures.py")


def pytest_collection_modifyitems(items):
    def rank(item) -> int:
        rel = Path(str(item.path)).relative_to(REPO / "tests").as_posix()
        return LONG_FIRST.index(rel) if rel in LONG_FIRST else len(LONG_FIRST)

    items.sort(key=rank)  # stable: each file's tests keep their order
