"""Cost evaluator: NB201 closed-form FLOPs/params equal the table on every row; latency per device;
recipe constraints are met by every proposal and decide the best."""
from __future__ import annotations

import re

import numpy as np
import pytest

from raynas.evaluators.cost import CostEvaluator, nb201_flops_params
from raynas.evaluators.nb201_table import load_table
from raynas.runtime import build_search
from raynas.space.nb201 import NB201Space
from tests.runtime.helpers import Collector, recipe

SPACE = NB201Space()


@pytest.mark.parametrize("dataset,prefix", [("cifar10", "c10"), ("cifar100", "c100"), ("ImageNet16-120", "in16")])
def test_closed_form_flops_params_match_every_row(nb201_path, dataset, prefix):
    table = load_table(nb201_path)
    archs = [SPACE.from_str(s) for s in table.arch_strs]
    fp = np.array([nb201_flops_params(a, dataset) for a in archs])
    assert np.abs(fp[:, 0] - table.column(f"{prefix}_flops_m")).max() < 1e-4 + 1e-6
    assert np.abs(fp[:, 1] - table.column(f"{prefix}_params_mb")).max() < 1e-4 + 1e-6


def test_latency_from_the_table(nb201_path):
    ev = CostEvaluator(SPACE, CostEvaluator.Config(latency_device="raspi4", data_path=nb201_path))
    table = load_table(nb201_path)
    arch = SPACE.from_str(table.arch_strs[42])
    res = ev.evaluate([arch])[0]
    assert res.metrics["latency_ms"] == pytest.approx(table.column("lat_raspi4")[42]) and res.cost_s == 0


@pytest.mark.parametrize("strategy", ["rea", "random", "nsga2", "predictor_evolution"])
def test_constraint_holds_for_every_proposal(nb201_path, strategy):
    col = Collector()
    r = recipe(nb201_path, f"strategy={{name: {strategy}}}", "evaluator.latency_device=pixel3",
               "constraints=[{metric: latency_ms, max: 12}]", "budget.sim_seconds=6000")
    summary = build_search(r, [col]).run()
    assert col.records and all(rec.metrics["latency_ms"] <= 12 for rec in col.records)
    assert all(rec.feasible for rec in col.records) and summary.best.metrics["latency_ms"] <= 12
    assert summary.strategy_metrics["infeasible_skipped"] > 0


def test_constraint_errors_name_the_field(nb201_path):
    from raynas.errors import RecipeError

    with pytest.raises(RecipeError, match=r"^constraints\[0\]: set max or min$"):
        recipe(nb201_path, "constraints=[{metric: latency_ms}]")


def test_constraints_on_two_devices_hold_and_are_recorded(nb201_path):
    col = Collector()
    r = recipe(nb201_path, "evaluator.latency_device=pixel3", "budget.sim_seconds=6000",
               "constraints=[{metric: latency_ms, max: 12}, {metric: latency_ms, max: 20, latency_device: raspi4}]")
    summary = build_search(r, [col]).run()
    table = load_table(nb201_path)
    raspi4 = [rec.metrics["latency_ms.raspi4"] for rec in col.records]
    assert col.records and max(raspi4) <= 20 and all(rec.metrics["latency_ms"] <= 12 for rec in col.records)
    assert raspi4 == [table.column("lat_raspi4")[table.row(SPACE.from_str(rec.arch))] for rec in col.records]
    assert summary.strategy_metrics["infeasible_skipped"] > 0


@pytest.mark.parametrize("constraint,field,message", [
    ("{metric: latency_ms, max: 5, latency_device: toaster}", "constraints[0].latency_device", "unknown device"),
    ("{metric: flops_m, max: 5, latency_device: raspi4}", "constraints[0].latency_device", "applies to latency_ms"),
    ("{metric: latency_ms, max: 5, lut_path: x.json}", "constraints[0].lut_path", "needs latency_device"),
])
def test_device_constraint_errors_name_the_field(nb201_path, constraint, field, message):
    from raynas.errors import RecipeError

    with pytest.raises(RecipeError, match=rf"^{re.escape(field)}: .*{message}"):
        build_search(recipe(nb201_path, f"constraints=[{constraint}]"))


@pytest.mark.parametrize("constraint,evaluator,available", [
    ("{metric: latncy_ms, max: 5}", "evaluator.latency_device=pixel3", "flops_m, latency_ms, params_mb, valid_acc"),
    ("{metric: latency_ms, max: 5}", "evaluator.fidelity=12", "flops_m, params_mb, valid_acc"),  # no latency
    ("{metric: test_acc, min: 50}", "evaluator.fidelity=12", "flops_m, params_mb, valid_acc"),  # report-only
])
def test_a_constraint_nothing_produces_is_an_error_listing_what_is(nb201_path, constraint, evaluator, available):
    from raynas.errors import RecipeError

    with pytest.raises(RecipeError) as err:
        build_search(recipe(nb201_path, evaluator, f"constraints=[{constraint}]"))
    assert str(err.value).startswith("constraints[0].metric: nothing in this recipe produces")
    assert str(err.value).endswith(f"; available: {available}")


def test_a_constraint_on_a_cost_the_evaluator_does_not_report_is_checked_and_recorded(nb201_path):
    """A FLOPs bound in a search whose evaluator reports no FLOPs (zero-cost proxies): the cost model
    checks it before evaluation and adds flops_m to every record."""
    col = Collector()
    r = recipe(nb201_path, "evaluator={name: zero_cost, proxies: [synflow], batch_size: 8, channels: 4}",
               "constraints=[{metric: flops_m, max: 60}]", "budget={max_candidates: 6}")
    build_search(r, [col]).run()
    assert len(col.records) == 6 and all(rec.metrics["flops_m"] <= 60 and rec.feasible for rec in col.records)


def test_a_result_missing_a_constrained_metric_is_an_error_not_a_pass():
    from raynas.strategies.constraints import Constraint, MissingMetricError, satisfied

    bound = Constraint(metric="latency_ms", max=5)
    assert satisfied([bound], {"latency_ms": 4.0}) and not satisfied([bound], {"latency_ms": 6.0})
    with pytest.raises(MissingMetricError, match="latency_ms.*it has: valid_acc"):
        satisfied([bound], {"valid_acc": 90.0})


def test_an_unknown_zero_cost_dataset_fails_at_start_naming_the_field(nb201_path):
    from raynas.errors import RecipeError

    search = build_search(recipe(nb201_path, "evaluator={name: zero_cost, dataset: digitz}",
                                 "budget={max_candidates: 2}"))
    with pytest.raises(RecipeError, match=r"^evaluator.dataset: unknown dataset 'digitz'; known: cifar10, digits"):
        search.run()
