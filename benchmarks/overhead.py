"""Orchestration overhead: the ``tune`` backend vs a raw Python loop running the same evaluator.

The evaluator is the tabular NAS-Bench-201 one with ``wall_delay_s`` (it sleeps that long per candidate,
so each candidate costs a fixed wall time), the strategy is random search, and both runners use the same
number of workers. The figure of merit is

    ratio = wall time / ideal time,   ideal = candidates * delay / workers

(1.00 would be a runner with no overhead at all). Goal: ratio <= 1.10 for the ``tune`` backend at
300 candidates, 0.2 s each, 2 workers (Ray Tune's own scalability benchmarks allow about 1.14).

* ``raw``: the random strategy and the evaluator driven from a ``ThreadPoolExecutor`` with ``workers``
  threads, one candidate per call (the evaluator sleeps, so threads run in parallel). The strategy is
  only touched from the main thread, as Tune touches a Searcher.
* ``tune batch=B``: ``build_search(recipe).run()`` with ``backend.name=tune``, ``backend.workers``
  and ``backend.candidates_per_trial=B`` (one Tune trial evaluates B candidates back to back),
  ``budget.max_candidates``, ``ray.num_cpus=workers``. Timed from ``Search.run`` start to end, i.e.
  Tuner construction, actor start-up, all trials and teardown. ``ray.init`` happens once, before,
  through ``ensure_ray(num_cpus=workers)``, and is timed and reported on its own.

Usage::

    .venv/bin/python benchmarks/overhead.py                    # 300 candidates, 0.2 s, 2 workers, batch 1,5,10
    .venv/bin/python benchmarks/overhead.py --candidates 60    # quick check
    .venv/bin/python benchmarks/overhead.py --repeats 3 --write   # best of 3, section into docs/BENCHMARKS.md

With ``--repeats R`` every runner runs R times and the best (lowest) wall time is reported, as with
``timeit``: noise from other processes only ever adds time. All runs are listed in the output.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a source checkout
    sys.path.insert(0, str(ROOT))

SECTION = "## Orchestration overhead (benchmarks/overhead.py)"
GOAL = 1.10
TUNE_REFERENCE = 1.14


@dataclass
class Run:
    """One timed run of one runner (times in wall seconds from the start of the run)."""

    wall_s: float
    candidates: int
    trials: int
    batch: int
    delay: float
    first_result_s: float  # when the first candidate result reached the driver
    last_result_s: float  # when the last one did

    @property
    def startup_s(self) -> float:
        """Time before the first trial began evaluating: first result less one trial's evaluations."""
        return max(0.0, self.first_result_s - self.batch * self.delay)

    @property
    def effective_workers(self) -> float:
        """Evaluation time over the time from start-up to the last result: ~workers if all ran."""
        span = self.last_result_s - self.startup_s
        return self.candidates * self.delay / span if span > 0 else float("nan")


@dataclass
class Measurement:
    """All repeats of one runner; the best (shortest) one is the reported figure."""

    label: str
    batch: int
    runs: list[Run] = field(default_factory=list)

    @property
    def best(self) -> Run:
        return min(self.runs, key=lambda r: r.wall_s)


def make_recipe(*, candidates: int, delay: float, workers: int, batch: int, storage: str | None,
                seed: int, name: str) -> Any:
    from raynas.recipes.schema import parse_recipe

    return parse_recipe({
        "name": name,
        "seed": seed,
        "space": {"name": "nb201"},
        "evaluator": {"name": "tabular", "dataset": "cifar10", "fidelity": 12, "wall_delay_s": delay},
        "strategy": {"name": "random"},
        "budget": {"max_candidates": candidates},
        "backend": {"name": "tune", "workers": workers, "candidates_per_trial": batch,
                    "storage_path": storage},
        "ray": {"num_cpus": workers},
    })


class _ResultTimes:
    """A SearchListener that notes when the first and the last candidate results reached the driver."""

    def __init__(self) -> None:
        self.first_s: float | None = None
        self.last_s: float | None = None

    def on_start(self, info: dict[str, Any]) -> None:
        pass

    def on_candidate(self, record: Any) -> None:
        if self.first_s is None:
            self.first_s = record.wall_s
        self.last_s = record.wall_s

    def on_end(self, summary: Any) -> None:
        pass


