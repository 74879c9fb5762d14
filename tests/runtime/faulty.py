"""``FaultyTabular``: the NB201 table evaluator, failing on purpose (``registered()`` registers it).

An arch fails when its table row is a multiple of ``fail_every`` (1: every arch), with
``RuntimeError: evaluator exploded on row <row>``. With ``flaky_dir`` it fails only the first time each
such arch is evaluated (a marker file per row), so a retry succeeds. Pickled by value, so Ray Tune
workers need not import this test module."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from raynas.evaluators.tabular import TabularNB201
from tests.runtime.helpers import registered_by_value

FAULTY = "faulty_tabular"
EXPLODED = "RuntimeError: evaluator exploded on row"


class FaultyTabular(TabularNB201):
    @dataclasses.dataclass
    class Config(TabularNB201.Config):
        fail_every: int = 1
        flaky_dir: str | None = None

    def fails(self, arch) -> bool:
        return self._table.row(arch) % self.config.fail_every == 0

    def _evaluate(self, archs: list):
        for arch in archs:
            if self.fails(arch):
                self._explode(self._table.row(arch))
        return super()._evaluate(archs)

    def _explode(self, row: int) -> None:
        if self.config.flaky_dir is not None:
            marker = Path(self.config.flaky_dir) / str(row)
            if marker.exists():
                return
            marker.touch()
        raise RuntimeError(f"evaluator exploded on row {row}\nsecond line of the message")


def registered():
    """``FaultyTabular`` registered as ``faulty_tabular`` within the block."""
    return registered_by_value(__name__, FAULTY, FaultyTabular)
