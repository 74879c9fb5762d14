"""Zero-cost proxies: score an *untrained* network from one batch, no training (seeds: "Zero-Cost
Proxies for Lightweight NAS", "NAS without training").

Each arch gets a freshly initialised stand-alone network (the space's supernet restricted to that arch,
initialised from ``Config.init_seed``, so every arch starts from the same seed) and one batch of real
data (``Config.dataset``, default scikit-learn digits):

* ``synflow`` — data-free: parameters replaced by their absolute values, an all-ones input, score
  ``Σ |θ ⊙ ∂R/∂θ|`` with ``R`` the sum of the outputs (computed in float64, BN in eval mode);
* ``naswot`` — log-determinant of the kernel ``K = C Cᵀ + (1−C)(1−C)ᵀ`` of the batch's binary ReLU
  activation codes ``C`` (Mellor et al.);
* ``grad_norm`` — ``Σ ‖∂L/∂θ‖₂`` of the cross-entropy loss;
* ``snip`` — ``Σ |θ ⊙ ∂L/∂θ|`` (connection sensitivity).
Larger is better for all four; a search maximises the first of ``proxies`` (``objective``). ``cost_s`` is
the wall time spent.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Literal

from raynas.errors import RecipeError
from raynas.evaluators.base import EVALUATORS, Evaluator, Result
from raynas.metrics import MAX
from raynas.typed import bounded

SYNFLOW, NASWOT, GRAD_NORM, SNIP = "synflow", "naswot", "grad_norm", "snip"
PROXIES = (SYNFLOW, NASWOT, GRAD_NORM, SNIP)
Proxy = Literal["synflow", "naswot", "grad_norm", "snip"]
SUPERNET_FOR_SPACE = {"nb201": "nb201", "mbv3": "mbv3"}


def _proxies_default() -> list[str]:
    return list(PROXIES)


@EVALUATORS.register("zero_cost")
class ZeroCostEvaluator(Evaluator):
    """Training-free proxies of untrained networks on one batch (see the module docstring)."""

    version = "1"

    @dataclasses.dataclass
    class Config:
        proxies: list[Proxy] = dataclasses.field(default_factory=_proxies_default)
        dataset: str = "digits"
        batch_size: int = bounded(64, gt=1)
        channels: int = bounded(16, gt=0)
        init_seed: int = bounded(0, ge=0)
        num_threads: int = bounded(1, gt=0)

        def validate(self, path: str) -> None:
            if not self.proxies:
                raise RecipeError(f"{path}.proxies", f"name at least one of {', '.join(PROXIES)}")

    def __init__(self, space, config=None, config_path: str = "evaluator", *, storage_path: str | None = None) -> None:
        super().__init__(space, config, storage_path=storage_path)
        self._batch = None

    def objective(self) -> tuple[str, str]:
        return self.config.proxies[0], MAX

    def prepare(self) -> None:
        """Check the dataset name at start (datasets import torch: ``raynas validate`` stays without it)."""
        from raynas.data import DATASETS

        if self.config.dataset not in DATASETS:
            raise RecipeError("evaluator.dataset", f"unknown dataset {self.config.dataset!r}; known: "
                              f"{', '.join(DATASETS.names())}")

    def metrics(self) -> tuple[str, ...]:
        return tuple(self.config.proxies)

    def batch(self):
        """One fixed batch of the dataset's training split (loaded once per process)."""
        if self._batch is None:
            from raynas.data import load_dataset

            splits = load_dataset(self.config.dataset)
            x, y = splits.train.tensors()
            self._batch = (x[: self.config.batch_size], y[: self.config.batch_size], splits)
        return self._batch

    def network(self, arch):
        from raynas.supernet import build_supernet

        _, _, splits = self.batch()
        cfg = {"seed": self.config.init_seed, "channels": self.config.channels,
               "in_channels": splits.in_channels, "num_classes": splits.num_classes}
        net = build_supernet(SUPERNET_FOR_SPACE[self.space.name], self.space, cfg)
        return functools.partial(net, arch=arch), net

    def scores(self, arch) -> dict[str, float]:
        import torch

        torch.set_num_threads(self.config.num_threads)
        x, y, _ = self.batch()
        return {name: float(PROXY_FNS[name](self, arch, x, y)) for name in self.config.proxies}

    def _evaluate(self, archs: list) -> list[Result]:
        return [Result(metrics=self.scores(a), cost_s=0.0) for a in archs]


def _synflow(ev: ZeroCostEvaluator, arch, x, y) -> float:
    import torch

    fn, net = ev.network(arch)
    net.double().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    out = fn(torch.ones_like(x[:1], dtype=torch.float64))
    out.sum().backward()
    return sum((p * p.grad).abs().sum().item() for p in net.parameters() if p.grad is not None)


def _naswot(ev: ZeroCostEvaluator, arch, x, y) -> float:
    import torch

    fn, net = ev.network(arch)
    codes = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: codes.append((out > 0).flatten(1).double()))
             for m in net.modules() if isinstance(m, torch.nn.ReLU)]
    with torch.no_grad():
        fn(x)
    for h in hooks:
        h.remove()
    c = torch.cat(codes, dim=1)
    k = c @ c.T + (1 - c) @ (1 - c).T
    return float(torch.slogdet(k).logabsdet)


def _loss_grads(ev: ZeroCostEvaluator, arch, x, y):
    import torch

    fn, net = ev.network(arch)
    net.train()
    torch.nn.functional.cross_entropy(fn(x), y).backward()
    return [p for p in net.parameters() if p.grad is not None]


def _grad_norm(ev: ZeroCostEvaluator, arch, x, y) -> float:
    return sum(p.grad.norm().item() for p in _loss_grads(ev, arch, x, y))


def _snip(ev: ZeroCostEvaluator, arch, x, y) -> float:
    return sum((p * p.grad).abs().sum().item() for p in _loss_grads(ev, arch, x, y))


PROXY_FNS = {SYNFLOW: _synflow, NASWOT: _naswot, GRAD_NORM: _grad_norm, SNIP: _snip}
