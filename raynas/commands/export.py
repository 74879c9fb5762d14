"""``raynas export RUN_ID --out DIR``: the best architecture of a search (and its model, if the
evaluator can export one)."""
from __future__ import annotations

import argparse

from raynas.commands.registry import command


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id", help="MLflow run id of a search (printed by raynas run)")
    p.add_argument("--out", required=True, help="directory to write best_arch.json (and model/) into")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite:///./mlflow.db)")


@command("export", "write the best architecture of a search run (and its model when exportable)", _args)
def cmd_export(args: argparse.Namespace) -> int:
    from mlflow.tracking import MlflowClient

    from raynas.tracking.export import export_best
    from raynas.tracking.mlflow_tracker import default_tracking_uri
    from raynas.tracking.resilience import quick_http

    uri = args.tracking_uri or default_tracking_uri()
    with quick_http():
        done = export_best(MlflowClient(uri), args.run_id, args.out, uri)
    best = done.best
    print(f"Best arch: {best['arch']}  ({best['metric']}={best['metrics'].get(best['metric'])})")
    print(f"Wrote {done.json_path}")
    print(f"Wrote MLflow model {done.model_path}" if done.model_path else done.note)
    return 0
