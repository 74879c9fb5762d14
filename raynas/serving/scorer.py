"""``SubnetScorer``: scores subnets of one supernet in-process (what each ``SupernetServer`` runs).

Contract:
  * ``load(arrays)`` loads weights (a dict of numpy arrays, ``raynas.supernet.weights.to_numpy`` form)
    and returns their content hash ``weights_version(arrays)``; ``version`` is that hash (None before).
  * ``score(arch)`` recalibrates BN for ``arch`` on ``EvalData.calib`` (or restores the statistics
    cached for ``(canonical(arch), version)``), then returns ``{"valid_acc", "test_acc"}`` in percent
    (top-1 on the val / test split), ``eval_s`` (seconds spent) and ``bn_cached`` (bool).
    The result equals ``100 * raynas.supernet.train.evaluate_subnet`` with the same weights and
    calibration batches.
  * BN statistics are cached per ``(canonical arch, weights version)`` in a bounded LRU: restoring them is
    exact (recalibration is deterministic), and functionally equal archs share them.
"""
from __future__ import annotations

import time
import warnings
from typing import Any

from raynas.metrics import TEST_ACC, VALID_ACC
from raynas.serving.cache import LRUCache
from raynas.serving.spec import EvalData, ModelSpec, build_model, check_fits

EVAL_S, BN_CACHED = "eval_s", "bn_cached"
DEFAULT_BN_CACHE = 4096
PERCENT = 100.0


class NotLoadedError(RuntimeError):
    """A scorer was asked to score before any weights were loaded."""


class SubnetScorer:
    """A supernet with fixed evaluation data; see the module docstring."""

    def __init__(self, spec: ModelSpec, data: EvalData, num_threads: int | None = None,
                 bn_cache_size: int = DEFAULT_BN_CACHE) -> None:
        import torch

        from raynas.supernet.train import configure_threads, select_device

        configure_threads(num_threads)
        self.spec = spec
        self.space, model = build_model(spec)
        check_fits(self.space, data)
        self.device = select_device(spec.device)
        self.model = model.to(self.device).eval()
        tensor = lambda a: torch.tensor(a, device=self.device)  # noqa: E731  (a copy: refs are read-only)
        self.calib = [tensor(x) for x in data.calib]
        self.val = self._chunks(tensor(data.val_x), tensor(data.val_y), spec.eval_batch_size)
        self.test = self._chunks(tensor(data.test_x), tensor(data.test_y), spec.eval_batch_size)
        self.version: str | None = None
        self.bn_cache: LRUCache = LRUCache(bn_cache_size)

    @staticmethod
    def _chunks(x, y, size: int) -> list[tuple[Any, Any]]:
        return [(x[i:i + size], y[i:i + size]) for i in range(0, len(y), size)]

    def load(self, arrays: dict[str, Any]) -> str:
        """Load ``arrays`` into the supernet; returns (and sets) their content hash."""
        from raynas.supernet.weights import load_numpy, weights_version

        with warnings.catch_warnings():  # arrays from the object store are read-only views: copied by torch
            warnings.filterwarnings("ignore", message=".*not writable.*")
            load_numpy(self.model, arrays)
        self.model.eval()
        self.version = weights_version(arrays)
        self.bn_cache.clear()  # statistics of older versions can never be asked for again
        return self.version

    def score(self, arch: Any) -> dict[str, Any]:
        """Accuracies of ``arch`` (see the module docstring)."""
        from raynas.supernet.train import accuracy

        if self.version is None:
            raise NotLoadedError("no weights loaded: call load(arrays) first")
        start = time.perf_counter()
        cached = self.calibrate(arch)
        valid = accuracy(self.model, arch, self.val)
        test = accuracy(self.model, arch, self.test)
        return {VALID_ACC: PERCENT * valid, TEST_ACC: PERCENT * test,
                EVAL_S: time.perf_counter() - start, BN_CACHED: cached}

    def calibrate(self, arch: Any) -> bool:
        """Put ``arch``'s BN statistics in place (cached or recalibrated); True when cached."""
        from raynas.supernet.bn import batchnorms, recalibrate_bn

        key = (self.space.canonical(arch), self.version)
        stats = self.bn_cache.get(key)
        norms = batchnorms(self.model)
        if stats is not None:
            for bn, (mean, var, count) in zip(norms, stats):
                bn.running_mean.copy_(mean)
                bn.running_var.copy_(var)
                bn.num_batches_tracked.copy_(count)
            self.model.eval()
            return True
        recalibrate_bn(self.model, arch, self.calib, len(self.calib))
        self.bn_cache.put(key, [(bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone())
                                for bn in norms])
        return False
