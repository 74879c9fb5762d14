"""Where the driver's time per Tune trial goes, as the search grows.

Runs the ``tune`` backend with ``--trials`` one-candidate trials (tabular NAS-Bench-201 evaluator with
``wall_delay_s: --delay``, random search, ``--workers`` workers) under ``cProfile`` in the driver, and
splits the driver's time into parts by the functions of Tune's controller loop that hold them:

* ``snapshot``: Tune's experiment-state snapshot (``TuneController.checkpoint``: every trial's JSON,
  the controller state, the Searcher's saved state and the callbacks'); ``searcher state`` is the
  Searcher part of it (``Searcher.save_to_dir``), shown on its own too.
* ``new trials``: asking the Searcher for trials and building Tune ``Trial`` objects
  (``_maybe_update_trial_queue``), less the Searcher's own ``suggest`` (``searcher suggest``).
* ``actors``: starting and re-using trial actors (``_maybe_add_actors``: placement groups, trainable
  look-ups, actor reset calls); ``clean-up``: evicting cached and stopping actors (``on_step_end``).
* ``results``: processing a trial's result (``_process_trial_result``: stoppers, schedulers,
  callbacks, trial bookkeeping), less the Searcher's ``on_trial_complete`` and our listeners
  (``searcher complete``; ``listeners``: ``on_candidate`` of every listener).
* ``is_finished``; ``events``: Ray's event loop waiting for the next event and dispatching it, results
  aside (``RayActorManager.next`` less results: actor starts and stops, resets); ``other``: the rest
  of the Tune run (set-up, teardown, the loop itself). ``driver total`` is all of ``tune.run`` (from the
  experiment's set-up to its teardown: start-up included); ``of which ray.wait`` is the time
  blocked in ``ray.wait`` inside any part (waiting on workers or on placement groups): less that, the
  total is the driver's own work.

Each part is reported in ms per trial, and the per-trial wall of the run's first and last tenth shows
whether the cost grows with the number of trials; the driver's peak RSS, whether Tune's ``Trial`` objects
(all kept for the run) add up. ``--no-profile`` gives the wall figures alone; ``--batch auto`` runs the
default batching instead of one candidate per trial (``--trials`` is then the number of candidates).

Usage::

    .venv/bin/python benchmarks/driver_profile.py --trials 300,2000 --delay 0
    .venv/bin/python benchmarks/driver_profile.py --trials 10000 --delay 0 --no-profile
    .venv/bin/python benchmarks/driver_profile.py --trials 2000,10000 --delay 0.01 --batch auto
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a source checkout
    sys.path.insert(0, str(ROOT))

from benchmarks.overhead import ResultTimes, make_recipe  # noqa: E402
from raynas.recipes.schema import AUTO  # noqa: E402

# part -> (function-name suffixes whose cumulative time it holds, parts it excludes)
PARTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "snapshot": (("tune_controller.py:checkpoint",), ()),
    "searcher state": (("search/searcher.py:save_to_dir", "search_generator.py:save_to_dir"), ()),
    "searcher suggest": (("runtime/driver.py:suggest",), ()),
    "new trials": (("tune_controller.py:_maybe_update_trial_queue",), ("searcher suggest",)),
    "searcher complete": (("runtime/driver.py:on_trial_complete",), ("listeners",)),
    "listeners": (("driver.py:_record",), ()),
    "results": (("tune_controller.py:_process_trial_result",), ("searcher complete", "listeners")),
    "actors": (("tune_controller.py:_maybe_add_actors",), ()),
    "clean-up": (("tune_controller.py:on_step_end",), ()),
    "is_finished": (("tune_controller.py:is_finished",), ()),
}
TUNE_RUN = "ray/tune/tune.py:run"
NEXT = "_internal/actor_manager.py:next"
RAY_WAIT = "_private/worker.py:wait"
TOP_LEVEL = ("snapshot", "new trials", "searcher suggest", "results", "searcher complete", "listeners",
             "actors", "clean-up", "is_finished")


def _cumulative(stats: pstats.Stats) -> dict[str, float]:
    """``file:function`` -> cumulative seconds (the largest of functions of the same key: Tune nests a
    ``_maybe_add_actors`` in ``_maybe_add_actors``, the outer one's time includes the inner one's)."""
    out: dict[str, float] = {}
    for (file, _line, func), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        key = f"{file}:{func}"
        out[key] = max(out.get(key, 0.0), ct)
    return out


def _sum(cum: dict[str, float], suffixes: tuple[str, ...]) -> float:
    return sum(v for k, v in cum.items() if k.endswith(suffixes))


def parts(stats: pstats.Stats) -> dict[str, float]:
    """Seconds per part (see the module docstring); ``wait`` and ``other`` from what is left."""
    cum = _cumulative(stats)
    raw = {name: _sum(cum, suffixes) for name, (suffixes, _) in PARTS.items()}
    # clamped: Tune also calls the Searcher's on_trial_complete outside _process_trial_result
    out = {name: max(0.0, raw[name] - sum(raw[x] for x in excl)) for name, (_, excl) in PARTS.items()}
    step = _sum(cum, (TUNE_RUN,))
    # RayActorManager.next: ray.wait for the next event, then its callbacks (results: counted above)
    out["events"] = max(0.0, _sum(cum, (NEXT,)) - raw["results"])
    out["other"] = max(0.0, step - out["events"] - sum(out[p] for p in TOP_LEVEL))
    out["of which ray.wait"] = _sum(cum, (RAY_WAIT,))
    out["driver total"] = step
    return out


def run(trials: int, delay: float, workers: int, profile: bool, storage: str, batch: int | str = 1) -> dict[str, Any]:
    """``trials`` candidates (one per trial unless ``batch``) under cProfile; times and parts."""
    from raynas.runtime import build_search

    recipe = make_recipe(candidates=trials, delay=delay, workers=workers, batch=batch, storage=storage,
                         seed=0, name=f"profile_{trials}")
    arrivals = ResultTimes()
    search = build_search(recipe, [arrivals])
    prof = cProfile.Profile() if profile else None
    start = time.perf_counter()
    if prof:
        prof.enable()
    summary = search.run()
    if prof:
        prof.disable()
    wall = time.perf_counter() - start
    tenth = max(1, len(arrivals.wall) // 10)
    w = arrivals.wall
    return {"trials": len(arrivals.trials), "wall_s": wall, "candidates": summary.num_candidates,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "first_tenth_ms": (w[tenth - 1] - w[0]) / max(1, tenth - 1) * 1e3 if tenth > 1 else float("nan"),
            "last_tenth_ms": (w[-1] - w[-tenth]) / max(1, tenth - 1) * 1e3 if tenth > 1 else float("nan"),
            "parts": parts(pstats.Stats(prof)) if prof else {}}


def report(rows: list[dict[str, Any]], delay: float, workers: int, batch: int | str) -> str:
    names = [*TOP_LEVEL, "searcher state", "events", "other", "driver total", "of which ray.wait"]
    lines = [f"candidates_per_trial {batch}, delay {delay:g} s, {workers} workers; ms of driver time per trial",
             "| part | " + " | ".join(f"{r['candidates']:,} candidates, {r['trials']:,} trials" for r in rows) + " |",
             "|---|" + "---:|" * len(rows)]
    if all(r["parts"] for r in rows):
        for name in names:
            lines.append(f"| {name} | " + " | ".join(f"{r['parts'][name] / r['trials'] * 1e3:.1f}"
                                                   for r in rows) + " |")
    lines.append("| driver total per candidate (ms) | " + " | ".join(
        f"{r['parts'].get('driver total', float('nan')) / r['candidates'] * 1e3:.2f}" for r in rows) + " |")
    lines.append("| driver peak RSS (MB) | " + " | ".join(f"{r['rss_mb']:.0f}" for r in rows) + " |")
    lines.append("| wall per trial (ms) | " + " | ".join(f"{r['wall_s'] / r['trials'] * 1e3:.1f}" for r in rows)
                 + " |")
    lines.append("| between results, first tenth (ms) | " + " | ".join(f"{r['first_tenth_ms']:.1f}" for r in rows)
                 + " |")
    lines.append("| between results, last tenth (ms) | " + " | ".join(f"{r['last_tenth_ms']:.1f}" for r in rows)
                 + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", default="300,2000", help="comma-separated trial counts (300,2000)")
    p.add_argument("--delay", type=float, default=0.0, help="evaluator wall seconds per candidate (0)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch", default="1", help="candidates_per_trial: a number or auto (1)")
    p.add_argument("--no-profile", action="store_true", help="wall figures only, no cProfile")
    p.add_argument("--stats", default=None, help="also dump the last run's pstats to this file")
    args = p.parse_args(argv)
    from raynas.ray_env import ensure_ray

    ensure_ray(num_cpus=args.workers)
    batch = args.batch if args.batch == AUTO else int(args.batch)
    rows = []
    for n in (int(x) for x in args.trials.split(",")):
        storage = tempfile.mkdtemp(prefix="raynas-profile-")
        try:
            rows.append(run(n, args.delay, args.workers, not args.no_profile, storage, batch))
        finally:
            shutil.rmtree(storage, ignore_errors=True)
        print(f"{n} trials: wall {rows[-1]['wall_s']:.1f} s", flush=True)
        time.sleep(3)
    print(report(rows, args.delay, args.workers, batch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
