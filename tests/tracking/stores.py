"""Real MLflow stores and servers for the tracking tests.

Creating a sqlite store runs MLflow's migrations (~8 s on a busy 2-core box); ``fresh_sqlite_uri``
pays that once per test process and copies the migrated file. ``running_server`` starts a real lean
``mlflow server`` (``raynas.tracking.server``) and always stops it.
"""
from __future__ import annotations

import atexit
import contextlib
import shutil
import tempfile
import urllib.request
from pathlib import Path
from typing import Iterator

from raynas.tracking.server import MlflowServer, free_port

DB_NAME = "mlflow.db"
_template: Path | None = None


def _template_db() -> Path:
    global _template
    if _template is None:
        from mlflow.tracking import MlflowClient

        tmp = Path(tempfile.mkdtemp(prefix="raynas-mlflow-template-"))
        atexit.register(shutil.rmtree, tmp, True)
        MlflowClient(f"sqlite:///{tmp / DB_NAME}").search_experiments()  # creates + migrates
        _template = tmp / DB_NAME
    return _template


def fresh_sqlite_uri(directory: Path) -> str:
    """``sqlite:///<directory>/mlflow.db``: a new, empty, migrated MLflow store."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_template_db(), directory / DB_NAME)
    return f"sqlite:///{directory / DB_NAME}"


@contextlib.contextmanager
def running_server(directory: Path, port: int | None = None) -> Iterator[MlflowServer]:
    """A real ``mlflow server`` on 127.0.0.1 over a fresh store in ``directory`` (log: server.log)."""
    uri = fresh_sqlite_uri(directory) if not (directory / DB_NAME).exists() else f"sqlite:///{directory / DB_NAME}"
    with open(directory / "server.log", "ab") as log:
        server = MlflowServer(uri, port or free_port(), artifacts_dir=directory / "mlruns", log=log)
        try:
            yield server.start()
        finally:
            server.stop()


def get_json(url: str) -> dict:
    import json

    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.loads(resp.read())


def get_bytes(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return resp.read()
