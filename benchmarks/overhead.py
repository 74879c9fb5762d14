"""Orchestration overhead: the ``tune`` backend vs a raw Python loop running the same evaluator.

The evaluator is the tabular NAS-Bench-201 one with ``wall_delay_s`` (it sleeps that long per candidate,
so each candidate costs a fixed wall time), the strategy is random search, and both runners use the same
number of workers. The figure of merit is

    ratio = wall time / ideal time,   ideal = candidates * delay / workers

(1.00 would be a runner with no overhead at all). Goal: ratio <= 1.10 for the ``tune`` backend with its
default ``backend.candidates_per_trial: auto`` at 2,000 and 10,000 candidates, with 0.1-s and 1-s
evaluations (Ray Tune's own scalability benchmark, 10,000 1-s trials on 16 cores, is at 1.14).

* A *case* is ``CANDIDATES:DELAY:WORKERS[:B/B...]`` (``--case``, repeatable, with its own
  ``candidates_per_trial`` values or ``--batch``'s; ``--candidates/--delay/--workers`` give one). Workers only sleep, so a case may have more workers than the machine has cores: Ray is
  started with ``num_cpus`` = the most workers of any case (logical CPUs, as in Ray's own benchmark).
* ``raw``: the random strategy and the evaluator driven from a ``ThreadPoolExecutor`` with ``workers``
  threads, one candidate per call (the evaluator sleeps, so threads run in parallel). The strategy is
  only touched from the main thread, as Tune touches a Searcher.
* ``tune batch=B``: ``build_search(recipe).run()`` with ``backend.name=tune``, ``backend.workers``
  and ``backend.candidates_per_trial=B`` (``auto``, the default, or a number: one Tune trial evaluates
  B candidates back to back), ``budget.max_candidates``. Timed from ``Search.run`` start to end, i.e.
  Tuner construction, actor start-up, all trials and teardown. ``ray.init`` happens once, before,
  through ``ensure_ray``, and is timed and reported on its own.

Usage::

    .venv/bin/python benchmarks/overhead.py                        # 300 x 0.2 s on 2 workers, auto,1,10
    .venv/bin/python benchmarks/overhead.py --candidates 60        # quick check
    .venv/bin/python benchmarks/overhead.py --no-raw --batch auto,1 --case 2000:0.1:2 --case 10000:0.1:2 \
        --case 2000:1:16 --case 10000:1:16 --write                 # the scale goal (about 40 min)

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

from raynas.recipes.schema import AUTO  # noqa: E402

SECTION = "## Orchestration overhead (benchmarks/overhead.py)"
GOAL = 1.10
TUNE_REFERENCE = 1.14


@dataclass(frozen=True)
class Case:
    """One setting: ``candidates`` evaluations of ``delay`` wall seconds each on ``workers`` workers."""

    candidates: int
    delay: float
    workers: int
    batches: tuple[int | str, ...] = ()  # the case's own candidates_per_trial values (default: --batch)

    @property
    def ideal_s(self) -> float:
        return self.candidates * self.delay / self.workers

    def __str__(self) -> str:
        return f"{self.candidates:,} x {self.delay:g} s on {self.workers}"


@dataclass
class Run:
    """One timed run of one runner (times in wall seconds from the start of the run)."""

    wall_s: float
    candidates: int
    trials: int
    first_batch: int  # candidates in the trial whose result came first
    delay: float
    first_result_s: float  # when the first candidate result reached the driver
    last_result_s: float  # when the last one did

    @property
    def startup_s(self) -> float:
        """Time before the first trial began evaluating: first result less that trial's evaluations."""
        return max(0.0, self.first_result_s - self.first_batch * self.delay)

    @property
    def effective_workers(self) -> float:
        """Evaluation time over the time from start-up to the last result: ~workers if all ran."""
        span = self.last_result_s - self.startup_s
        return self.candidates * self.delay / span if span > 0 else float("nan")


@dataclass
class Measurement:
    """All repeats of one runner on one case; the best (shortest) one is the reported figure."""

    case: Case
    label: str
    batch: int | str
    runs: list[Run] = field(default_factory=list)

    @property
    def best(self) -> Run:
        return min(self.runs, key=lambda r: r.wall_s)

    @property
    def ratio(self) -> float:
        return self.best.wall_s / self.case.ideal_s


