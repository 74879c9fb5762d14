"""Tracking at scale: 10,000 candidates through raynas's ``MlflowTracker`` vs Ray Tune's
``MLflowLoggerCallback`` (one MLflow run per trial), on the same kind of store (a fresh local sqlite
store, already migrated, so neither side pays MLflow's schema creation).

* Candidates: ``CandidateRecord``s of one real random search on NAS-Bench-201 (simulate backend,
  ``budget.max_candidates=N``), made once and pickled; both loggers get the very same records.
* ``raynas``: ``MlflowTracker`` defaults (``batch_size=200``, plots on, at most 4 batches in flight)
  through ``on_start``, ``on_candidate`` × N and ``on_end``: one parent run, a background ``log_batch``
  (MLflow's asynchronous logging) per <= 1,000 metric values, the candidates table (parquet + MLflow
  table), two PNG plots, summary metrics.
* ``tune-callback``: Ray's real ``ray.air.integrations.mlflow.MLflowLoggerCallback`` code path, driven
  directly: ``setup()``, then per candidate ``log_trial_start`` (creates the run, logs the trial config
  as params), ``log_trial_result`` (logs the result's metrics) and ``log_trial_end`` (ends the run). The
  trial is a minimal stand-in object (``config``, ``str()``, hashable) instead of a Tune ``Trial``, and
  no Tuner runs: this measures the callback's logging cost only, not Tune's per-trial scheduling
  overhead (running 10,000 real trials would add minutes on top). Config = the candidate's arch and
  lineage (5 params); result = the same per-candidate metrics raynas logs plus ``training_iteration``
  (Tune's step); a real Tune result has ~10 more numeric auto-filled fields, each one more
  ``log_metric`` call, so the callback's figure is a lower bound.
* What is timed, per logger: the **critical path** — the sum of the per-candidate calls the search
  makes (``on_candidate``; the callback's three calls), i.e. what the search waits for — reported as
  candidates/s *into the tracker*; the **drain** — ``on_end``, which waits until the store holds every
  candidate (raynas's backlog: the candidates not yet confirmed logged when the last one arrived),
  then writes tables, plots and the summary; and the **wall** from ``on_start`` to the end of
  ``on_end``, drain included (end-to-end candidates/s). The callback is synchronous: no drain.
* Sizes: raynas logs ``--n`` (10,000) and ``--mid`` (1,000, 2,000, 5,000) candidates. The callback costs about a
  second per candidate on a busy 2-core box (a run, a ``get_run`` check and one sqlite transaction per
  value), so 10,000 would take hours: it logs the first ``--tune-n`` (default 500) candidates, raynas
  logs those too (the measured same-size ratio), and the callback's time for ``--n`` is extrapolated
  linearly from its measured rate (a lower bound: its per-candidate cost does not fall as the store
  grows).
* Each logger runs in its own fresh process (``--variant``); modules both import lazily are imported
  before timing. Memory: ``tracemalloc``'s peak of Python allocations while candidates arrive (what a
  backlog could grow: it must not grow with ``--n``) and over the whole logging (the end's tables and
  plots included), and the process's peak RSS (``ru_maxrss``: the interpreter, MLflow/Ray imports, the
  loaded records).

Usage::

    .venv/bin/python benchmarks/tracking_scale.py                        # 10,000 + 1,000 (raynas), 500 (both)
    .venv/bin/python benchmarks/tracking_scale.py --n 1000 --tune-n 100  # quick
    .venv/bin/python benchmarks/tracking_scale.py --write      # also the section in docs/BENCHMARKS.md
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import pickle
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a source checkout
    sys.path.insert(0, str(ROOT))

SECTION = "## Tracking at scale (benchmarks/tracking_scale.py)"
OURS, TUNE = "raynas", "tune-callback"
DB = "mlflow.db"
MID = [1_000, 2_000, 5_000]
NB201 = ROOT.parent / "shared" / "data" / "nb201"


def make_records(n: int, path: Path) -> None:
    """Run a real random search of ``n`` candidates (simulate backend) and pickle its records."""
    from raynas.recipes import parse_recipe
    from raynas.runtime import build_search

    class Keep:
        records: list = []

        def on_start(self, info): pass
        def on_candidate(self, record): self.records.append(record)
        def on_end(self, summary): pass

    recipe = parse_recipe({"name": "tracking-scale", "seed": 0, "space": {"name": "nb201"},
                           "evaluator": {"name": "tabular", "data_path": os.environ.get("RAYNAS_NB201_PATH", str(NB201))},
                           "strategy": {"name": "random"}, "budget": {"max_candidates": n},
                           "backend": {"name": "simulate"}})
    keep = Keep()
    build_search(recipe, [keep]).run()
    path.write_bytes(pickle.dumps((recipe, keep.records)))


def migrated_store(directory: Path, template: Path) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, directory / DB)
    return f"sqlite:///{directory / DB}"


class Trial:
    """What MLflowLoggerCallback reads from a Tune Trial: ``config``, ``str(trial)``, hashing."""

    def __init__(self, trial_id: str, config: dict) -> None:
        self.trial_id, self.config, self.local_path = trial_id, config, None

    def __str__(self) -> str:
        return f"trial_{self.trial_id}"


class Phases:
    """Time and ``tracemalloc`` peak of the phases of one logger's run: ``start``, ``feed`` (only the
    per-candidate calls are timed, ``calls``), ``end``."""

    def __init__(self) -> None:
        self.s: dict[str, float] = {}
        self.peak_mb: dict[str, float] = {}
        self.calls_s = 0.0

    def phase(self, name: str, t0: float) -> None:
        self.s[name] = time.perf_counter() - t0
        self.peak_mb[name] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.reset_peak()

    def call(self, fn, *args) -> None:
        t0 = time.perf_counter()
        fn(*args)
        self.calls_s += time.perf_counter() - t0

    def result(self) -> dict:
        return {"calls_s": self.calls_s, "drain_s": self.s.get("end", 0.0), "wall_s": sum(self.s.values()),
                "feed_peak_mb": self.peak_mb["feed"], "traced_peak_mb": max(self.peak_mb.values())}


def log_ours(recipe, records, uri: str, spool: Path) -> dict:
    from raynas.recipes.schema import TrackingSpec
    from raynas.runtime.records import SearchSummary
    from raynas.tracking import MlflowTracker

    tracker = MlflowTracker(TrackingSpec(uri, spool_dir=str(spool)), stream=open(os.devnull, "w"))
    summary = SearchSummary(num_candidates=len(records), best=max(records, key=lambda r: r.metrics["valid_acc"]))
    clock = Phases()
    t0 = time.perf_counter()
    tracker.on_start({"recipe": recipe})
    clock.phase("start", t0)
    t0 = time.perf_counter()
    for rec in records:
        clock.call(tracker.on_candidate, rec)
    backlog = tracker.pending  # not yet on the server when the last candidate arrived
    clock.phase("feed", t0)
    t0 = time.perf_counter()
    tracker.on_end(summary)
    clock.phase("end", t0)
    return {"runs": 1, "run_id": tracker.run_id, "pending": tracker.pending, "backlog": backlog, **clock.result()}


def log_tune(records, uri: str) -> dict:
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    callback = MLflowLoggerCallback(tracking_uri=uri, experiment_name="tune-callback")
    clock = Phases()
    t0 = time.perf_counter()
    callback.setup()
    clock.phase("start", t0)
    t0 = time.perf_counter()
    for rec in records:
        trial = Trial(f"{rec.index:05d}", {"arch": rec.arch, "parent": rec.parent, "variation": rec.variation,
                                           "generation": rec.generation, "canonical": rec.canonical})
        result = {**rec.metrics, **rec.hidden, "cost_s": rec.cost_s, "sim_time_s": rec.sim_end_s,
                  "training_iteration": 1}
        clock.call(callback.log_trial_start, trial)
        clock.call(callback.log_trial_result, 1, trial, result)
        clock.call(callback.log_trial_end, trial)
    clock.phase("feed", t0)
    return {"runs": len(records), "backlog": 0, **clock.result()}


def run_variant(variant: str, records_path: Path, uri: str, work: Path, limit: int, trace: bool) -> dict:
    """One logger in this process; ``trace``: under ``tracemalloc`` (its memory figures, not its times)."""
    recipe, records = pickle.loads(records_path.read_bytes())
    records = records[:limit]
    from mlflow.tracking import MlflowClient

    MlflowClient(uri).search_experiments()  # open the store before timing (both sides alike)
    preload()
    if trace:
        tracemalloc.start()
    out = log_ours(recipe, records, uri, work / "spool") if variant == OURS else log_tune(records, uri)
    tracemalloc.stop()
    out.update(variant=variant, n=len(records), maxrss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    out["logged_points"] = count_points(uri, variant)
    out["metric_points"] = sum(len(r.metrics) + len(r.hidden) + 3 for r in records)  # + cost, clock, best/step
    return out


def preload() -> None:
    """Import what either logger imports lazily, so neither timing nor traced memory counts imports."""
    import matplotlib.backends.backend_agg  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    from ray.air.integrations import mlflow  # noqa: F401,F811

    import raynas.tracking.sync  # noqa: F401


def count_points(uri: str, variant: str) -> int:
    """``candidate/valid_acc`` points (ours) or runs holding ``valid_acc`` (Tune): proof all arrived."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    if variant == OURS:
        (run,) = client.search_runs([client.get_experiment_by_name("tracking-scale").experiment_id])
        return len(client.get_metric_history(run.info.run_id, "candidate/valid_acc"))
    exp = client.get_experiment_by_name("tune-callback").experiment_id
    return sum(1 for r in client.search_runs([exp], max_results=50_000) if "valid_acc" in r.data.metrics)


