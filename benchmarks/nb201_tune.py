"""Tune a strategy's options on NAS-Bench-201 on seeds disjoint from the reported ones (0..N-1).

Every combination of the ``--grid`` values runs one search per seed (``--first-seed`` ..) and dataset at
``benchmarks/nb201_strategies.py``'s budgets (~100 evaluations, simulated clock, 1 worker); printed:
mean ± standard error of the test accuracy of the arch picked by validation accuracy, per dataset,
and the sum of regrets to the optimum (the ranking criterion of docs/BENCHMARKS.md's tuning notes).

    .venv/bin/python -m benchmarks.nb201_tune --strategy local_search \\
        --grid init_samples=5,10,20 --grid restart_samples=1,5 --seeds 100 --first-seed 1000
"""
from __future__ import annotations

import argparse
import itertools
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor

import yaml

from benchmarks.nb201_strategies import DATASETS, OPTIMUM, init_worker, run
from raynas.evaluators.tabular import budget_for


def one(strategy: dict, dataset: str, seed: int) -> float:
    summary, _ = run(strategy, dataset, seed, {"sim_seconds": budget_for(dataset)})
    return summary.best.hidden["test_acc"]


def settings(name: str, grid: list[str]) -> list[dict]:
    """Every combination of ``field=v1,v2,…`` values (YAML scalars) as a strategy section."""
    fields = [g.split("=", 1) for g in grid]
    values = [[yaml.safe_load(v) for v in vals.split(",")] for _, vals in fields]
    return [{"name": name, **dict(zip([f for f, _ in fields], combo))} for combo in itertools.product(*values)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--strategy", required=True)
    ap.add_argument("--grid", action="append", default=[], help="field=v1,v2,… (repeatable)")
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--first-seed", type=int, default=1000)
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--workers", type=int, default=2, help="processes running searches")
    args = ap.parse_args(argv)
    datasets, seeds = args.datasets.split(","), range(args.first_seed, args.first_seed + args.seeds)
    print(f"seeds {seeds.start}..{seeds.stop - 1}; mean ± s.e. per dataset; sum of regrets", flush=True)
    with ProcessPoolExecutor(args.workers, initializer=init_worker) as pool:
        for setting in settings(args.strategy, args.grid):
            futs = {d: [pool.submit(one, setting, d, s) for s in seeds] for d in datasets}
            accs = {d: [f.result() for f in fs] for d, fs in futs.items()}
            cols = [f"{d} {statistics.fmean(a):.2f} ± {statistics.stdev(a) / len(a) ** 0.5:.2f}" for d, a in accs.items()]
            regret = sum(OPTIMUM[d] - statistics.fmean(a) for d, a in accs.items())
            opts = {k: v for k, v in setting.items() if k != "name"}
            print(f"{opts} | " + " | ".join(cols) + f" | {regret:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
