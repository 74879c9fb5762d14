"""Where the driver's time per Tune trial goes, as the search grows.

Runs the ``tune`` backend with ``--trials`` one-candidate trials (tabular NAS-Bench-201 evaluator with
``wall_delay_s: --delay``, random search, ``--workers`` workers) under ``cProfile`` in the driver, and
splits the driver's time into parts by the functions of Tune's controller loop that hold them:

* ``snapshot``: Tune's experiment-state snapshot (``TuneController.checkpoint``: every trial's JSON,
  the controller state, the Searcher's saved state and the callbacks'); ``searcher state`` is the
  Searcher part of it (``Searcher.save_to_dir``), shown on its own too.
* ``new trials``: asking the Searcher for trials and building Tune ``Trial`` objects
  (``_maybe_update_trial_queue``), less the Searcher's own ``suggest`` (``searcher suggest``).
* ``actors``: starting, caching and re-using trial actors (``_maybe_add_actors``, ``_schedule_trial_*``
  outside results, actor clean-up in ``on_step_end``).
* ``results``: processing a trial's result (``_process_trial_result``: stoppers, schedulers,
  callbacks, trial bookkeeping), less the Searcher's ``on_trial_complete`` and our listeners
  (``searcher complete``; ``listeners``: ``on_candidate`` of every listener).
* ``is_finished``, ``wait``: Ray's event loop waiting for the next event (``RayActorManager.next``
  less what it dispatches), ``other``: the rest of ``TuneController.step``.

Each part is reported in ms per trial, and the per-trial wall of the run's first and last tenth shows
whether the cost grows with the number of trials. ``--no-profile`` gives the wall figures alone.

Usage::

    .venv/bin/python benchmarks/driver_profile.py --trials 300,2000 --delay 0
    .venv/bin/python benchmarks/driver_profile.py --trials 10000 --delay 0 --no-profile
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a source checkout
    sys.path.insert(0, str(ROOT))

from benchmarks.overhead import make_recipe  # noqa: E402

# part -> (function-name suffixes whose cumulative time it holds, parts it excludes)
PARTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "snapshot": (("tune_controller.py:checkpoint",), ()),
    "searcher state": (("search/searcher.py:save_to_dir", "search_generator.py:save_to_dir"), ()),
    "searcher suggest": (("runtime/driver.py:suggest",), ()),
    "new trials": (("tune_controller.py:_maybe_update_trial_queue",), ("searcher suggest",)),
    "searcher complete": (("runtime/driver.py:on_trial_complete",), ("listeners",)),
    "listeners": (("driver.py:_record",), ()),
    "results": (("tune_controller.py:_process_trial_result",), ("searcher complete", "listeners")),
    "actors": (("tune_controller.py:_maybe_add_actors", "tune_controller.py:on_step_end"), ()),
    "is_finished": (("tune_controller.py:is_finished",), ()),
}
STEP = "tune_controller.py:step"
NEXT = "ray_actor_manager.py:next"
TOP_LEVEL = ("snapshot", "new trials", "searcher suggest", "results", "searcher complete", "listeners",
             "actors", "is_finished")


def _cumulative(stats: pstats.Stats) -> dict[str, float]:
    """``file:function`` -> cumulative seconds (summed over functions of the same key)."""
    out: dict[str, float] = {}
    for (file, _line, func), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        key = f"{file}:{func}"
        out[key] = out.get(key, 0.0) + ct
    return out


def _sum(cum: dict[str, float], suffixes: tuple[str, ...]) -> float:
    return sum(v for k, v in cum.items() if k.endswith(suffixes))


def parts(stats: pstats.Stats) -> dict[str, float]:
    """Seconds per part (see the module docstring); ``wait`` and ``other`` from what is left."""
    cum = _cumulative(stats)
    raw = {name: _sum(cum, suffixes) for name, (suffixes, _) in PARTS.items()}
    out = {name: raw[name] - sum(raw[x] for x in excl) for name, (_, excl) in PARTS.items()}
    step = _sum(cum, (STEP,))
    dispatched = raw["results"]  # result processing happens inside RayActorManager.next
    out["wait"] = max(0.0, _sum(cum, (NEXT,)) - dispatched)
    out["other"] = max(0.0, step - out["wait"] - sum(out[p] for p in TOP_LEVEL))
    out["driver total"] = step
    return out


class _Arrivals:
    """A listener noting when each candidate's result reached the driver."""

    def __init__(self) -> None:
        self.wall: list[float] = []

    def on_start(self, info: dict[str, Any]) -> None:
        pass

    def on_candidate(self, record: Any) -> None:
        self.wall.append(record.wall_s)

    def on_end(self, summary: Any) -> None:
        pass


def run(trials: int, delay: float, workers: int, profile: bool, storage: str) -> dict[str, Any]:
    from raynas.runtime import build_search

    recipe = make_recipe(candidates=trials, delay=delay, workers=workers, batch=1, storage=storage,
                         seed=0, name=f"profile_{trials}")
    arrivals = _Arrivals()
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
    return {"trials": trials, "wall_s": wall, "candidates": summary.num_candidates,
            "first_tenth_ms": (w[tenth - 1] - w[0]) / max(1, tenth - 1) * 1e3 if tenth > 1 else float("nan"),
            "last_tenth_ms": (w[-1] - w[-tenth]) / max(1, tenth - 1) * 1e3 if tenth > 1 else float("nan"),
            "parts": parts(pstats.Stats(prof)) if prof else {}}


def report(rows: list[dict[str, Any]], delay: float, workers: int) -> str:
    names = [*TOP_LEVEL, "wait", "other", "driver total"]
    lines = [f"one-candidate trials, delay {delay:g} s, {workers} workers; ms of driver time per trial",
             "| part | " + " | ".join(f"{r['trials']:,} trials" for r in rows) + " |",
             "|---|" + "---:|" * len(rows)]
    if all(r["parts"] for r in rows):
        for name in names:
            lines.append(f"| {name} | " + " | ".join(f"{r['parts'][name] / r['trials'] * 1e3:.1f}"
                                                   for r in rows) + " |")
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
    p.add_argument("--no-profile", action="store_true", help="wall figures only, no cProfile")
    p.add_argument("--stats", default=None, help="also dump the last run's pstats to this file")
    args = p.parse_args(argv)
    from raynas.ray_env import ensure_ray

    ensure_ray(num_cpus=args.workers)
    rows = []
    for n in (int(x) for x in args.trials.split(",")):
        storage = tempfile.mkdtemp(prefix="raynas-profile-")
        try:
            rows.append(run(n, args.delay, args.workers, not args.no_profile, storage))
        finally:
            shutil.rmtree(storage, ignore_errors=True)
        print(f"{n} trials: wall {rows[-1]['wall_s']:.1f} s", flush=True)
        time.sleep(3)
    print(report(rows, args.delay, args.workers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