def make_recipe(*, candidates: int, delay: float, workers: int, batch: int | str, storage: str | None,
                seed: int, name: str, num_cpus: int | None = None) -> Any:
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
        "ray": {"num_cpus": num_cpus or workers},
    })


class ResultTimes:
    """A SearchListener noting when each candidate's result reached the driver (``wall``, seconds since
    the search started) and the trials they came in (``trials``: trial id -> candidates, in the order
    results came)."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.trials: dict[str, int] = {}

    @property
    def first_s(self) -> float | None:
        return self.wall[0] if self.wall else None

    @property
    def last_s(self) -> float | None:
        return self.wall[-1] if self.wall else None

    def on_start(self, info: dict[str, Any]) -> None:
        pass

    def on_candidate(self, record: Any) -> None:
        self.wall.append(record.wall_s)
        self.trials[record.trial_id] = self.trials.get(record.trial_id, 0) + 1

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
    return Run(wall_s=wall, candidates=done, trials=done, first_batch=1, delay=evaluator.config.wall_delay_s,
               first_result_s=first, last_result_s=last)


def run_tune(recipe: Any) -> Run:
    """The ``tune`` backend exactly as ``raynas run`` drives it (Ray is already up)."""
    from raynas.runtime import build_search

    times = ResultTimes()
    search = build_search(recipe, [times])  # loads the table: not part of the timed region
    start = time.perf_counter()
    summary = search.run()
    wall = time.perf_counter() - start
    n = recipe.budget.max_candidates
    if summary.num_candidates != n or summary.num_failed:
        raise RuntimeError(f"tune run evaluated {summary.num_candidates} of {n} candidates "
                           f"({summary.num_failed} failed)")
    return Run(wall_s=wall, candidates=summary.num_candidates, trials=len(times.trials),
               first_batch=next(iter(times.trials.values())), delay=recipe.evaluator.config.wall_delay_s,
               first_result_s=times.first_s, last_result_s=times.last_s)


def overhead_per_trial_ms(run: Run, case: Case) -> float:
    """Worker time lost per trial once running: (wall - start-up - ideal) * workers / trials."""
    lost = run.wall_s - run.startup_s - case.ideal_s
    return lost * case.workers / run.trials * 1e3


# --- reporting -----------------------------------------------------------------------------------
def table(results: list[Measurement]) -> list[str]:
    rows = ["| case (candidates x delay on workers) | runner | candidates / trial | trials | ideal (s) | wall (s) "
            "| ratio | start-up (s) | ratio without start-up | effective workers "
            "| overhead / trial after start-up (ms) | all runs: ratio |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for m in results:
        b, ideal = m.best, m.case.ideal_s
        runs = ", ".join(f"{r.wall_s / ideal:.3f}" for r in m.runs)
        batch = f"{m.batch} (mean {b.candidates / b.trials:.1f})" if m.batch == AUTO else str(m.batch)
        rows.append(f"| {m.case} | {m.label} | {batch} | {b.trials:,} | {ideal:.1f} | {b.wall_s:.2f} | "
                    f"**{m.ratio:.3f}** | {b.startup_s:.2f} | {(b.wall_s - b.startup_s) / ideal:.3f} | "
                    f"{b.effective_workers:.2f} | {overhead_per_trial_ms(b, m.case):.0f} | {runs} |")
    return rows


def verdict(results: list[Measurement]) -> str:
    """Whether the default (auto) meets the goal in every case measured, and what one trial per
    candidate does."""
    auto = [m for m in results if m.label == "tune" and m.batch == AUTO]
    one = [m for m in results if m.label == "tune" and m.batch == 1]
    lines = []
    if auto:
        failing = [m for m in auto if m.ratio > GOAL]
        worst = max(auto, key=lambda m: m.ratio)
        misses = "; not in " + ", ".join(f"{m.case} ({m.ratio:.3f}, {m.best.startup_s:.1f} s of start-up)"
                                        for m in failing) if failing else ""
        lines.append(f"The default, `candidates_per_trial: auto`, meets the goal (ratio <= {GOAL:.2f}) in "
                     f"{len(auto) - len(failing)} of {len(auto)} case(s){misses}; worst {worst.ratio:.3f}.")
    if one:
        worst = max(one, key=lambda m: m.ratio)
        lines.append(f"One trial per candidate (`candidates_per_trial: 1`): worst {worst.ratio:.3f} ({worst.case}), "
                     f"{overhead_per_trial_ms(worst.best, worst.case):.0f} ms lost per trial, effective workers "
                     f"{worst.best.effective_workers:.2f} of {worst.case.workers}.")
    return " ".join(lines) or "The `tune` backend was not measured."


ANALYSIS = """\
### Where the time goes

