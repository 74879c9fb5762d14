"""``raynas resume RUN_ID``: finish a search whose driver died (killed, its machine lost).

What it needs was written as the search ran: the driver's spool (``.raynas/spool/<id>.jsonl``: the
recipe, the MLflow run id, every candidate counted so far) and the Tune experiment (under
``backend.storage_path``; its location is the run's ``raynas.tune_experiment`` tag). The search
continues with Tune's ``Tuner.restore`` (experiment state and the Searcher's saved state, errored
trials run again) and the tracker reopens the same MLflow run: candidates already there are not
logged again, none is lost, and the budget is the recipe's.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from raynas.commands.registry import command
from raynas.errors import RaynasError


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN_ID", help="the MLflow run id of the search (or the path of its spool)")
    p.add_argument("--spool-dir", help="where the search's driver spooled (default: ./.raynas/spool)")
    p.add_argument("--tracking-uri", help="the MLflow tracking URI (default: the one the search used)")
    p.add_argument("--address", help="the Ray cluster to join (default: the recipe's ray.address)")
    p.add_argument("--quiet", action="store_true", help="no live progress line")


@command("resume", "finish a search whose driver died (Tune restore; the same MLflow run)", _args)
def cmd_resume(args: argparse.Namespace) -> int:
    import dataclasses

    from raynas.commands.run import finish_run, make_progress
    from raynas.runtime import build_search
    from raynas.runtime.records import TUNE_EXPERIMENT
    from raynas.tracking.mlflow_tracker import MlflowTracker
    from raynas.tracking.spool import load_state

    spool = _spool(args)
    try:
        spec = load_state(spool).spec
        recipe = _recipe(spec.recipe_yaml, args.address)
        experiment = spec.tags.get(TUNE_EXPERIMENT)
        if experiment is None:
            raise ValueError(f"{spool}: the search recorded no Tune experiment (backend {recipe.backend.name!r}); "
                             f"run it again instead")
        tracking = dataclasses.replace(recipe.tracking, tracking_uri=args.tracking_uri or spec.tracking_uri)
        tracker = MlflowTracker.resume(spool, tracking)
    except ValueError as err:
        raise RaynasError(str(err)) from None
    print(f"Resuming MLflow run {tracker.run_id}: {len(tracker.state.records)} candidates logged; "
          f"Tune experiment {experiment}")
    search = build_search(recipe, [tracker, *make_progress(recipe, args.quiet)])
    summary = search.run(experiment=experiment.rstrip("/").rsplit("/", 1)[-1], restore=True)
    return finish_run(summary, tracker)


def _spool(args: argparse.Namespace) -> Path:
    from raynas.tracking.mlflow_tracker import SPOOL_DIR
    from raynas.tracking.spool import find_spool

    if Path(args.run).is_file():
        return Path(args.run)
    spool_dir = Path(args.spool_dir) if args.spool_dir else Path.cwd() / SPOOL_DIR
    found = find_spool(spool_dir, args.run)
    if found is None:
        raise RaynasError(f"no spool of run {args.run} in {spool_dir}: the search finished (its spool is removed "
                          f"once MLflow holds everything) or its driver ran elsewhere (give --spool-dir)")
    return found


def _recipe(recipe_yaml: str, address: str | None):
    import yaml

    from raynas.recipes.loader import apply_overrides, parse_with_plugins

    overrides = [f"ray.address={address}"] if address else []
    return parse_with_plugins(apply_overrides(yaml.safe_load(recipe_yaml), overrides))
