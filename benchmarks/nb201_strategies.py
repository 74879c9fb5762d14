"""Every strategy on NAS-Bench-201, side by side with REA and random search (simulated clock).

For each dataset (budget = 12,000 s on CIFAR-10, scaled by training time elsewhere: ~100 evaluations)
and each strategy, over N seeds, measured uniformly from every search's candidates:
  * test accuracy (200 epochs) of the arch picked by validation accuracy: mean ± std, and the
    reduction of regret to the optimum relative to random search;
  * hypervolume of the (validation accuracy, FLOPs) front, reference (0 %, 1.1 × max FLOPs);
  * MAP-Elites grid coverage (FLOPs × pixel3 latency, 10 × 10 bins, FLOPs binned over the dataset's range)
    as a share of the cells any NB201 arch reaches, and QD-score (sum of the cells' best valid accuracy);
    MAP-Elites is given the same grid;
  * functional duplicates evaluated (what dedup saves);
  * on CIFAR-10, from one 1,000-evaluation search per seed: evaluations until the picked arch reaches
    94.0 % test (within the first 300), and coverage / QD-score after 100, 300 and 1,000 evaluations.
With ``--backend tune --backend-workers 4`` (or ``simulate`` with 4 virtual workers) every search runs
with 4 concurrent trials (asynchronous proposals; one candidate per trial) and a quarter of the simulated
budget (the same ~100 evaluations), without the long runs, into a section of its own.
Run:  .venv/bin/python -m benchmarks.nb201_strategies --seeds 30 [--write]   (from the repo root)
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from raynas.evaluators.nb201_table import load_table
from raynas.evaluators.tabular import PREFIX, budget_for
from raynas.recipes import parse_recipe
from raynas.recipes.loader import read_yaml
from raynas.runtime import build_search
from raynas.strategies.map_elites import Descriptor
from raynas.strategies.pareto import hypervolume_2d
from raynas.strategies.proxy_prefilter import ProxyPrefilter

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a source checkout: ``benchmarks.docs`` for --write
    sys.path.insert(0, str(ROOT))

DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
STRATEGIES = {
    "random": {"name": "random"},
    "rea": {"name": "rea"},
    "nsga2": {"name": "nsga2"},
    "map_elites": {"name": "map_elites"},
    "predictor_evolution": {"name": "predictor_evolution"},
    "proxy_prefilter": {"name": "proxy_prefilter"},
    "local_search": {"name": "local_search"},
    "bananas": {"name": "bananas"},
    # the ridge members scoring every arch of the space: the recipe's own strategy section, declared there once
    "bananas_ridge": read_yaml(ROOT / "recipes" / "nb201-bananas.yaml")["strategy"],
}
SIMULATE, TUNE = "simulate", "tune"
TUNE_CPUS = 4  # the local Ray a --backend tune run starts in each process
PROXY = ProxyPrefilter.Config().proxy  # the default proxy (naswot)
CACHE = ROOT / ".raynas" / "bench-cache"
CHECKED_ARCHS = 5  # archs whose cached proxy score is compared with a live computation
OPTIMUM = {"cifar10": 94.3733, "cifar100": 73.5133, "ImageNet16-120": 47.3111}
TARGET, TARGET_BUDGET = 94.0, 300
LONG_BUDGET, COVERAGE_AT = 1000, (100, 300, 1000)
LATENCY_DEVICE, LATENCY_MAX_MS, BINS = "pixel3", 40.0, 10
SECTION = "## All strategies on NAS-Bench-201 (benchmarks/nb201_strategies.py)"
PARALLEL_SECTION = "## All strategies on NAS-Bench-201, {backend} backend, {workers} workers (benchmarks/nb201_strategies.py)"
BACKEND = {"name": SIMULATE, "workers": 1}  # the backend section of every search; set by main()


def max_flops(dataset: str) -> float:
    return float(load_table().column(f"{PREFIX[dataset]}_flops_m").max())


def grid(dataset: str) -> list[Descriptor]:
    """FLOPs × latency bins; FLOPs over [0, 1.05 × the dataset's largest arch]."""
    return [Descriptor("flops_m", 0.0, round(1.05 * max_flops(dataset), 1), BINS),
            Descriptor("latency_ms", 0.0, LATENCY_MAX_MS, BINS)]


def cells_of(dataset: str, flops, latency) -> set[tuple[int, int]]:
    fl, lat = grid(dataset)
    return {(fl.bin(f), lat.bin(t)) for f, t in zip(flops, latency)}


def reachable_cells(dataset: str) -> int:
    """Grid cells that at least one of the 15,625 NB201 archs falls in (the coverage denominator)."""
    table = load_table()
    return len(cells_of(dataset, table.column(f"{PREFIX[dataset]}_flops_m"), table.column(f"lat_{LATENCY_DEVICE}")))


def strategy_config(name: str, dataset: str) -> dict:
    """The recipe default, except that MAP-Elites illuminates the grid the benchmark measures."""
    if name != "map_elites":
        return STRATEGIES[name]
    return {**STRATEGIES[name], "descriptors": [vars(d) for d in grid(dataset)]}


# --- the zero-cost proxy, precomputed -------------------------------------------------------------
# proxy_prefilter scores ~10 candidates per proposal with NASWOT on a real untrained network (~33 ms
# each): ~1,000 proxy runs per search, too slow for 90 searches x 5 seeds. The proxy is deterministic
# per arch (fixed init seed and batch), so it is computed once for all 15,625 archs (cached on disk) and
# the strategy's scorer looks it up: the same values the live scorer gives (checked on a few archs).
def proxy_path() -> Path:
    from raynas.evaluators.zero_cost import ZeroCostEvaluator

    return CACHE / f"nb201-{PROXY}-v{ZeroCostEvaluator.version}.npy"


def proxy_rows(rows: list[int]) -> list[float]:
    from raynas.runtime.search import proxy_scorer
    from raynas.space.nb201 import NB201Space

    space, table = NB201Space(), load_table()
    scorer = proxy_scorer(space, PROXY)
    return [scorer(space.from_str(table.arch_strs[r])) for r in rows]


def proxy_table(pool, workers: int) -> np.ndarray:
    """The proxy of every table row (computed with ``pool`` on first use, then read from the cache)."""
    path = proxy_path()
    if not path.exists():
        t0 = time.time()
        chunks = np.array_split(np.arange(len(load_table().arch_strs)), 16 * workers)
        values = np.concatenate([f.result() for f in [pool.submit(proxy_rows, c.tolist()) for c in chunks]])
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, values)
        print(f"{PROXY} of all {len(values):,} archs: {time.time() - t0:.0f} s (cached in {path})", file=sys.stderr)
    values = np.load(path)
    check = np.random.default_rng(0).choice(len(values), CHECKED_ARCHS, replace=False).tolist()
    if not np.allclose(values[check], proxy_rows(check)):
        raise RuntimeError(f"{path} disagrees with the live {PROXY}: delete it and rerun")
    return values