# The synchronous tracker (log_batch in the search's thread): this script run on a checkout of commit c527b28
# (`--n 10000 --mid 1000 --tune-n 10`), on 2026-12-03 on the 2-CPU box of the figures it is compared with,
# minutes before them; and the figures the section had before (2026-11-27), timed under tracemalloc.
BEFORE = {"commit": "c527b28", "date": "2026-12-03", "n": 10_000, "calls_s": 8.63, "wall_s": 9.54,
          "feed_peak_mb": 14.2, "traced_peak_mb": 20.0, "maxrss_mb": 366,
          "feed_note": "its traced feed took 31 s, past the 30-s table interval, so that includes a rewrite of "
                       "candidates.parquet; 4.8 MB in three runs that stayed under it"}
BEFORE_DOC = {"date": "2026-11-27", "n": 10_000, "cps": 157, "wall_s": 63.8}


HEADER = """| logger | candidates | MLflow runs | candidates logged | into the tracker (candidates/s) | per-candidate calls (s) | backlog at `on_end` | `on_end`: drain + tables, plots, summary (s) | wall, drain included (s) | end to end (candidates/s) | traced peak while candidates arrive (MB) | traced peak, all (MB) | peak RSS (MB) |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"""


def row(r: dict) -> str:
    return (f"| {r['variant']} | {r['n']:,} | {r['runs']:,} | {r['logged_points']:,} | **{r['n'] / r['calls_s']:,.0f}** | "
            f"{r['calls_s']:.2f} | {r['backlog']:,} | {r['drain_s']:.1f} | {r['wall_s']:.1f} | "
            f"{r['n'] / r['wall_s']:,.0f} | {r['feed_peak_mb']:.1f} | {r['traced_peak_mb']:.1f} | {r['maxrss_mb']:.0f} |")


