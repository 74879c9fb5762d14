"""``toy_accuracy``: a made-up, seeded accuracy for archs of any space, on a simulated clock.

``valid_acc`` is a fixed random linear function of ``space.encode(arch)`` (its weights drawn from
``seed``) squashed into 0–100; ``test_acc`` (report-only) is the same minus ``test_gap``; each candidate
costs ``seconds`` of simulated time. Cheap and deterministic: for examples and tests, not for science.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from raynas.evaluators.base import EVALUATORS, Evaluator, Result
from raynas.metrics import TEST_ACC, VALID_ACC
from raynas.typed import bounded

PERCENT = 100.0


@EVALUATORS.register("toy_accuracy")
class ToyAccuracy(Evaluator):
    """A seeded linear score of the arch's encoding; works with every space."""

    simulated = True
    version = "1"

    @dataclasses.dataclass
    class Config:
        seed: int = bounded(0, ge=0)
        seconds: float = bounded(100.0, gt=0)  # simulated training time of one candidate
        test_gap: float = bounded(1.0, ge=0)  # test_acc = valid_acc - test_gap

    def __init__(self, space, config=None, *, storage_path: str | None = None) -> None:
        super().__init__(space, config, storage_path=storage_path)
        self.weights = np.random.default_rng(self.config.seed).normal(size=space.encoding_size)

    def metrics(self) -> tuple[str, ...]:
        return (VALID_ACC,)

    def accuracy(self, arch) -> float:
        z = float(self.space.encode(arch) @ self.weights) / math.sqrt(len(self.weights))
        return PERCENT / (1.0 + math.exp(-z))

    def _evaluate(self, archs: list) -> list[Result]:
        out = []
        for arch in archs:
            acc = self.accuracy(arch)
            out.append(Result(metrics={VALID_ACC: acc}, hidden={TEST_ACC: acc - self.config.test_gap},
                              cost_s=self.config.seconds))
        return out