def table_scorer(values: np.ndarray):
    table = load_table()
    return lambda arch: float(values[table.row(arch)])


PROXY_NOTE = (f"`proxy_prefilter` scores {ProxyPrefilter.Config().screen} candidates per proposal with {PROXY} on an untrained "
              "network (~33 ms each on one CPU thread; not charged to the simulated clock, looked up here from the "
              "precomputed table).")
PROXY_VALUES: np.ndarray | None = None  # set in each worker process by ``init_worker``


def init_worker(backend: dict | None = None) -> None:
    """In each process: the proxy table, the searches' backend section and, for ``tune``, a local Ray."""
    global PROXY_VALUES
    if proxy_path().exists():
        PROXY_VALUES = np.load(proxy_path())
    if backend is not None:
        BACKEND.update(backend)
    if BACKEND["name"] == TUNE:
        from raynas.ray_env import ensure_ray

        ensure_ray(num_cpus=TUNE_CPUS)


def run(strategy: dict, dataset: str, seed: int, budget: dict):
    """One search; a ``tune`` backend keeps its experiment in a temporary directory, removed after."""
    with tempfile.TemporaryDirectory(prefix="nb201-strategies-") as storage:
        return search(strategy, dataset, seed, budget, storage)


def search(strategy: dict, dataset: str, seed: int, budget: dict, storage: str):
    recipe = parse_recipe({
        "name": "bench", "seed": seed, "space": {"name": "nb201"},
        "evaluator": {"name": "tabular", "dataset": dataset, "fidelity": 12, "latency_device": LATENCY_DEVICE},
        "strategy": strategy, "budget": budget, "backend": {**BACKEND, "storage_path": storage}})
    records = []

    class Keep:
        def on_start(self, info): pass
        def on_candidate(self, rec): records.append(rec)
        def on_end(self, summary): pass

    proxy = recipe.strategy.impl.scorer_proxy(recipe.strategy.config)
    scorer = None
    if proxy is not None:
        assert proxy == PROXY, "the cached proxy table holds only " + PROXY
        scorer = table_scorer(PROXY_VALUES if PROXY_VALUES is not None else np.load(proxy_path()))
    summary = build_search(recipe, [Keep()], scorer=scorer).run()
    return summary, records