def before_text(big: dict) -> str:
    b, d = BEFORE, BEFORE_DOC
    return (f"**Before** (commit {b['commit']}: `log_batch` in the search's thread). This section said "
            f"{d['cps']} candidates/s at {d['n']:,} ({d['wall_s']} s, {d['date']}), but it timed the loggers under "
            f"`tracemalloc`, which slows MLflow's SQLAlchemy code several times over, on a box loaded by other jobs. "
            f"This script (times untraced) on a checkout of {b['commit']}, {b['date']}, same box and records, minutes "
            f"before the figures above: {b['n'] / b['calls_s']:,.0f} candidates/s into the tracker ({b['calls_s']:.2f} s; "
            f"wall {b['wall_s']:.1f} s), traced peak {b['feed_peak_mb']:.1f} MB while candidates arrive ({b['feed_note']}) and "
            f"{b['traced_peak_mb']:.1f} MB in all, peak RSS {b['maxrss_mb']:.0f} MB. Now: "
            f"**{big['n'] / big['calls_s'] / (b['n'] / b['calls_s']):,.1f}×** the candidates/s into the tracker. End to "
            f"end the wall went from {b['wall_s']:.1f} s to {big['wall_s']:.1f} s: MLflow's sqlite store logs no faster "
            f"from its background threads, which share the CPUs (and the GIL) with the search, so what changed is who "
            f"waits for it — the search no longer does, `on_end` does for what the store could not keep up with.")


