"""``CrashingScratch``: the scratch evaluator whose trial process dies (``os._exit``) once, in the middle
of a candidate's training, so Tune must restore the trial from its last per-epoch checkpoint.

The first run of each arch to reach ``crash_after`` epochs exits its process after checkpointing that
epoch (a marker file per arch in ``marker_dir`` makes it once only); every start from a checkpoint
writes ``resumed-<row>`` holding the epochs the checkpoint had done. Pickled by value, so Ray Tune
workers need not import this test module."""
from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

from raynas.evaluators.scratch import ScratchEvaluator, ScratchRun
from tests.runtime.helpers import registered_by_value

CRASHING = "crashing_scratch"
RESUMED = "resumed-"


def arch_key(arch_id: str) -> str:
    return hashlib.sha1(arch_id.encode()).hexdigest()[:12]


class CrashingRun(ScratchRun):
    def __init__(self, run, evaluator_id, marker: Path, crash_after: int) -> None:
        super().__init__(run, evaluator_id)
        self.marker, self.crash_after = marker, crash_after

    def run_epoch(self):
        if self.epochs_done == self.crash_after and not self.marker.exists():
            self.marker.touch()
            os._exit(1)  # the trial's process dies, as if killed
        return super().run_epoch()


class CrashingScratch(ScratchEvaluator):
    @dataclasses.dataclass
    class Config(ScratchEvaluator.Config):
        marker_dir: str = ""
        crash_after: int = 1

    def _start(self, arch, directory):
        run = super()._start(arch, directory)
        key = arch_key(self.space.to_str(arch))
        if directory is not None:
            (Path(self.config.marker_dir) / f"{RESUMED}{key}").write_text(str(run.epochs_done))
        return CrashingRun(run.run, self.id, Path(self.config.marker_dir) / key, self.config.crash_after)


def registered():
    """``CrashingScratch`` registered as ``crashing_scratch`` within the block."""
    return registered_by_value(__name__, CRASHING, CrashingScratch)