* **Start-up** (column *start-up*: time before the first trial began evaluating). Each Tune trial
  actor is a new Ray worker process, which imports `ray.tune` (with pandas and pyarrow) and raynas,
  and fetches the evaluator, before its first trial. This is paid once per `Search.run`; with 16
  workers on 2 cores it is 16 such processes, and Ray's raylet starts at most as many worker
  processes at once as the node has cores (2 here): 8 rounds, 12-30 s. Every actor's first trial
  waits until the workers' actors are up (`runtime/startup.py`: otherwise Tune's actor re-use
  discards actors still starting; 2,000 x 1 s on 16 workers ran at 2.60 with 6.6 effective workers
  before it), so start-up is the slowest actor's. On a cluster each node starts its own actors, a
  few seconds in all; *ratio without start-up* is the steady state.
* **Per trial** (column *overhead / trial after start-up*: worker time lost per trial after start-up).
  A Tune trial costs the driver about 30 ms whatever it evaluates (`benchmarks/driver_profile.py`
  splits it: a `Trial` object with trainable look-ups in Ray's GCS key-value store, a placement group,
  actor reset/run/stop calls, result processing, its share of the experiment snapshot), and a worker
  waits for the driver between two trials. One trial per candidate pays all of it per candidate;
  `auto` sizes trials to about 2 s of evaluation (longer with many workers), so it is paid once
  per 20 candidates of 0.1 s, or per 2-3 of 1 s.
* **One trial per candidate: the actor re-use race** (column *effective workers*). With
  `reuse_actors=True`, the actor of a finished trial is handed to the oldest pending trial and the
  actor Tune was starting for that trial is discarded (ray-project/ray#36020). When trials are
  shorter than an actor's start-up, a worker whose actor is lost (e.g. evicted from Tune's actor
  cache when two trials end in the same step) never gets one back: the search runs on fewer workers
  and keeps starting, then discarding, actor processes. Whether this happens is a race, so one-per-
  trial figures are bimodal (this table's 2,000 x 0.1 s row against the steady 1.3 of a run without
  the collapse). `auto`'s trials outlast actor start-up, so a lost actor is replaced.
* **The end of the budget.** `auto` shrinks the last batches (at most the candidates left / (2 x
  workers)), so that the workers end together instead of one running a long last batch alone.
* **Settings in `run_tune`.** Trials stop on their single report (`stop={"training_iteration": 1}`),
  which saves the extra `train()` round trip Tune otherwise makes only to find out that the
  function has returned. Experiment snapshots (`TUNE_GLOBAL_CHECKPOINT_S`) stay at Tune's `auto`
  (no more often than every 10 s, and spaced so that they take at most about 5 % of the time).
  Tune's per-trial JSON/CSV loggers are off (`TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1`), and with local
  storage nothing is synced.
