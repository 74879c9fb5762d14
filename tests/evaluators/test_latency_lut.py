"""Latency LUT for mbv3 (``raynas.evaluators.latency_lut``) on a tiny space: entries cover the space,
predictions rank real subnet latencies, JSON round-trips and is tied to its space config, and the
``raynas bench latency`` CLI, the ``cost`` evaluator and recipe constraints use it.

The supernet evaluator has no ``latency_device``/``lut_path`` fields, so the recipe-constraint test runs a
search whose evaluator is ``cost`` itself (``build_search`` then checks constraints on the same LUT)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from raynas.cli import main
from raynas.evaluators.cost import CostEvaluator
from raynas.evaluators.latency_lut import HEAD, STEM, LatencyLUT, block_key, measure_subnet, space_config
from raynas.metrics import LATENCY
from raynas.recipes import parse_recipe
from raynas.runtime import build_search
from raynas.space.mbv3 import MBV3Space
from raynas.supernet.mbv3 import MBV3Supernet
from tests.runtime.helpers import Collector
from tests.supernet.conftest import TINY_MBV3

REPO = Path(__file__).resolve().parents[2]
REPEATS, WARMUP = 20, 5
MEASURE_REPEATS, MEASURE_ROUNDS = 40, 20
NUM_ARCHS, MIN_SPEARMAN = 8, 0.6
SPACE = MBV3Space(MBV3Space.Config(**TINY_MBV3))


@pytest.fixture(scope="module")
def lut() -> LatencyLUT:
    return LatencyLUT.build(SPACE, device="cpu", repeats=REPEATS, warmup=WARMUP)


@pytest.fixture(scope="module")
def lut_file(lut, tmp_path_factory) -> Path:
    return lut.save(tmp_path_factory.mktemp("lut") / "tiny.json")


def spread_archs(space: MBV3Space, n: int, seed: int = 0) -> list:
    """``n`` archs from smallest to largest, evenly spaced in FLOPs rank among random samples."""
    rng = np.random.default_rng(seed)
    pool = {space.sample(rng) for _ in range(300)} | {space.smallest(), space.largest()}
    pool = sorted(pool, key=lambda a: (space.flops(a), space.to_str(a)))
    return [pool[i] for i in np.linspace(0, len(pool) - 1, n).round().astype(int)]


def spearman(a, b) -> float:
    def ranks(v):
        return np.argsort(np.argsort(v)).astype(float)
    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def test_entries_cover_every_block_the_space_can_use(lut):
    used = {block_key(SPACE, slot, a.kernels[slot], a.expands[slot])
            for a in SPACE.enumerate() for slot in SPACE.active_slots(a)}
    blocks = {k for k in lut.entries if k not in (STEM, HEAD)}
    assert blocks == used and {STEM, HEAD} <= set(lut.entries)
    assert all(v > 0 for v in lut.entries.values())
    # equivalent configs share an entry: far fewer entries than slots x kernels x expands
    assert len(blocks) < SPACE.num_slots * len(SPACE.kernel_choices) * len(SPACE.expand_choices)


def test_predictions_positive_and_ordered(lut):
    preds = [lut.predict(SPACE, a) for a in spread_archs(SPACE, NUM_ARCHS)]
    assert all(p > 0 for p in preds)
    assert lut.predict(SPACE, SPACE.largest()) > lut.predict(SPACE, SPACE.smallest())
    assert lut.predict(SPACE, SPACE.largest()) == pytest.approx(
        lut.entries[STEM] + lut.entries[HEAD]
        + sum(lut.entries[block_key(SPACE, s, SPACE.kernel_choices[-1], SPACE.expand_choices[-1])]
              for s in range(SPACE.num_slots)))


def test_equivalent_archs_predict_alike(lut):
    rng = np.random.default_rng(1)
    for _ in range(20):
        arch = SPACE.sample(rng)
        assert lut.predict(SPACE, arch) == lut.predict(SPACE, SPACE.normalize(arch))


def test_prediction_ranks_measured_subnet_latency(lut):
    """Measured in interleaved rounds, each arch's fastest round kept: a burst of load from elsewhere on
    the machine then slows one round of every arch instead of all rounds of a few."""
    archs = spread_archs(SPACE, NUM_ARCHS)
    net = MBV3Supernet(SPACE)
    rounds = [[measure_subnet(SPACE, a, "cpu", repeats=MEASURE_REPEATS // MEASURE_ROUNDS, warmup=WARMUP,
                              supernet=net) for a in archs] for _ in range(MEASURE_ROUNDS)]
    measured = np.min(rounds, axis=0).tolist()
    predicted = [lut.predict(SPACE, a) for a in archs]
    rho = spearman(predicted, measured)
    assert rho >= MIN_SPEARMAN, (rho, predicted, measured)


def test_save_load_round_trip(lut, lut_file):
    loaded = LatencyLUT.load(lut_file, SPACE)
    assert loaded.entries == lut.entries and loaded.meta == lut.meta
    meta = loaded.meta
    assert meta["device"] == "cpu" and meta["batch_size"] == 1 and meta["num_threads"] == 1
    assert meta["space_config"] == space_config(SPACE) and meta["space_config"]["head_width"] == 32
    assert {"device_name", "torch_version", "date", "repeats"} <= set(meta)
    arch = SPACE.sample(np.random.default_rng(2))
    assert loaded.predict(SPACE, arch) == lut.predict(SPACE, arch)


def test_other_space_config_raises(lut_file):
    other = MBV3Space(MBV3Space.Config(**{**TINY_MBV3, "head_width": 64}))
    with pytest.raises(ValueError, match=r"another mbv3 space config \(head_width: LUT 32 vs space 64\)"):
        LatencyLUT.load(lut_file, other)
    lut = LatencyLUT.load(lut_file)
    with pytest.raises(ValueError, match="head_width"):
        lut.predict(other, other.smallest())


def test_cost_evaluator_returns_latency(lut, lut_file):
    ev = CostEvaluator(SPACE, CostEvaluator.Config(latency_device="cpu", lut_path=str(lut_file)))
    archs = [SPACE.smallest(), SPACE.largest()]
    results = ev.evaluate(archs)
    for arch, res in zip(archs, results):
        assert res.metrics[LATENCY] == pytest.approx(lut.predict(SPACE, arch))
        assert res.metrics["flops_m"] == SPACE.flops(arch) and res.cost_s == 0


def test_recipe_latency_constraint_is_satisfied(lut, lut_file):
    limit = float(np.median([lut.predict(SPACE, a) for a in spread_archs(SPACE, 21)]))
    recipe = parse_recipe({
        "name": "lut-constraint", "seed": 0, "space": {"name": "mbv3", **TINY_MBV3},
        "evaluator": {"name": "cost", "latency_device": "cpu", "lut_path": str(lut_file)},
        "strategy": {"name": "random"}, "budget": {"max_candidates": 15},
        "backend": {"name": "simulate", "workers": 1},
        "constraints": [{"metric": LATENCY, "max": limit}],
    })
    col = Collector()
    summary = build_search(recipe, [col]).run()
    assert len(col.records) == 15 and summary.strategy_metrics["infeasible_skipped"] > 0
    assert all(rec.metrics[LATENCY] <= limit and rec.feasible for rec in col.records)


def test_cli_writes_a_lut(tmp_path):
    out = tmp_path / "cli.json"
    proc = subprocess.run(
        [sys.executable, "-m", "raynas", "bench", "latency", "--space-config", json.dumps(TINY_MBV3),
         "--device", "cpu", "--repeats", "3", "--out", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert str(out) in proc.stdout and "predicted latency of the largest subnet" in proc.stdout
    lut = LatencyLUT.load(out, SPACE)
    assert lut.meta["repeats"] == 3 and lut.predict(SPACE, SPACE.largest()) > 0


def test_cli_default_path_and_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    def bench(*args):
        return main(["bench", "latency", *args])
    assert bench("--space-config", json.dumps(TINY_MBV3), "--device", "cpu", "--repeats", "2") == 0
    assert (tmp_path / ".raynas" / "latency" / "mbv3-cpu.json").is_file()
    capsys.readouterr()
    assert bench("--space-config", '{"depths": [2, 1]}') == 2
    assert capsys.readouterr().err.startswith("raynas: error: space_config.depths:")
    assert bench("--recipe", str(REPO / "recipes" / "quickstart.yaml")) == 2
    assert "space.name" in capsys.readouterr().err
