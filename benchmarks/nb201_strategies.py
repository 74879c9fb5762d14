"""Every strategy on NAS-Bench-201, side by side with REA and random search (simulated clock).

For each dataset (budget = 12,000 s on CIFAR-10, scaled by training time elsewhere: ~100 evaluations)
and each strategy, over N seeds, measured uniformly from every search's candidates:
  * test accuracy (200 epochs) of the arch picked by validation accuracy: mean ± std, and the
    reduction of regret to the optimum relative to random search;
  * hypervolume of the (validation accuracy, FLOPs) front, reference (0 %, 1.1 × max FLOPs);
  * MAP-Elites grid coverage (FLOPs × pixel3 latency, 10 × 10 bins) and QD-score;
  * functional duplicates evaluated (what dedup saves);
  * on CIFAR-10 with a 300-evaluation budget: evaluations until the picked arch reaches 94.0 % test.
Run:  .venv/bin/python -m benchmarks.nb201_strategies --seeds 30 [--write]   (from the repo root)
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from raynas.evaluators.tabular import budget_for
from raynas.recipes import parse_recipe
from raynas.runtime import build_search
from raynas.strategies.map_elites import Descriptor
from raynas.strategies.pareto import hypervolume_2d

DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
STRATEGIES = {
    "random": {"name": "random"},
    "rea": {"name": "rea"},
    "nsga2": {"name": "nsga2"},
    "map_elites": {"name": "map_elites"},
    "predictor_evolution": {"name": "predictor_evolution"},
}
OPTIMUM = {"cifar10": 94.3733, "cifar100": 73.5133, "ImageNet16-120": 47.3111}
TARGET, TARGET_BUDGET = 94.0, 300
GRID = [Descriptor("flops_m", 0.0, 230.0, 10), Descriptor("latency_ms", 0.0, 40.0, 10)]
SECTION = "## All strategies on NAS-Bench-201 (benchmarks/nb201_strategies.py)"


def run(strategy: dict, dataset: str, seed: int, budget: dict):
    recipe = parse_recipe({
        "name": "bench", "seed": seed, "space": {"name": "nb201"},
        "evaluator": {"name": "tabular", "dataset": dataset, "fidelity": 12, "latency_device": "pixel3"},
        "strategy": strategy, "budget": budget, "backend": {"name": "simulate", "workers": 1}})
    records = []

    class Keep:
        def on_start(self, info): pass
        def on_candidate(self, rec): records.append(rec)
        def on_end(self, summary): pass

    summary = build_search(recipe, [Keep()]).run()
    return summary, records


def front_metrics(records, dataset: str) -> dict[str, float]:
    pts = np.array([[r.metrics["valid_acc"], -r.metrics["flops_m"]] for r in records])
    max_flops = 220.2 if dataset != "ImageNet16-120" else 55.1
    hv = hypervolume_2d(pts, np.array([0.0, -1.1 * max_flops]))
    cells: dict[tuple[int, int], float] = {}
    for r in records:
        cell = tuple(d.bin(r.metrics[d.metric]) for d in GRID)
        cells[cell] = max(cells.get(cell, 0.0), r.metrics["valid_acc"])
    dup = len(records) - len({r.canonical for r in records})
    return {"hv": hv, "coverage": len(cells) / 100, "qd": sum(cells.values()), "dups": dup}


def evals_to_target(records) -> int | None:
    best = None
    for i, r in enumerate(records, start=1):
        if best is None or r.metrics["valid_acc"] > best.metrics["valid_acc"]:
            best = r
        if best.hidden["test_acc"] >= TARGET:
            return i
    return None


def one_search(name: str, dataset: str, seed: int) -> dict[str, float]:
    summary, recs = run(STRATEGIES[name], dataset, seed, {"sim_seconds": budget_for(dataset)})
    return {"test": summary.best.hidden["test_acc"], "n": len(recs), **front_metrics(recs, dataset)}


def one_target_run(name: str, seed: int) -> int | None:
    return evals_to_target(run(STRATEGIES[name], "cifar10", seed, {"max_candidates": TARGET_BUDGET})[1])


def measure(pool, dataset: str, seeds: int) -> dict[str, dict[str, list[float]]]:
    futures = {name: [pool.submit(one_search, name, dataset, s) for s in range(seeds)] for name in STRATEGIES}
    out = {}
    for name, futs in futures.items():
        rows = [f.result() for f in futs]
        out[name] = {key: [r[key] for r in rows] for key in rows[0]}
    return out


def target_counts(pool, seeds: int) -> dict[str, list[int | None]]:
    futures = {name: [pool.submit(one_target_run, name, s) for s in range(seeds)] for name in STRATEGIES}
    return {name: [f.result() for f in futs] for name, futs in futures.items()}


def ms(values) -> str:
    return f"{statistics.fmean(values):.2f} ± {statistics.pstdev(values):.2f}"


def table(dataset: str, res, targets) -> list[str]:
    rand_regret = OPTIMUM[dataset] - statistics.fmean(res["random"]["test"])
    lines = [f"### {dataset} (budget {budget_for(dataset):,.0f} simulated s)", "",
             "| strategy | evals | test acc (picked by valid) | regret cut vs random | HV (acc × FLOPs) "
             "| grid coverage | QD-score | functional dups | evals to 94.0 (median; reached) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, c in res.items():
        regret = OPTIMUM[dataset] - statistics.fmean(c["test"])
        cut = (rand_regret - regret) / rand_regret if rand_regret > 0 else 0.0
        tgt = "–"
        if dataset == "cifar10":
            hit = [t for t in targets[name] if t is not None]
            tgt = f"{statistics.median(hit):.0f}; {len(hit)}/{len(targets[name])}" if hit else f"–; 0/{len(targets[name])}"
        lines.append(f"| {name} | {statistics.fmean(c['n']):.0f} | {ms(c['test'])} | {cut:+.0%} | {ms(c['hv'])} "
                     f"| {ms(c['coverage'])} | {statistics.fmean(c['qd']):.0f} | {statistics.fmean(c['dups']):.1f} | {tgt} |")
    return lines + [""]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--workers", type=int, default=os.cpu_count(), help="processes running searches")
    ap.add_argument("--write", action="store_true", help="write the section into docs/BENCHMARKS.md")
    args = ap.parse_args(argv)
    t0 = time.time()
    with ProcessPoolExecutor(args.workers) as pool:
        targets = target_counts(pool, args.seeds)
        results = {d: measure(pool, d, args.seeds) for d in args.datasets.split(",")}
    lines = [SECTION, "", f"`{' '.join(['benchmarks/nb201_strategies.py', *sys.argv[1:]])}` — {args.seeds} seeds, "
             f"{time.strftime('%Y-%m-%d')}, {platform.machine()} ({platform.python_version()}); strategies at their "
             "recipe defaults; test accuracy is never seen by a strategy.", ""]
    for dataset, res in results.items():
        lines += table(dataset, res, targets)
    lines.append(f"Wall time of the whole benchmark: {time.time() - t0:.0f} s.")
    text = "\n".join(lines)
    print(text)
    if args.write:
        from benchmarks.docs import write_section

        write_section(SECTION, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