def section(results: list[dict], args) -> str:
    big, tune = results[0], results[-1]
    ours = next(r for r in results if r["variant"] == OURS and r["n"] == tune["n"])
    mids = sorted((r for r in results[1:-1] if r["n"] != tune["n"]), key=lambda r: r["n"])
    tune_big = tune["wall_s"] / tune["n"] * big["n"]
    flags = "" if (args.n, args.mid, args.tune_n) == (10_000, MID, 500) else \
        f" --n {args.n} --mid {','.join(map(str, args.mid))} --tune-n {args.tune_n}"
    flat = "" if not mids else (
        " While candidates arrive, raynas's traced peak is " +
        ", ".join(f"{r['feed_peak_mb']:.1f} MB at {r['n']:,} candidates (backlog {r['backlog']:,})" for r in [*mids, big]) +
        ": it stops growing once 4 batches are in flight (the bound; on sqlite MLflow logs one at a time, ~2.4 MB "
        "while it does, the others wait in its queue, ~0.3 MB each), whatever the backlog. What grows with the "
        "backlog is only the records the tracker keeps anyway (for the final table and plots) and the spool on disk.")
    return f"""{SECTION}

Command: `python benchmarks/tracking_scale.py{flags}` (defaults: `--n 10000 --mid 1000,2000,5000 --tune-n 500`) — \
{datetime.date.today()}, {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python \
{platform.python_version()}, local sqlite store (fresh, migrated), the box shared with other jobs (load \
average {args.load_at_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end).

{HEADER}
{chr(10).join(row(r) for r in results)}

**Critical path.** At {big['n']:,} candidates the search waits {big['calls_s']:.2f} s in all for the tracker: \
**{big['n'] / big['calls_s']:,.0f} candidates/s into the tracker**. The store is slower: when the last candidate \
arrived, {big['backlog']:,} were still to be logged; `on_end` waited {big['drain_s']:.1f} s for them (and wrote \
tables, plots, summary): {big['wall_s']:.1f} s from `on_start` to the end of `on_end`, \
{big['metric_points'] / big['wall_s']:,.0f} metric points/s end to end ({big['metric_points'] / big['n']:.0f} values per \
candidate). In a real search the store logs while the search waits for its trials, so the drain at the end is what \
the store could not keep up with.

{before_text(big)}

**Memory.**{flat} Traced peak over everything: {big['traced_peak_mb']:.0f} MB at {big['n']:,} (the end's table \
and plots); peak RSS {big['maxrss_mb']:.0f} MB for the whole process.

**Ratio to the Tune callback.** Measured at {tune['n']:,} candidates: the callback keeps the search waiting \
**{tune['calls_s'] / ours['calls_s']:,.0f}×** as long as raynas ({tune['calls_s']:.1f} s vs {ours['calls_s']:.2f} s), and \
takes {tune['wall_s'] / ours['wall_s']:,.0f}× raynas's wall, drain included ({tune['wall_s']:.0f} s vs \
{ours['wall_s']:.1f} s). At {big['n']:,} candidates the callback, at its measured \
{tune['wall_s'] / tune['n'] * 1000:.0f} ms per candidate, would take about {tune_big / 60:.0f} min (extrapolated, a \
lower bound): about **{tune_big / big['wall_s']:,.0f}×** raynas's measured wall.

What was measured: raynas = `MlflowTracker` with its defaults (one parent run, a batch per flush of 200 \
candidates handed to MLflow's asynchronous `log_batch`, at most 4 batches in flight, MLflow's queue with one \
worker on sqlite, spool on disk fsynced \
before each flush, parquet + MLflow table, two plots, summary). Tune = Ray's `MLflowLoggerCallback` methods \
called directly per candidate (`log_trial_start` / `log_trial_result` / `log_trial_end`: a run per candidate, \
one `log_param`/`log_metric` call per value, each checking that the run exists) with a stand-in trial object — \
no Tuner, so Tune's own per-trial overhead is *not* included, and the result carries only the candidate's \
metrics plus `training_iteration` (a real Tune result adds ~10 numeric fields, each another call): a lower \
bound for the callback. "into the tracker" = candidates / the summed time of the per-candidate calls; \
"traced peak" is `tracemalloc`'s peak of Python allocations; "peak RSS" is the whole process (`ru_maxrss`: \
interpreter, MLflow and Ray imports, the records). Each logger ran in its own process, with the modules \
imported lazily by either (matplotlib, pandas, pyarrow, Ray's mlflow integration) imported before timing.
"""


