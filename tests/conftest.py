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
