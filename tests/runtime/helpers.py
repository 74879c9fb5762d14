"""Helpers for runtime tests: build recipes from a base dict, collect candidate records, register a test
module's evaluator for a while."""
from __future__ import annotations

import contextlib
import sys

from raynas.recipes import apply_overrides, parse_recipe

BASE = {
    "name": "runtime-test", "seed": 0, "space": {"name": "nb201"},
    "evaluator": {"name": "tabular", "dataset": "cifar10", "fidelity": 12},
    "strategy": {"name": "rea", "population_size": 10, "sample_size": 3},
    "budget": {"sim_seconds": 3000}, "backend": {"name": "simulate", "workers": 1},
    "ray": {"num_cpus": 2},
}


def recipe(nb201_path, *overrides, **kw):
    return parse_recipe(apply_overrides(BASE, [f"evaluator.data_path={nb201_path}", *overrides]))


class Collector:
    """A SearchListener that keeps everything it is told."""

    def __init__(self):
        self.records, self.started, self.summary = [], None, None

    def on_start(self, info):
        self.started = info

    def on_candidate(self, record):
        self.records.append(record)

    def on_end(self, summary):
        self.summary = summary


@contextlib.contextmanager
def registered_by_value(module: str, name: str, cls: type):
    """``cls`` registered as evaluator ``name`` within the block, its test ``module`` pickled by value
    (Ray Tune workers need not import the test package)."""
    from ray import cloudpickle

    from raynas.evaluators import EVALUATORS

    cloudpickle.register_pickle_by_value(sys.modules[module])
    EVALUATORS.register(name)(cls)
    try:
        yield cls
    finally:
        EVALUATORS.unregister(name)
        cloudpickle.unregister_pickle_by_value(sys.modules[module])