def child(variant: str, limit: int, work: Path, trace: bool) -> dict:
    """One logger in a fresh process, on a fresh migrated store in ``work`` (beside the records)."""
    uri = migrated_store(work, work.parent / "template" / DB)
    proc = subprocess.run([sys.executable, __file__, "--variant", variant, "--records", str(work.parent / "records.pkl"),
                           "--uri", uri, "--work", str(work), "--limit", str(limit), *(["--trace"] if trace else [])],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{variant} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps(out), flush=True)
    return out


def measure(variant: str, limit: int, root: Path, i: int) -> dict:
    """Times from an untraced run (``tracemalloc`` slows MLflow's SQLAlchemy code several times over),
    the traced peaks from a second, traced run; RSS from the untraced one."""
    timed = child(variant, limit, root / f"{i}-timed", trace=False)
    traced = child(variant, limit, root / f"{i}-traced", trace=True)
    assert timed["logged_points"] == traced["logged_points"] == limit, (timed, traced)
    return {**timed, "feed_peak_mb": traced["feed_peak_mb"], "traced_peak_mb": traced["traced_peak_mb"],
            "traced_wall_s": traced["wall_s"]}


def sizes(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def runs(args) -> list[tuple[str, int]]:
    """(logger, candidates) in order: raynas at ``n``, each ``mid`` (smaller than ``n``, not ``tune_n``),
    ``tune_n``; Tune at ``tune_n``."""
    mid = [(OURS, m) for m in sorted(set(args.mid), reverse=True) if args.tune_n != m < args.n]
    return [(OURS, args.n), *mid, (OURS, args.tune_n), (TUNE, args.tune_n)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=10_000, help="candidates (default 10,000)")
    p.add_argument("--write", action="store_true", help="write the section into docs/BENCHMARKS.md")
    p.add_argument("--variant", choices=[OURS, TUNE], help=argparse.SUPPRESS)
    p.add_argument("--records", help=argparse.SUPPRESS)
    p.add_argument("--uri", help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    p.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    p.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--mid", type=sizes, default=MID, help="raynas also at these sizes, for memory (default 1000,2000,5000)")
    p.add_argument("--tune-n", type=int, default=500, help="candidates through the Tune callback (default 500)")
    args = p.parse_args(argv)
    if args.variant:  # child process: one logger
        print(json.dumps(run_variant(args.variant, Path(args.records), args.uri, Path(args.work), args.limit,
                                     args.trace)))
        return 0
    args.load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="raynas-tracking-scale-") as tmp:
        tmp = Path(tmp)
        make_records(args.n, tmp / "records.pkl")
        from mlflow.tracking import MlflowClient

        (tmp / "template").mkdir()
        MlflowClient(f"sqlite:///{tmp / 'template' / DB}").search_experiments()  # create + migrate once
        results = [measure(variant, limit, tmp, i) for i, (variant, limit) in enumerate(runs(args))]
    text = section(results, args)
    from benchmarks.docs import publish

    publish(SECTION, text, args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
