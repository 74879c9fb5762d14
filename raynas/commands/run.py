"""``raynas run`` and ``raynas validate``."""
from __future__ import annotations

import argparse
import collections
import sys

from raynas.commands.registry import command
from raynas.metrics import REGRET_TEST_ACC

SEARCH_FAILED = 1  # exit status of a search that stopped on failed candidates (2 is bad input)
SHOWN_ERRORS = 5  # distinct failure messages printed at the end


def add_recipe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="path to a YAML recipe (see recipes/)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe field, e.g. --set strategy.population_size=20 (repeatable)")


def _validate_args(p: argparse.ArgumentParser) -> None:
    add_recipe_args(p)


def _run_args(p: argparse.ArgumentParser) -> None:
    add_recipe_args(p)
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite:///./mlflow.db)")
    p.add_argument("--address", help="the Ray cluster to join: auto, HOST:PORT or ray://HOST:PORT "
                                     "(overrides the recipe's ray.address; default: a private local Ray)")
    p.add_argument("--quiet", action="store_true", help="no live progress line")


@command("validate", "check a recipe (fields, then its components: data, devices, LUTs) and print it resolved",
         _validate_args)
def cmd_validate(args: argparse.Namespace) -> int:
    from raynas.recipes import dump_recipe, load_recipe
    from raynas.runtime import build_search

    recipe = load_recipe(args.recipe, args.overrides)
    build_search(recipe)  # builds the space, evaluator, strategy and constraints' cost models; starts nothing
    print(f"# {args.recipe}: valid")
    print(dump_recipe(recipe), end="")
    return 0


@command("run", "run a search described by a recipe", _run_args)
def cmd_run(args: argparse.Namespace) -> int:
    from raynas.runtime import build_search

    recipe = run_recipe(args)
    tracker = make_tracker(recipe, args.tracking_uri)
    search = build_search(recipe, [tracker, *make_progress(recipe, args.quiet)])
    return finish_run(search.run(), tracker)


def make_progress(recipe, quiet: bool) -> list:
    """The live progress line's listener, unless ``quiet``."""
    from raynas.tracking import ConsoleProgress

    return [] if quiet else [ConsoleProgress(budget_s=recipe.budget.sim_seconds,
                                             max_candidates=recipe.budget.max_candidates)]


def finish_run(summary, tracker) -> int:
    """Print how a search ended; its exit status (``SEARCH_FAILED`` when it stopped on failures)."""
    _print_result(summary, tracker)
    if summary.stop_reason is not None:
        print(f"raynas: error: search stopped: {summary.stop_reason}", file=sys.stderr)
        return SEARCH_FAILED
    return 0


def run_recipe(args: argparse.Namespace):
    """The recipe ``raynas run`` runs: the file, its ``--set`` overrides, then ``--address``."""
    from raynas.recipes import load_recipe

    return load_recipe(args.recipe, args.overrides + ([f"ray.address={args.address}"] if args.address else []))


def make_tracker(recipe, tracking_uri: str | None = None):
    """The ``MlflowTracker`` a recipe's ``tracking`` section asks for (``tracking_uri`` overrides)."""
    import dataclasses

    from raynas.tracking import MlflowTracker

    return MlflowTracker(dataclasses.replace(recipe.tracking,
                                             tracking_uri=tracking_uri or recipe.tracking.tracking_uri))


def _print_result(summary, tracker) -> None:
    best = summary.best
    print(f"\nSearch finished: {summary.num_candidates} candidates, clock {summary.sim_time_s:,.0f} s, "
          f"wall {summary.wall_time_s:.1f} s")
    if best is not None:
        print(f"Best arch: {best.arch}")
        shown = {**best.metrics, **best.hidden}
        print("  " + ", ".join(f"{k}={v:g}" for k, v in shown.items()))
        regret = summary.metrics().get(REGRET_TEST_ACC)
        if regret is not None:
            print(f"  regret to the benchmark's best test accuracy: {regret:.2f}")
    _print_failures(summary)
    _print_tracking(tracker)


def _print_failures(summary) -> None:
    """How many candidates failed and why (the most frequent error lines first)."""
    if not summary.num_failed:
        return
    print(f"{summary.num_failed} candidates failed:")
    counts = collections.Counter(f.error for f in summary.failures)
    for error, n in counts.most_common(SHOWN_ERRORS):
        print(f"  {n} × {error}")
    if len(counts) > SHOWN_ERRORS:
        print(f"  … and {len(counts) - SHOWN_ERRORS} other errors (the run's candidates table lists each)")


def _print_tracking(tracker) -> None:
    from raynas.tracking.mlflow_tracker import RESUME_COMMAND, sqlite_path
    from raynas.tracking.server import ML_VIEW

    uri = tracker.tracking_uri
    if tracker.pending or tracker.run_id is None:
        print(f"MLflow: {tracker.pending} candidates not logged ({uri} unreachable); replay with:  "
              f"{RESUME_COMMAND} {tracker.spool.path if tracker.spool else ''}")
        return
    print(f"MLflow run {tracker.run_id} in experiment {tracker.experiment_id} at {uri}")
    page = f"#/experiments/{tracker.experiment_id}/runs/{tracker.run_id}{ML_VIEW}"
    if sqlite_path(uri):
        print(f"Open the UI:  raynas ui --tracking-uri {uri}   (or: mlflow ui --backend-store-uri {uri})  "
              f"then http://127.0.0.1:5000/{page}")
    elif uri.startswith(("http://", "https://")):
        print(f"Open the UI:  {uri.rstrip('/')}/{page}")
