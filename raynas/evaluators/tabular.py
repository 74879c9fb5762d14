"""Tabular NAS-Bench-201 evaluator: looks results up in the real table; cost is simulated time.

Strategies see ``valid_acc`` (the fidelity's validation accuracy) and costs (FLOPs, params, optional
latency); the 200-epoch test accuracy is hidden (``test_acc``) and used for reporting only.

Simulated cost. The table has no training times (see its PROVENANCE.md), so the clock uses the model
documented beside the data, with named constants:
``epoch_seconds = T[dataset] * (FIXED_SHARE + (1 - FIXED_SHARE) * flops / mean_flops)`` and
``cost_s = epochs * epoch_seconds``; ``T`` is 10 s for CIFAR-10 (its 25k-image ``cifar10-valid`` split),
×2 for CIFAR-100 and ×6.068 for ImageNet16-120 (NATS-Bench's training-set-size scaling). A 12,000-s
CIFAR-10 budget buys about 100 evaluations at 12 epochs.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Literal

import numpy as np

from raynas.errors import RecipeError
from raynas.evaluators.base import EVALUATORS, Evaluator, Result
from raynas.evaluators.nb201_table import NB201TableMissing, load_table
from raynas.metrics import FLOPS, LATENCY, OPTIMUM_TEST_ACC, PARAMS, TEST_ACC, TEST_ACC_OF_BEST_VALID, VALID_ACC
from raynas.space.nb201 import NB201Space
from raynas.typed import bounded

CIFAR10, CIFAR100, IMAGENET16 = "cifar10", "cifar100", "ImageNet16-120"
Dataset = Literal["cifar10", "cifar100", "ImageNet16-120"]
PREFIX = {CIFAR10: "c10", CIFAR100: "c100", IMAGENET16: "in16"}
EPOCH_SECONDS = {CIFAR10: 10.0, CIFAR100: 20.0, IMAGENET16: 60.68}
FIXED_SHARE = 0.82
FIDELITIES = (12, 200)


def budget_for(dataset: str, cifar10_seconds: float = 12_000.0) -> float:
    """The simulated budget on ``dataset`` that buys as many evaluations as ``cifar10_seconds`` on CIFAR-10."""
    return cifar10_seconds * EPOCH_SECONDS[dataset] / EPOCH_SECONDS[CIFAR10]


@EVALUATORS.register("tabular")
class TabularNB201(Evaluator):
    """NAS-Bench-201 lookup on the simulated clock (``simulated = True``)."""

    simulated = True
    version = "nb201-v2"
    space_names = ("nb201",)

    @dataclasses.dataclass
    class Config:
        dataset: Dataset = CIFAR10
        fidelity: int = 12
        data_path: str | None = None
        latency_device: str | None = None
        wall_delay_s: float = bounded(0.0, ge=0)  # sleep per candidate: emulate a slow evaluator

        def validate(self, path: str) -> None:
            if self.fidelity not in FIDELITIES:
                raise RecipeError(f"{path}.fidelity", f"must be one of 12, 200, got {self.fidelity}")
            if self.fidelity == 200 and self.dataset != CIFAR10:
                raise RecipeError(f"{path}.fidelity", f"200-epoch validation accuracy exists only for "
                                  f"cifar10 in NAS-Bench-201; use 12 for {self.dataset}")

    def __init__(self, space: NB201Space, config: "TabularNB201.Config | None" = None,
                 config_path: str = "evaluator", *, storage_path: str | None = None) -> None:
        super().__init__(space, config, storage_path=storage_path)
        cfg = self.config
        try:
            table = load_table(cfg.data_path)
        except NB201TableMissing as err:
            raise RecipeError(f"{config_path}.data_path", str(err)) from None
        p = PREFIX[cfg.dataset]
        self._table = table
        self._valid = table.column(f"{p}_valid_{cfg.fidelity}")
        self._test = table.column(f"{p}_test_200")
        self._test_fid = table.column(f"{p}_test_12")
        self._flops = table.column(f"{p}_flops_m")
        self._params = table.column(f"{p}_params_mb")
        self._latency = None
        if cfg.latency_device:
            self._latency = table.latency(cfg.latency_device, f"{config_path}.latency_device")
        epoch_s = EPOCH_SECONDS[cfg.dataset] * (FIXED_SHARE + (1 - FIXED_SHARE) * self._flops / self._flops.mean())
        self._cost = cfg.fidelity * epoch_s

    def metrics(self) -> tuple[str, ...]:
        base = (VALID_ACC, FLOPS, PARAMS)
        return (*base, LATENCY) if self._latency is not None else base

    def _evaluate(self, archs: list) -> list[Result]:
        if self.config.wall_delay_s:
            time.sleep(self.config.wall_delay_s * len(archs))
        return [self._lookup(self._table.row(a)) for a in archs]

    def _lookup(self, row: int) -> Result:
        metrics = {VALID_ACC: float(self._valid[row]), FLOPS: float(self._flops[row]),
                   PARAMS: float(self._params[row])}
        if self._latency is not None:
            metrics[LATENCY] = float(self._latency[row])
        hidden = {TEST_ACC: float(self._test[row]), "test_acc_12": float(self._test_fid[row]),
                  "nb201_index": float(self._table.index[row])}
        return Result(metrics=metrics, cost_s=float(self._cost[row]), hidden=hidden)

    def reference(self) -> dict[str, float]:
        best_by_valid = int(np.argmax(self._valid))
        return {OPTIMUM_TEST_ACC: float(self._test.max()),
                TEST_ACC_OF_BEST_VALID: float(self._test[best_by_valid]),
                "mean_cost_s": float(self._cost.mean())}
