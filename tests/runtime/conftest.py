"""Fixtures of the runtime tests."""
from __future__ import annotations

import pytest

from tests.runtime import faulty


@pytest.fixture
def faulty_evaluator():
    """``FaultyTabular`` (``tests.runtime.faulty``) registered as ``faulty_tabular`` for one test."""
    with faulty.registered() as cls:
        yield cls