def illumination(records, dataset: str) -> dict[str, float]:
    """Coverage (share of the reachable cells holding an evaluated arch) and QD-score."""
    cells: dict[tuple[int, int], float] = {}
    axes = grid(dataset)
    for r in records:
        cell = tuple(d.bin(r.metrics[d.metric]) for d in axes)
        cells[cell] = max(cells.get(cell, 0.0), r.metrics["valid_acc"])
    return {"coverage": len(cells) / reachable_cells(dataset), "qd": sum(cells.values())}


def front_metrics(records, dataset: str) -> dict[str, float]:
    pts = np.array([[r.metrics["valid_acc"], -r.metrics["flops_m"]] for r in records])
    hv = hypervolume_2d(pts, np.array([0.0, -1.1 * max_flops(dataset)]))
    dup = len(records) - len({r.canonical for r in records})
    return {"hv": hv, **illumination(records, dataset), "dups": dup}


MS_PER_PROPOSAL = "ms_per_proposal"  # the strategies' report() key for their own time per proposal


def evals_to_target(records) -> int | None:
    best = None
    for i, r in enumerate(records, start=1):
        if best is None or r.metrics["valid_acc"] > best.metrics["valid_acc"]:
            best = r
        if best.hidden["test_acc"] >= TARGET:
            return i
    return None


def one_search(name: str, dataset: str, seed: int) -> dict[str, float]:
    # with N workers, 1/N of the clock budget: the same ~100 evaluations as on one worker
    budget = {"sim_seconds": budget_for(dataset) / BACKEND["workers"]}
    summary, recs = run(strategy_config(name, dataset), dataset, seed, budget)
    return {"test": summary.best.hidden["test_acc"], "n": len(recs), **front_metrics(recs, dataset),
            "ms": summary.strategy_metrics.get(MS_PER_PROPOSAL, float("nan"))}


def one_long_run(name: str, seed: int) -> dict:
    """A 1,000-evaluation CIFAR-10 search: evaluations to the target (first 300) and the illumination
    after each of ``COVERAGE_AT`` evaluations (a prefix of the search = a search with that budget)."""
    dataset = "cifar10"
    recs = run(strategy_config(name, dataset), dataset, seed, {"max_candidates": LONG_BUDGET})[1]
    return {"target": evals_to_target(recs[:TARGET_BUDGET]),
            "illumination": {n: illumination(recs[:n], dataset) for n in COVERAGE_AT}}


def measure(pool, dataset: str, seeds: int, names: list[str]) -> dict[str, dict[str, list[float]]]:
    futures = {name: [pool.submit(one_search, name, dataset, s) for s in range(seeds)] for name in names}
    out = {}
    for name, futs in futures.items():
        rows = [f.result() for f in futs]
        out[name] = {key: [r[key] for r in rows] for key in rows[0]}
    return out


def long_runs(pool, seeds: int, names: list[str]) -> dict[str, list[dict]]:
    futures = {name: [pool.submit(one_long_run, name, s) for s in range(seeds)] for name in names}
    return {name: [f.result() for f in futs] for name, futs in futures.items()}


def coverage_table(long: dict[str, list[dict]]) -> list[str]:
    head = " | ".join(f"coverage @{n} | QD @{n}" for n in COVERAGE_AT)
    lines = [f"### Illumination vs evaluations (cifar10, {reachable_cells('cifar10')} reachable cells of "
             f"{BINS * BINS})", "", f"| strategy | {head} |", "|---|" + "---|" * (2 * len(COVERAGE_AT))]
    for name, runs in long.items():
        cols = []
        for n in COVERAGE_AT:
            ill = [r["illumination"][n] for r in runs]
            cols += [ms([i["coverage"] for i in ill]), f"{statistics.fmean(i['qd'] for i in ill):.0f}"]
        lines.append(f"| {name} | " + " | ".join(cols) + " |")
    cov = {name: [statistics.fmean(r["illumination"][n]["coverage"] for r in runs) for n in COVERAGE_AT]
           for name, runs in long.items()}
    notes = [PROXY_NOTE] if "proxy_prefilter" in cov else []
    if "map_elites" in cov:
        at = ", ".join(f"{m:.2f} vs {r:.2f} at {n}" for n, m, r in zip(COVERAGE_AT, cov["map_elites"], cov["random"]))
        notes.insert(0, f"MAP-Elites vs random search, coverage: {at} evaluations.")
    return lines + (["", " ".join(notes)] if notes else []) + [""]


def ms(values) -> str:
    return f"{statistics.fmean(values):.2f} ± {statistics.pstdev(values):.2f}"


