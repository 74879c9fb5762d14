"""``raynas compare EXPERIMENT``: one plot of the best-so-far curves of an experiment's searches."""
from __future__ import annotations

import argparse
from pathlib import Path

from raynas.commands.registry import command


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", help="MLflow experiment name (the recipe name by default)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite:///./mlflow.db)")
    p.add_argument("--out", help="PNG file to write (default: ./compare-<experiment>.png)")


@command("compare", "plot best-so-far curves of all searches in an experiment", _args)
def cmd_compare(args: argparse.Namespace) -> int:
    from mlflow.tracking import MlflowClient

    from raynas.tracking.compare import best_so_far_curves
    from raynas.tracking.mlflow_tracker import default_tracking_uri
    from raynas.tracking.plots import save_comparison
    from raynas.tracking.resilience import quick_http

    uri = args.tracking_uri or default_tracking_uri()
    with quick_http():
        curves, metric = best_so_far_curves(MlflowClient(uri), args.experiment, uri)
    out = Path(args.out or f"compare-{args.experiment.replace('/', '_')}.png").resolve()
    save_comparison(curves, metric, out, title=f"{args.experiment}: best {metric} so far, {len(curves)} runs")
    print(out)
    return 0
