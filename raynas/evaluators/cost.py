"""Hardware cost: FLOPs, params and latency of an arch without training it.

* NB201: FLOPs (M) and params (MB) in closed form — ``base + n3·per_conv3x3 + n1·per_conv1x1`` with
  the published NB201 reference values (the same constants the data's ``verify.py`` checks every row
  against); latency from the table's per-device columns (``lat_<device>``, 27 devices).
* Other spaces: ``space.flops(arch)``/``space.params(arch)`` when the space has them, and latency from
  an op-wise lookup table built on the current machine (``raynas bench latency``), when given.

``CostEvaluator`` is registered as ``cost``: a zero-cost evaluator (``cost_s`` = 0), also used to check
recipe ``constraints`` before a candidate is evaluated.
"""
from __future__ import annotations

import dataclasses
from typing import Literal

from raynas.errors import RecipeError
from raynas.evaluators.base import EVALUATORS, Evaluator, Result
from raynas.metrics import FLOPS, LATENCY, MIN, PARAMS
from raynas.space.nb201 import OPS

CONV3, CONV1 = OPS.index("nor_conv_3x3"), OPS.index("nor_conv_1x1")
# dataset -> (flops_min, flops_max, flops_min_plus_one_conv1x1, params_min, params_max); see module doc
NB201_REF = {
    "cifar10": (7.78305, 220.11969, 11.71521, 0.073306, 1.531546),
    "cifar100": (7.7889, 220.12554, 11.72106, 0.079156, 1.537396),
    "ImageNet16-120": (1.9534, 55.03756, 2.93644, 0.080456, 1.538696),
}
NB201_PARAMS_CONV1 = 0.107156 - 0.079156  # params (MB) of one nor_conv_1x1 edge, every dataset
NB201_EDGES = 6


def nb201_flops_params(arch: tuple[int, ...], dataset: str = "cifar10") -> tuple[float, float]:
    """FLOPs (M) and params (MB) of an NB201 arch by NB201's counting rules (exact to 1e-4)."""
    fmin, fmax, f1, pmin, pmax = NB201_REF[dataset]
    n3, n1 = arch.count(CONV3), arch.count(CONV1)
    flops = fmin + n3 * (fmax - fmin) / NB201_EDGES + n1 * (f1 - fmin)
    params = pmin + n3 * (pmax - pmin) / NB201_EDGES + n1 * NB201_PARAMS_CONV1
    return flops, params


@EVALUATORS.register("cost")
class CostEvaluator(Evaluator):
    """FLOPs/params/latency of archs; costs nothing on the search clock."""

    simulated = True
    version = "1"

    @dataclasses.dataclass
    class Config:
        dataset: Literal["cifar10", "cifar100", "ImageNet16-120"] = "cifar10"
        latency_device: str | None = None  # NB201: a table device; other spaces: a LUT file's device
        data_path: str | None = None  # NB201 table (only needed for latency)
        lut_path: str | None = None  # op-wise latency LUT (JSON) from ``raynas bench latency``

    def __init__(self, space, config=None, config_path: str = "evaluator", *, storage_path: str | None = None) -> None:
        super().__init__(space, config, storage_path=storage_path)
        self._table = self._lut = self._latencies = None  # the latency model, when latency_device is set
        if self.config.latency_device:
            self._load_latency_model(config_path)

    def _load_latency_model(self, path: str) -> None:
        cfg = self.config
        if self.space.name == "nb201":
            from raynas.evaluators.nb201_table import load_table

            self._table = load_table(cfg.data_path)
            self._latencies = self._table.latency(cfg.latency_device, f"{path}.latency_device")
            return
        if cfg.lut_path is None:
            raise RecipeError(f"{path}.lut_path", "a latency LUT is needed for this space "
                              "(build one with `raynas bench latency`)")
        from raynas.evaluators.latency_lut import LatencyLUT

        self._lut = LatencyLUT.load(cfg.lut_path)

    def latency(self, arch) -> float | None:
        """Latency (ms) on ``latency_device`` by the table or the LUT; None without a device."""
        if self._latencies is not None:
            return float(self._latencies[self._table.row(arch)])
        return self._lut.predict(self.space, arch) if self._lut is not None else None

    def metrics(self) -> tuple[str, ...]:
        """FLOPs and params (when the space has them); latency with a latency model (``latency_device``)."""
        has_latency = self._latencies is not None or self._lut is not None
        sizes = (FLOPS, PARAMS) if self._has_sizes() else ()
        return (*sizes, LATENCY) if has_latency else sizes

    def _has_sizes(self) -> bool:
        """NB201 in closed form, other spaces when they count their own FLOPs and params."""
        return self.space.name == "nb201" or (hasattr(self.space, "flops") and hasattr(self.space, "params"))

    def objective(self) -> tuple[str, str]:
        """A cost-only search looks for the cheapest arch (by FLOPs)."""
        return FLOPS, MIN

    def costs(self, arch) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.space.name == "nb201":
            out[FLOPS], out[PARAMS] = nb201_flops_params(arch, self.config.dataset)
        elif self._has_sizes():
            out[FLOPS], out[PARAMS] = float(self.space.flops(arch)), float(self.space.params(arch))
        latency = self.latency(arch)
        if latency is not None:
            out[LATENCY] = latency
        return out

    def _evaluate(self, archs: list) -> list[Result]:
        return [Result(metrics=self.costs(a), cost_s=0.0) for a in archs]
