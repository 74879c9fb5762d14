"""clusters/local: a head and a worker node on this machine, a recipe run against them, and a stop that
ends exactly the processes the start script began (nothing else of Ray's on the machine)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOCAL = REPO / "clusters" / "local"
BIN = Path(sys.executable).parent
JOBS = """
import json, sys, ray
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
print(json.dumps({"nodes": len([n for n in ray.nodes() if n["Alive"]]),
                  "drivers": [j["Entrypoint"] for j in ray._private.state.jobs()]}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


def processes_under(path: str) -> list[str]:
    """Command lines of the processes that name ``path`` (Ray's per-cluster session directory)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if path in cmd:
            found.append(cmd)
    return found


@pytest.fixture()
def cluster(tmp_path):
    env = {**os.environ, "RAYNAS_LOCAL_DIR": str(tmp_path / "cluster"), "RAYNAS_LOCAL_PORT": str(free_port()),
           "RAY_BIN": str(BIN / "ray"), "RAYNAS_BIN": str(BIN / "raynas")}
    started = subprocess.run(["bash", LOCAL / "start.sh", "1", "1"], env=env, cwd=tmp_path, capture_output=True,
                             text=True, timeout=120)
    assert started.returncode == 0, started.stderr[-2000:]
    state = tmp_path / "cluster"
    yield env, state
    subprocess.run(["bash", LOCAL / "stop.sh"], env=env, cwd=tmp_path, capture_output=True, timeout=120)


def test_a_recipe_runs_on_the_local_cluster_and_stop_ends_only_its_processes(cluster, tmp_path, nb201_path):
    env, state = cluster
    address = (state / "address").read_text().strip()
    pids = [int(p) for p in (state / "pids").read_text().split()]
    session = (state / "temp_dir").read_text().strip()
    assert len(pids) == 2 and all(alive(p) for p in pids)
    again = subprocess.run(["bash", LOCAL / "start.sh", "1"], env=env, cwd=tmp_path, capture_output=True,
                           text=True, timeout=60)
    assert again.returncode == 2 and "already running" in again.stderr  # one cluster per state dir
    db = tmp_path / "mlflow.db"
    run = subprocess.run(["bash", LOCAL / "run.sh", REPO / "recipes" / "quickstart.yaml", "--quiet",
                          "--tracking-uri", f"sqlite:///{db}"], env={**env, "RAYNAS_NB201_PATH": nb201_path},
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Best arch:" in run.stdout
    seen = json.loads(subprocess.run([BIN / "python", "-c", JOBS, address], capture_output=True, text=True,
                                     timeout=60).stdout)
    assert seen["nodes"] == 2
    assert any("raynas" in (e or "") and "run" in (e or "") for e in seen["drivers"]), seen  # joined, not local

    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{db}")
    (exp,) = [e for e in client.search_experiments() if e.name != "Default"]
    (search,) = client.search_runs([exp.experiment_id])
    assert search.data.metrics["num_candidates"] > 0

    stopped = subprocess.run(["bash", LOCAL / "stop.sh"], env=env, cwd=tmp_path, capture_output=True,
                             text=True, timeout=120)
    assert stopped.returncode == 0 and "stopped (2 nodes)" in stopped.stdout, stopped.stderr
    assert not any(alive(p) for p in pids)
    assert processes_under(session) == []  # raylets, GCS, workers of this cluster: all gone
    assert not (state / "pids").exists()

