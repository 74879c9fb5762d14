"""Tabular NB201 evaluator: values equal the real table's, cost model, visibility, errors."""
from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pytest

from raynas.errors import RecipeError
from raynas.evaluators.nb201_table import NB201TableMissing, resolve_path
from raynas.evaluators.tabular import EPOCH_SECONDS, FIXED_SHARE, TabularNB201, budget_for
from raynas.space.nb201 import NB201Space

SPACE = NB201Space()


@pytest.fixture(scope="module")
def rows(nb201_path):
    with gzip.open(Path(nb201_path, "nb201.csv.gz"), "rt", newline="") as f:
        return list(csv.DictReader(f))


def make(nb201_path, **kw):
    return TabularNB201(SPACE, TabularNB201.Config(data_path=nb201_path, **kw))


@pytest.mark.parametrize("dataset,prefix,fidelity", [
    ("cifar10", "c10", 12), ("cifar10", "c10", 200), ("cifar100", "c100", 12), ("ImageNet16-120", "in16", 12)])
def test_values_equal_the_table(nb201_path, rows, dataset, prefix, fidelity):
    ev = make(nb201_path, dataset=dataset, fidelity=fidelity)
    picked = rows[::251]
    results = ev.evaluate([SPACE.from_str(r["arch"]) for r in picked])
    for row, res in zip(picked, results):
        assert res.metrics["valid_acc"] == pytest.approx(float(row[f"{prefix}_valid_{fidelity}"]))
        assert res.hidden["test_acc"] == pytest.approx(float(row[f"{prefix}_test_200"]))
        assert res.metrics["flops_m"] == pytest.approx(float(row[f"{prefix}_flops_m"]))
        assert res.hidden["nb201_index"] == int(row["index"])
        assert "test_acc" not in res.metrics  # strategies only see validation and cost
        assert res.evaluator == "tabular@nb201-v2"


def test_benchmark_index_order(nb201_path, rows):
    from raynas.evaluators.nb201_table import load_table

    table = load_table(nb201_path)
    for row in rows[::997]:
        assert table.index_of(SPACE.from_str(row["arch"])) == int(row["index"])
        assert table.arch_at(int(row["index"])) == row["arch"]


def test_cost_model_is_documented_formula_and_buys_about_100_evals(nb201_path, rows):
    ev = make(nb201_path)
    flops = np.array([float(r["c10_flops_m"]) for r in rows])
    arch = SPACE.from_str(rows[5]["arch"])
    expected = 12 * EPOCH_SECONDS["cifar10"] * (FIXED_SHARE + (1 - FIXED_SHARE) * flops[5] / flops.mean())
    assert ev.evaluate([arch])[0].cost_s == pytest.approx(expected)
    assert 12_000 / ev.reference()["mean_cost_s"] == pytest.approx(100, rel=0.01)
    assert budget_for("cifar100") == 24_000 and budget_for("ImageNet16-120") == pytest.approx(72_816)


def test_latency_device(nb201_path, rows):
    ev = make(nb201_path, latency_device="pixel3")
    res = ev.evaluate([SPACE.from_str(rows[0]["arch"])])[0]
    assert res.metrics["latency_ms"] == pytest.approx(float(rows[0]["lat_pixel3"]))
    with pytest.raises(RecipeError, match=r"evaluator.latency_device: unknown device 'abc'"):
        make(nb201_path, latency_device="abc")


def test_missing_table_is_a_clear_error(tmp_path):
    with pytest.raises(NB201TableMissing, match="not found at"):
        resolve_path(tmp_path)
    with pytest.raises(RecipeError, match=r"^evaluator.data_path: NAS-Bench-201 table not found"):
        TabularNB201(SPACE, TabularNB201.Config(data_path=str(tmp_path)))


def test_rejects_archs_outside_the_space(nb201_path):
    with pytest.raises(ValueError, match="not an arch"):
        make(nb201_path).evaluate([(9, 9, 9, 9, 9, 9)])


def test_reference_optimum(nb201_path):
    assert make(nb201_path).reference()["optimum_test_acc"] == pytest.approx(94.3733)