def run_raw(recipe: Any) -> Run:
    """The baseline: the recipe's random strategy and evaluator, ``workers`` threads, no Ray."""
    from raynas.runtime import build_search

    search = build_search(recipe)  # only for its space, evaluator and strategy (same seed, same table)
    space, evaluator, strategy = search.space, search.evaluator, search.strategy
    n, workers = recipe.budget.max_candidates, recipe.backend.workers
    issued = done = 0
    first = last = 0.0
    start = time.perf_counter()
    with cf.ThreadPoolExecutor(max_workers=workers) as pool:
        running: dict[cf.Future, str] = {}
        while done < n:
            while issued < n and len(running) < workers:
                cid = f"raw_{issued:06d}"
                arch = space.from_str(strategy.suggest(cid)["arch"])
                running[pool.submit(evaluator.evaluate, [arch])] = cid
                issued += 1
            finished, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            for fut in finished:
                cid = running.pop(fut)
                strategy.on_trial_complete(cid, dict(fut.result()[0].metrics))
                done += 1
                last = time.perf_counter() - start
                first = first or last
    wall = time.perf_counter() - start
    return Run(wall_s=wall, candidates=done, trials=done, batch=1, delay=evaluator.config.wall_delay_s,
               first_result_s=first, last_result_s=last)


