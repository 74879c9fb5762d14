"""REA with stand-alone training (the ``scratch`` evaluator): ASHA early stopping vs full training of
every candidate, at an equal budget.

Both arms run ``recipes/mbv3-digits-scratch-asha.yaml`` (REA on mbv3 / digits, 9 epochs per candidate,
2 workers of one CPU each) on a local Ray, with the same ``budget.sim_seconds`` (training seconds,
summed per worker on the search clock, so the same wall time), once with ``backend.scheduler: asha``
(grace 1, reduction factor 3: rungs at epochs 1, 3, 9) and once without (every candidate 9 epochs),
for each search seed. Per run it reports the candidates evaluated, how many trained all 9 epochs, the
wall time, and the **true accuracy of the best found**: the arch best on validation accuracy among
those that trained all epochs, retrained from scratch for the full 9 epochs with ``--retrain-seeds``
training seeds, mean test accuracy (the search's own figure is one training run, on the validation
split it selected on).

    python benchmarks/scratch_asha.py [--budget 300] [--seeds 0,1] [--retrain-seeds 3] [--write]
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raynas.metrics import EPOCHS, TEST_ACC, VALID_ACC  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "mbv3-digits-scratch-asha.yaml"
SECTION = "## Early stopping: REA + scratch training with and without ASHA (benchmarks/scratch_asha.py)"
ASHA, FULL = "asha", "none"


@dataclass
class Run:
    arm: str
    seed: int
    candidates: int
    full: int
    wall_s: float
    best_arch: str
    best_valid: float
    true_test: float = float("nan")


class Records:
    """A search listener keeping every candidate record."""

    def __init__(self) -> None:
        self.records: list = []

    def on_start(self, info) -> None: ...

    def on_candidate(self, record) -> None:
        self.records.append(record)

    def on_end(self, summary) -> None: ...


def recipe(arm: str, seed: int, budget_s: float, storage: str, epochs: int | None = None):
    from raynas.recipes import load_recipe

    overrides = [f"seed={seed}", f"budget.sim_seconds={budget_s}", f"backend.storage_path={storage}"]
    if epochs is not None:
        overrides += [f"evaluator.train.epochs={epochs}", f"backend.scheduler.max_t={epochs}"]
    if arm == FULL:
        overrides.append("backend.scheduler=null")
    return load_recipe(RECIPE, overrides)


def run_arm(arm: str, seed: int, budget_s: float, storage: str, epochs: int | None) -> Run:
    from raynas.runtime import build_search

    r = recipe(arm, seed, budget_s, storage, epochs)
    records = Records()
    start = time.perf_counter()
    build_search(r, [records]).run()
    wall = time.perf_counter() - start
    epochs = r.evaluator.config.train["epochs"]
    full = [rec for rec in records.records if rec.metrics[EPOCHS] == epochs]
    best = max(full or records.records, key=lambda rec: rec.metrics[VALID_ACC])  # none full: a tiny budget
    return Run(arm, seed, len(records.records), len(full), wall, best.arch, best.metrics[VALID_ACC])


def true_accuracy(arch_id: str, retrain_seeds: int, epochs: int | None) -> float:
    """Mean test accuracy of ``arch_id`` retrained from scratch for the recipe's epochs, per seed."""
    from raynas.runtime import build_search

    accs = []
    for seed in range(retrain_seeds):
        r = recipe(FULL, 0, 1, tempfile.gettempdir(), epochs)
        r.evaluator.config.train = {**r.evaluator.config.train, "seed": 1000 + seed, "num_threads": 2}
        search = build_search(r)
        (res,) = search.evaluator.evaluate([search.space.from_str(arch_id)])
        accs.append(res.hidden[TEST_ACC])
    return sum(accs) / len(accs)


def section(runs: list[Run], args, load: tuple[float, float]) -> str:
    lines = [SECTION, "",
             f"`{RECIPE.relative_to(ROOT)}`, `budget.sim_seconds: {args.budget:g}` (training seconds per "
             f"worker, 2 workers) in both arms; true accuracy = the best fully trained candidate (by validation) "
             f"retrained {args.retrain_seeds}x from scratch, mean test accuracy.", "",
             "| arm | seed | candidates | trained all epochs | wall s | best valid | true test acc of best |",
             "|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r.arm} | {r.seed} | {r.candidates} | {r.full} | {r.wall_s:.0f} | {r.best_valid:.2f} "
                     f"| {r.true_test:.2f} |")
    for arm in (ASHA, FULL):
        mine = [r for r in runs if r.arm == arm]
        if mine:
            lines.append(f"| **{arm} mean** | | {sum(r.candidates for r in mine) / len(mine):.1f} | "
                         f"{sum(r.full for r in mine) / len(mine):.1f} | {sum(r.wall_s for r in mine) / len(mine):.0f} "
                         f"| {sum(r.best_valid for r in mine) / len(mine):.2f} | "
                         f"**{sum(r.true_test for r in mine) / len(mine):.2f}** |")
    lines += ["", f"Measured {datetime.date.today().isoformat()} with `python benchmarks/scratch_asha.py "
              f"--budget {args.budget:g} --seeds {args.seeds} --retrain-seeds {args.retrain_seeds}` on "
              f"{platform.machine()} ({os.cpu_count()} CPUs), Python {platform.python_version()}; 1-minute load "
              f"average {load[0]:.1f} before and {load[1]:.1f} after."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=300.0, help="budget.sim_seconds per run (300)")
    parser.add_argument("--seeds", default="0,1", help="search seeds, comma-separated (0,1)")
    parser.add_argument("--retrain-seeds", type=int, default=3, help="trainings of each best arch (3)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per candidate (the recipe's: 9)")
    parser.add_argument("--write", action="store_true", help="write the section into docs/BENCHMARKS.md")
    args = parser.parse_args(argv)
    from raynas.ray_env import ensure_ray

    load0 = os.getloadavg()[0]
    ensure_ray(None, 2)
    runs = []
    with tempfile.TemporaryDirectory() as storage:
        for seed in (int(s) for s in args.seeds.split(",")):
            for arm in (ASHA, FULL):
                run = run_arm(arm, seed, args.budget, storage, args.epochs)
                run.true_test = true_accuracy(run.best_arch, args.retrain_seeds, args.epochs)
                runs.append(run)
                print(f"{arm:5s} seed {seed}: {run.candidates} candidates ({run.full} full), wall {run.wall_s:.0f} s, "
                      f"best valid {run.best_valid:.2f}, true test {run.true_test:.2f}  {run.best_arch}", flush=True)
    from benchmarks.docs import publish

    publish(SECTION, section(runs, args, (load0, os.getloadavg()[0])), args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