"""


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:  # not available on this platform
        return float("nan")


def section(results: list[Measurement], init_s: float, args: argparse.Namespace) -> str:
    import ray

    cmd = " ".join(["benchmarks/overhead.py", *sys.argv[1:]])
    lines = [
        SECTION,
        "",
        "How much wall time the `tune` backend adds to the evaluations themselves"
        + (", against a raw Python loop running the same evaluator and random strategy on a thread pool."
           if not args.no_raw else "."),
        "",
        "* Evaluator: tabular NAS-Bench-201 (CIFAR-10) with `wall_delay_s` = the case's delay (each candidate "
        "sleeps that long); strategy: random.",
        "* **ratio = wall / ideal**, ideal = candidates x delay / workers. Goal: ratio <= "
        f"{GOAL:.2f} with the default `candidates_per_trial: auto` (Ray Tune's own scalability benchmark: "
        f"about {TUNE_REFERENCE:.2f}).",
        f"* `tune`: `build_search(recipe).run()` with `backend.name: tune`, the case's `backend.workers`, "
        f"`backend.candidates_per_trial` as listed, `ray.num_cpus: {args.num_cpus}` (logical: workers "
        "sleep); timed from the start to the end of `Search.run` (Tuner set-up, actor start-up, all trials, "
        "teardown). `ray.init` is done once, before, and timed on its own.",
        *([] if args.no_raw else ["* `raw`: `concurrent.futures.ThreadPoolExecutor(workers)`, one candidate per "
                                  "call, the strategy called from the main thread; no Ray."]),
        f"* Best of {args.repeats} run(s) per row (noise only adds time); every run's ratio is listed.",
        "",
        *table(results),
        "",
        f"`ray.init` (`ensure_ray(num_cpus={args.num_cpus})`, once, in no row): **{init_s:.2f} s**.",
        "",
        verdict(results),
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
def _case(text: str) -> Case:
    try:
        n, delay, workers, *batches = text.split(":")
        case = Case(int(n), float(delay), int(workers), tuple(_batch(b) for b in "".join(batches).split("/") if b))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected CANDIDATES:DELAY:WORKERS[:B/B...], got {text!r}") from None
    if case.candidates < 1 or case.delay <= 0 or case.workers < 1:
        raise argparse.ArgumentTypeError(f"{text}: candidates, delay and workers must be positive")
    return case


def _batch(text: str) -> int | str:
    return AUTO if text == AUTO else int(text)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--case", type=_case, action="append", default=[],
                   help="CANDIDATES:DELAY:WORKERS[:B/B...] (the case's own batches, e.g. auto/1), repeatable "
                   "(default: --candidates:--delay:--workers)")
    p.add_argument("--candidates", type=int, default=300, help="candidates per run (default 300)")
    p.add_argument("--delay", type=float, default=0.2, help="evaluator wall seconds per candidate (0.2)")
    p.add_argument("--workers", type=int, default=2, help="parallel workers (2)")
    p.add_argument("--batch", default="auto,1,10",
                   help="comma-separated candidates_per_trial values (numbers or auto) for the tune backend")
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
        args.batches = [_batch(b.strip()) for b in args.batch.split(",") if b.strip()]
    except ValueError:
        p.error(f"--batch: expected comma-separated integers or auto, got {args.batch!r}")
    if not args.case:
        try:
            args.case = [_case(f"{args.candidates}:{args.delay}:{args.workers}")]
        except argparse.ArgumentTypeError as err:
            p.error(str(err))
    if args.repeats < 1 or args.pause < 0 or any(b != AUTO and b < 1 for b in args.batches):
        p.error("--repeats and every --batch must be positive")
    args.num_cpus = max(c.workers for c in args.case)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from raynas.ray_env import ensure_ray

    args.load_before = _load()
    t = time.perf_counter()
    ensure_ray(num_cpus=args.num_cpus)
    init_s = time.perf_counter() - t
    print(f"ray.init: {init_s:.2f} s", flush=True)

    storage = args.storage or tempfile.mkdtemp(prefix="raynas-overhead-")
    results: list[Measurement] = []
    for case in args.case:
        results += [Measurement(case, "raw", 1)] if not args.no_raw else []
        results += [Measurement(case, "tune", b) for b in case.batches or args.batches]
    try:
        # Interleave the repeats (raw, tune b1, b5, ..., raw, ...) so that a noisy spell on a shared
        # machine does not land on one runner only.
        for rep in range(args.repeats):
            for i, m in enumerate(results):
                time.sleep(args.pause)
                c = m.case
                recipe = make_recipe(candidates=c.candidates, delay=c.delay, workers=c.workers, batch=m.batch,
                                     storage=storage, seed=args.seed, num_cpus=args.num_cpus,
                                     name=f"overhead_{i}_{m.label}_b{m.batch}_r{rep}")
                run = run_raw(recipe) if m.label == "raw" else run_tune(recipe)
                m.runs.append(run)
                print(f"  [{rep + 1}/{args.repeats}] {c}: {m.label:4s} batch={m.batch!s:<4s} wall {run.wall_s:8.2f} s"
                      f"  ideal {c.ideal_s:7.1f} s  ratio {run.wall_s / c.ideal_s:.3f}  trials {run.trials:,}  "
                      f"start-up {run.startup_s:5.2f} s  effective workers {run.effective_workers:5.2f}  "
                      f"overhead/trial {overhead_per_trial_ms(run, c):5.0f} ms", flush=True)
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
