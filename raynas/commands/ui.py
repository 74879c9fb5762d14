"""``raynas ui``: the MLflow UI on a local store, until Ctrl-C."""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from raynas.commands.registry import command
from raynas.errors import RaynasError

UI_LOG = Path(".raynas") / "mlflow-ui.log"


def _args(p: argparse.ArgumentParser) -> None:
    from raynas.tracking.server import DEFAULT_PORT

    p.add_argument("--tracking-uri", help="sqlite:///path/to/mlflow.db (default: ./mlflow.db)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port on 127.0.0.1 (default {DEFAULT_PORT})")


@command("ui", "open the MLflow UI on a local store (a lean mlflow server on 127.0.0.1)", _args)
def cmd_ui(args: argparse.Namespace) -> int:
    from raynas.tracking.mlflow_tracker import default_tracking_uri, sqlite_path
    from raynas.tracking.server import ARTIFACTS_DIR, ML_VIEW, MlflowServer

    uri = args.tracking_uri or default_tracking_uri()
    db = sqlite_path(uri)
    if db is None:
        raise RaynasError(f"--tracking-uri {uri}: raynas ui serves a local sqlite store "
                          f"(sqlite:///path/to/mlflow.db); a server URI is already a UI: open it in a browser")
    if not db.is_file():
        raise RaynasError(f"no MLflow store at {db}: run a search first (raynas run RECIPE)")
    log_path = db.parent / UI_LOG
    log_path.parent.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _exit)  # run the finally below on `kill` too: never orphan the server
    with open(log_path, "ab") as log:
        server = MlflowServer(uri, args.port, artifacts_dir=db.parent / ARTIFACTS_DIR, log=log)
        try:
            server.start()
            print(f"MLflow UI on {uri}: {server.url}  (Ctrl-C to stop; server log: {log_path})", flush=True)
            print(f"Experiments: {server.url}/#/experiments{ML_VIEW}", flush=True)
            return server.wait()
        except KeyboardInterrupt:
            return 0
        finally:
            server.stop()


def _exit(signum, frame) -> None:
    sys.exit(0)