def run_tune(recipe: Any) -> Run:
    """The ``tune`` backend exactly as ``raynas run`` drives it (Ray is already up)."""
    from raynas.runtime import build_search

    times = _ResultTimes()
    search = build_search(recipe, [times])  # loads the table: not part of the timed region
    start = time.perf_counter()
    summary = search.run()
    wall = time.perf_counter() - start
    n = recipe.budget.max_candidates
    if summary.num_candidates != n or summary.num_failed:
        raise RuntimeError(f"tune run evaluated {summary.num_candidates} of {n} candidates "
                           f"({summary.num_failed} failed)")
    batch = recipe.backend.candidates_per_trial
    return Run(wall_s=wall, candidates=summary.num_candidates, trials=-(-n // batch), batch=batch,
               delay=recipe.evaluator.config.wall_delay_s, first_result_s=times.first_s,
               last_result_s=times.last_s)


def ideal_s(candidates: int, delay: float, workers: int) -> float:
    return candidates * delay / workers


def overhead_per_trial_ms(run: Run, delay: float, workers: int) -> float:
    """Worker time lost per trial once running: (wall - start-up - ideal) * workers / trials."""
    lost = run.wall_s - run.startup_s - ideal_s(run.candidates, delay, workers)
    return lost * workers / run.trials * 1e3


# --- reporting -----------------------------------------------------------------------------------
def table(results: list[Measurement], args: argparse.Namespace) -> list[str]:
    ideal = ideal_s(args.candidates, args.delay, args.workers)
    rows = ["| runner | candidates / trial | trials | wall (s) | ratio | start-up (s) | ratio without start-up "
            "| effective workers | overhead / trial after start-up (ms) | all runs: ratio |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for m in results:
        b = m.best
        runs = ", ".join(f"{r.wall_s / ideal:.3f}" for r in m.runs)
        rows.append(f"| {m.label} | {m.batch} | {b.trials} | {b.wall_s:.2f} | **{b.wall_s / ideal:.3f}** | "
                    f"{b.startup_s:.2f} | {(b.wall_s - b.startup_s) / ideal:.3f} | {b.effective_workers:.2f} | "
                    f"{overhead_per_trial_ms(b, args.delay, args.workers):.0f} | {runs} |")
    return rows


def verdict(results: list[Measurement], args: argparse.Namespace) -> str:
    ideal = ideal_s(args.candidates, args.delay, args.workers)
    tune = [m for m in results if m.label == "tune"]
    if not tune:
        return "The `tune` backend was not measured."
    passing = sorted(m.batch for m in tune if m.best.wall_s / ideal <= GOAL)
    has_one = any(m.batch == 1 for m in tune)
    if 1 in passing:
        text = f"One trial per candidate meets the goal (ratio <= {GOAL:.2f})."
    elif passing:
        one = "One trial per candidate does **not** meet" if has_one else "One trial per candidate was not measured"
        text = (f"{one} the goal (ratio <= {GOAL:.2f}); batching candidates into trials does: "
                f"`backend.candidates_per_trial: {passing[0]}` is the smallest measured batch that meets it.")
    else:
        best = min(tune, key=lambda m: m.best.wall_s - m.best.startup_s)
        text = (f"No measured setting of the `tune` backend meets the goal (ratio <= {GOAL:.2f}). Start-up "
                f"makes the difference: without it, `candidates_per_trial: {best.batch}` would be at "
                f"{(best.best.wall_s - best.best.startup_s) / ideal:.3f}, and start-up has to stay under "
                f"{max(0.0, GOAL * ideal - (best.best.wall_s - best.best.startup_s)):.1f} s for it to meet "
                f"the goal.")
    # What one trial per candidate loses even with every worker running: the per-trial cost of the
    # rows that did run on all workers, against one candidate's evaluation time.
    full = [overhead_per_trial_ms(m.best, args.delay, args.workers) for m in tune
            if m.best.effective_workers >= 0.9 * args.workers]
    if full and has_one and 1 not in passing:
        per = max(0.0, min(full))
        text += (f" With every worker running, a trial still costs about {per:.0f} ms (the best row that ran "
                 f"on all workers), about {per / (args.delay * 1e3):.0%} of a {args.delay:g}-s candidate "
                 f"that has a trial of its own.")
    return text


ANALYSIS = """\
### Where the time goes

* **Start-up** (column *start-up*: time before the first trial began evaluating). Each Tune trial
  actor is a new Ray worker process, which imports `ray.tune` (with pandas and pyarrow) and raynas,
  and fetches the evaluator, before its first trial. This is paid once per `Search.run` and is the
  largest fixed cost; it is why the ratio falls as the number of candidates grows.
* **One trial per candidate: the actor re-use race** (column *effective workers*: evaluation time
  over the time from start-up to the last result, about `workers` when all of them ran). With
  `reuse_actors=True`, the actor of a finished trial is cached and handed to the oldest pending
  trial, and the actor Tune was starting for that trial is discarded (the design is explained in
  ray-project/ray#36020). When a trial (candidates per trial x delay) is shorter than the gap between
  the first and the second actor becoming ready, the second actor is discarded before it is ready,
  and every later trial repeats this: the search runs on a single worker, and each round starts,
  then throws away, another worker process, whose start-up competes for the CPUs (on a small
  machine this makes the run slower than one worker alone). Whether the second actor makes it in
  time is a race, so the one-per-trial figure is bimodal (effective workers about 1 or about 2).
  Batching makes the first trials long enough for every worker's actor to come up; from then on
  actors are re-used and no more are started. (Making each actor's first trial wait until every
  worker's actor is up would also remove the race; it needs a change to the trainable, not a Tune
  setting.)
* **Per trial, once running** (column *overhead / trial after start-up*: worker time lost per trial
  after start-up, including teardown). A trial costs a few actor round trips (reset the re-used
  actor, run, stop) plus Tune's bookkeeping in the single-threaded driver loop (trial object and
  directory, result processing, the trial's JSON in the experiment snapshot). Batching divides
  this by the batch size.
* **Settings in `run_tune`.** Trials stop on their single report (`stop={"training_iteration": 1}`),
  which saves the extra `train()` round trip Tune otherwise makes only to find out that the
  function has returned. Experiment snapshots (`TUNE_GLOBAL_CHECKPOINT_S`) stay at Tune's `auto`
  (no more often than every 10 s, and spaced so that they take at most about 5 % of the time): the
  last snapshot is forced and serializes every trial not saved yet, so a longer period would only
  move that work to the end of the run, where nothing overlaps it. Tune's per-trial JSON/CSV loggers are already off
  (`TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1`), and with local storage nothing is synced.
"""


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:  # not available on this platform
        return float("nan")


def section(results: list[Measurement], init_s: float, args: argparse.Namespace) -> str:
    import ray

    ideal = ideal_s(args.candidates, args.delay, args.workers)
    cmd = " ".join(["benchmarks/overhead.py", *sys.argv[1:]])
    lines = [
        SECTION,
        "",
        "How much wall time the `tune` backend adds to the evaluations themselves, against a raw Python "
        "loop running the same evaluator and random strategy on a thread pool.",
        "",
        f"* Evaluator: tabular NAS-Bench-201 (CIFAR-10) with `wall_delay_s: {args.delay:g}` (each candidate "
        f"sleeps {args.delay:g} s); strategy: random; {args.candidates} candidates; {args.workers} workers.",
        f"* **ratio = wall / ideal**, ideal = candidates x delay / workers = {args.candidates} x "
        f"{args.delay:g} / {args.workers} = {ideal:.2f} s. Goal: ratio <= {GOAL:.2f} (Ray Tune's own "
        f"scalability benchmarks allow about {TUNE_REFERENCE:.2f}).",
        f"* `tune`: `build_search(recipe).run()` with `backend.name: tune`, `backend.workers: {args.workers}`, "
        f"`backend.candidates_per_trial` as listed, `ray.num_cpus: {args.workers}`; timed from the start to "
        "the end of `Search.run` (Tuner set-up, actor start-up, all trials, teardown). `ray.init` is done "
        "once, before, and timed on its own.",
        f"* `raw`: `concurrent.futures.ThreadPoolExecutor({args.workers})`, one candidate per call, the "
        "strategy called from the main thread; no Ray.",
        f"* Best of {args.repeats} run(s) per row (noise only adds time); every run's ratio is listed.",
        "",
        *table(results, args),
        "",
        f"`ray.init` (`ensure_ray(num_cpus={args.workers})`, once, in no row): **{init_s:.2f} s**.",
        "",
        verdict(results, args),
        "",
        f"Measured {datetime.date.today().isoformat()} with `{cmd}` on {platform.machine()} "
        f"({os.cpu_count()} CPUs), Python {platform.python_version()}, Ray {ray.__version__}; "
        f"1-minute load average {args.load_before:.1f} before and {_load():.1f} after "
        f"(other work on the machine shows up as start-up time and as spread between runs).",
        "",
        ANALYSIS,
    ]
    return "\n".join(lines)


# --- main ----------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--candidates", type=int, default=300, help="candidates per run (default 300)")
    p.add_argument("--delay", type=float, default=0.2, help="evaluator wall seconds per candidate (0.2)")
    p.add_argument("--workers", type=int, default=2, help="parallel workers, and ray num_cpus (2)")
    p.add_argument("--batch", default="1,5,10",
                   help="comma-separated candidates_per_trial values for the tune backend (1,5,10)")
    p.add_argument("--repeats", type=int, default=1, help="runs per runner; the best is reported (1)")
    p.add_argument("--no-raw", action="store_true", help="skip the raw-loop baseline")
    p.add_argument("--pause", type=float, default=3.0,
                   help="seconds to wait between runs, for the previous run's processes to exit (3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--storage", default=None,
                   help="Tune storage_path (default: a temporary folder, deleted afterwards)")
    p.add_argument("--write", action="store_true",
                   help=f"write the results as the section '{SECTION[3:]}' of docs/BENCHMARKS.md")
    args = p.parse_args(argv)
    try:
        args.batches = [int(b) for b in args.batch.split(",") if b.strip()]
    except ValueError:
        p.error(f"--batch: expected comma-separated integers, got {args.batch!r}")
    if (args.candidates < 1 or args.delay <= 0 or args.workers < 1 or args.repeats < 1
            or args.pause < 0 or any(b < 1 for b in args.batches)):
        p.error("--candidates, --delay, --workers, --repeats and every --batch must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from raynas.ray_env import ensure_ray

    args.load_before = _load()
    ideal = ideal_s(args.candidates, args.delay, args.workers)
    print(f"{args.candidates} candidates x {args.delay:g} s on {args.workers} workers: ideal {ideal:.2f} s",
          flush=True)
    t = time.perf_counter()
    ensure_ray(num_cpus=args.workers)
    init_s = time.perf_counter() - t
    print(f"ray.init: {init_s:.2f} s", flush=True)

    storage = args.storage or tempfile.mkdtemp(prefix="raynas-overhead-")
    common = dict(candidates=args.candidates, delay=args.delay, workers=args.workers, seed=args.seed,
                  storage=storage)
    results: list[Measurement] = []
    if not args.no_raw:
        results.append(Measurement("raw", 1))
    results += [Measurement("tune", b) for b in args.batches]
    try:
        # Interleave the repeats (raw, tune b1, b5, ..., raw, ...) so that a noisy spell on a shared
        # machine does not land on one runner only.
        for rep in range(args.repeats):
            for m in results:
                time.sleep(args.pause)
                recipe = make_recipe(batch=m.batch, name=f"overhead_{m.label}_b{m.batch}_r{rep}", **common)
                run = run_raw(recipe) if m.label == "raw" else run_tune(recipe)
                m.runs.append(run)
                print(f"  [{rep + 1}/{args.repeats}] {m.label:4s} batch={m.batch:<3d} wall {run.wall_s:7.2f} s  "
                      f"ratio {run.wall_s / ideal:.3f}  start-up {run.startup_s:5.2f} s  "
                      f"effective workers {run.effective_workers:4.2f}  "
                      f"overhead/trial {overhead_per_trial_ms(run, args.delay, args.workers):5.0f} ms",
                      flush=True)
    finally:
        if args.storage is None:
            shutil.rmtree(storage, ignore_errors=True)

    text = section(results, init_s, args)
    from benchmarks.docs import publish

    print()
    publish(SECTION, text, args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
