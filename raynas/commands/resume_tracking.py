"""``raynas resume-tracking [SPOOL ...]``: send spooled candidates to MLflow once the server is back."""
from __future__ import annotations

import argparse

from raynas.commands.registry import command
from raynas.errors import RaynasError


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("spools", nargs="*", metavar="SPOOL",
                   help="spool files (default: every .raynas/spool/*.jsonl under the current directory)")
    p.add_argument("--tracking-uri", help="send to this URI instead of the one each spool recorded")


@command("resume-tracking", "replay candidates spooled while the MLflow server was unreachable", _args)
def cmd_resume_tracking(args: argparse.Namespace) -> int:
    from pathlib import Path

    from raynas.tracking.mlflow_tracker import SPOOL_DIR
    from raynas.tracking.replay import replay
    from raynas.tracking.spool import spool_files

    paths = [Path(p) for p in args.spools] or spool_files(Path.cwd() / SPOOL_DIR)
    if not paths:
        print(f"nothing to replay: no spool in {Path.cwd() / SPOOL_DIR}")
        return 0
    failed = 0
    for path in paths:
        if not path.is_file():
            raise RaynasError(f"spool {path}: no such file")
        try:
            done = replay(path, args.tracking_uri)
        except ValueError as err:
            raise RaynasError(str(err)) from None
        for message in done.refused:
            print(f"{path}: the store refused {message}; skipped")
        if done.error:
            failed += 1
            print(f"{path}: not sent ({done.error}); spool kept")
        else:
            print(f"{path}: {done.candidates} candidates in MLflow run {done.run_id}; spool removed")
    return 1 if failed else 0