def table(dataset: str, res, targets) -> list[str]:
    rand_regret = OPTIMUM[dataset] - statistics.fmean(res["random"]["test"])
    lines = [f"### {dataset} (budget {budget_for(dataset):,.0f} simulated s; grid: FLOPs 0–"
             f"{grid(dataset)[0].high} M × pixel3 latency 0–{LATENCY_MAX_MS:.0f} ms, {reachable_cells(dataset)} "
             f"reachable cells)", "",
             "| strategy | evals | test acc (picked by valid) | regret cut vs random | HV (acc × FLOPs) "
             "| grid coverage | QD-score | functional dups | evals to 94.0 (median; reached) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, c in res.items():
        regret = OPTIMUM[dataset] - statistics.fmean(c["test"])
        cut = (rand_regret - regret) / rand_regret if rand_regret > 0 else 0.0
        tgt = "–"
        if dataset == "cifar10" and name in targets:
            hit = [t for t in targets[name] if t is not None]
            tgt = f"{statistics.median(hit):.0f}; {len(hit)}/{len(targets[name])}" if hit else f"–; 0/{len(targets[name])}"
        lines.append(f"| {name} | {statistics.fmean(c['n']):.0f} | {ms(c['test'])} | {cut:+.0%} | {ms(c['hv'])} "
                     f"| {ms(c['coverage'])} | {statistics.fmean(c['qd']):.0f} | {statistics.fmean(c['dups']):.1f} | {tgt} |")
    timed = {name: statistics.fmean(c["ms"]) for name, c in res.items() if not np.isnan(c["ms"]).any()}
    if timed:
        lines += ["", "Strategy wall time per proposal (refits included; `ms_per_proposal` of `report()`): "
                  + ", ".join(f"{name} {v:.1f} ms" for name, v in timed.items()) + "."]
    return lines + [""]


def header(args, simulated: bool) -> list[str]:
    """The section's heading (the main one for the default backend) and its command line."""
    where = ("" if simulated else f" Backend `{args.backend}` with {args.backend_workers} workers (asynchronous "
             "proposals: a strategy is asked for the next candidates before the running ones finish; one "
             "candidate per trial), with 1/N of the simulated budget so that a search still gets ~100 evaluations "
             "(same compute, N times less search time); no 1,000-evaluation runs.")
    title = SECTION if simulated else PARALLEL_SECTION.format(backend=args.backend, workers=args.backend_workers)
    return [title, "", f"`{' '.join(['benchmarks/nb201_strategies.py', *sys.argv[1:]])}` — {args.seeds} seeds, "
            f"{time.strftime('%Y-%m-%d')}, {platform.machine()} ({platform.python_version()}); strategies at their "
            "recipe defaults (MAP-Elites illuminates the grid measured below); test accuracy is never seen by a "
            f"strategy. Coverage = share of the grid cells that some NB201 arch reaches.{where}", ""]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--workers", type=int, default=os.cpu_count(), help="processes running searches")
    ap.add_argument("--strategies", default=",".join(STRATEGIES), help="which strategies (random is always run: "
                    "it is the baseline); default: all")
    ap.add_argument("--backend", choices=(SIMULATE, TUNE), default=SIMULATE,
                    help=f"the searches' backend; {TUNE} runs each search as a Ray Tune experiment on a local "
                    f"Ray of {TUNE_CPUS} CPUs per process (no 1,000-evaluation runs then)")
    ap.add_argument("--backend-workers", type=int, default=1, help="concurrent trials of each search "
                    "(backend.workers: asynchronous proposals when > 1)")
    ap.add_argument("--write", action="store_true", help="write the section into docs/BENCHMARKS.md")
    args = ap.parse_args(argv)
    simulated = (args.backend, args.backend_workers) == (SIMULATE, 1)  # the default: the main section
    backend = dict(BACKEND) if simulated else {"name": args.backend, "workers": args.backend_workers,
                                               "candidates_per_trial": 1}  # one candidate per trial
    names = ["random", *[n for n in args.strategies.split(",") if n and n != "random"]]
    unknown = sorted(set(names) - set(STRATEGIES))
    if unknown:
        ap.error(f"unknown strategies {unknown}; known: {', '.join(STRATEGIES)}")
    t0 = time.time()
    if "proxy_prefilter" in names:
        with ProcessPoolExecutor(args.workers) as pool:
            proxy_table(pool, args.workers)
    with ProcessPoolExecutor(args.workers, initializer=init_worker, initargs=(backend,)) as pool:
        long = long_runs(pool, args.seeds, names) if simulated else {}
        results = {d: measure(pool, d, args.seeds, names) for d in args.datasets.split(",")}
    targets = {name: [r["target"] for r in runs] for name, runs in long.items()}
    lines = header(args, simulated)
    for dataset, res in results.items():
        lines += table(dataset, res, targets)
    lines += coverage_table(long) if long else []
    lines.append(f"Wall time of the whole benchmark: {time.time() - t0:.0f} s.")
    text = "\n".join(lines)
    from benchmarks.docs import publish

    publish(lines[0], text, args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
