"""A lean local ``mlflow server`` over a sqlite store (``raynas ui``; the tests use it too).

Lean: bound to 127.0.0.1, one worker, MLflow's job execution off. Artifacts: the server proxies
uploads of runs it creates to ``<store dir>/mlruns`` (``--artifacts-destination``), the directory the
tracker writes beside a sqlite store (``file://…/mlruns/<experiment>``); runs with such ``file://``
locations are read directly, so the UI shows the artifacts of both kinds of runs.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO

from raynas.errors import RaynasError

HOST = "127.0.0.1"
DEFAULT_PORT = 5000
HEALTH_PATH = "/health"
ML_VIEW = "?workflowType=machine_learning"  # UI pages in the "Model training" view (default: GenAI)
ARTIFACTS_DIR = "mlruns"
LEAN_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((HOST, port)) == 0


class MlflowServer:
    """``mlflow server`` for ``store_uri`` on ``127.0.0.1:port``, in its own process group.

    ``start()`` returns once ``/health`` answers (``RaynasError`` if the port is taken or the server
    dies or stays silent for ``start_timeout_s``); ``stop()`` ends the whole group (SIGTERM, then
    SIGKILL). Use it as a context manager to be sure nothing is left running.
    """

    def __init__(self, store_uri: str, port: int = DEFAULT_PORT, artifacts_dir: str | Path | None = None,
                 log: IO | int | None = subprocess.DEVNULL, start_timeout_s: float = START_TIMEOUT_S) -> None:
        self.store_uri = store_uri
        self.port = port
        self.artifacts_dir = Path(artifacts_dir).resolve() if artifacts_dir else None
        self.log = log
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", self.store_uri,
               "--host", HOST, "--port", str(self.port), "--workers", "1"]
        if self.artifacts_dir is not None:
            cmd += ["--serve-artifacts", "--artifacts-destination", str(self.artifacts_dir)]
        return cmd

    def start(self) -> "MlflowServer":
        if port_in_use(self.port):
            raise RaynasError(f"port {self.port} on {HOST} is in use; pick another with --port")
        self.proc = subprocess.Popen(self.command(), env={**os.environ, **LEAN_ENV}, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + self.start_timeout_s
        while not self.healthy():
            if self.proc.poll() is not None:
                raise RaynasError(f"mlflow server exited with code {self.proc.returncode} before serving "
                                  f"{self.store_uri}")
            if time.monotonic() > deadline:
                self.stop()
                raise RaynasError(f"mlflow server did not answer on {self.url} in {self.start_timeout_s:.0f} s")
            time.sleep(0.25)
        return self

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + HEALTH_PATH, timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    def wait(self) -> int:
        """Block until the server exits; returns its exit code."""
        return self.proc.wait() if self.proc else 0

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self._reap_group()
            return
        for sig, timeout in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, STOP_TIMEOUT_S)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout)
                break
            except subprocess.TimeoutExpired:
                continue
        self._reap_group()

    def _reap_group(self) -> None:
        """Children (the uvicorn worker) may outlive the ``mlflow`` parent: end the group too."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def __enter__(self) -> "MlflowServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
