"""A real ``mlflow server`` goes away for 6 s in the middle of a ~22-s search (``raynas run`` in a
subprocess) and comes back on the same port and store: every candidate is there exactly once, the
search neither failed nor stalled, and the spool is gone."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import yaml
from mlflow.tracking import MlflowClient

from raynas.tracking.resilience import quick_http
from raynas.tracking.server import MlflowServer, free_port
from tests.tracking.stores import fresh_sqlite_uri

N = 55
DELAY_S = 0.4  # evaluator.wall_delay_s: the search lasts about N * DELAY_S = 22 s
OUTAGE_S = 6.0  # several failed flushes (backoff 1, 2, 4 s), then the server restarts
LOGGED_BEFORE_OUTAGE = 10
EXPERIMENT = "outage"


def _recipe(path: Path, nb201_path: str) -> Path:
    recipe = {"name": EXPERIMENT, "seed": 1, "space": {"name": "nb201"},
              "evaluator": {"name": "tabular", "data_path": nb201_path, "wall_delay_s": DELAY_S},
              "strategy": {"name": "rea", "population_size": 10, "sample_size": 3},
              "budget": {"max_candidates": N}, "backend": {"name": "simulate", "workers": 1},
              "tracking": {"batch_size": 5, "flush_interval_s": 1.0}}
    path.write_text(yaml.safe_dump(recipe))
    return path


def _logged(client: MlflowClient) -> int:
    """Candidates the server holds now (0 while the run does not exist yet)."""
    try:
        exp = client.get_experiment_by_name(EXPERIMENT)
        runs = client.search_runs([exp.experiment_id]) if exp else []
        return len(client.get_metric_history(runs[0].info.run_id, "candidate/valid_acc")) if runs else 0
    except Exception:  # noqa: BLE001 - the server may be starting
        return 0


def _wait(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_server_outage_mid_search_loses_nothing_and_logs_nothing_twice(nb201_path, tmp_path):
    store = tmp_path / "store"
    uri = fresh_sqlite_uri(store)
    port = free_port()
    log = open(tmp_path / "server.log", "ab")
    first = MlflowServer(uri, port, artifacts_dir=store / "mlruns", log=log)
    second = MlflowServer(uri, port, artifacts_dir=store / "mlruns", log=log)
    work = tmp_path / "work"
    work.mkdir()
    proc = None
    t0 = time.monotonic()
    try:
        first.start()
        started = time.monotonic() - t0
        proc = subprocess.Popen(
            [sys.executable, "-m", "raynas", "run", str(_recipe(tmp_path / "r.yaml", nb201_path)),
             "--tracking-uri", first.url], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        client = MlflowClient(first.url)
        with quick_http():
            _wait(lambda: _logged(client) >= LOGGED_BEFORE_OUTAGE, 60, "the first candidates")
        logged_at = time.monotonic() - t0
        first.stop()
        down_at = time.monotonic()
        time.sleep(OUTAGE_S)
        assert proc.poll() is None, "the search ended during the outage: make it longer"
        second.start()
        back_after = time.monotonic() - down_at
        assert proc.poll() is None, "the search ended before the server came back: make it longer"
        out, err = proc.communicate(timeout=120)
        ended = time.monotonic() - t0
        assert proc.returncode == 0, err[-3000:]
        _check_every_candidate_once(MlflowClient(second.url), tmp_path)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        first.stop()
        second.stop()
        log.close()
    assert err.count("cannot be reached") == 1 and "server back after" in err, err[-3000:]
    wall = float(out.split(", wall ")[1].split(" s")[0])
    assert wall < N * DELAY_S + 15, f"the search stalled on the dead server ({wall:.0f} s)"
    assert not list((work / ".raynas" / "spool").glob("*.jsonl"))
    print(f"\noutage timeline: server up {started:.1f} s, {LOGGED_BEFORE_OUTAGE}+ candidates logged "
          f"{logged_at:.1f} s, server down for {back_after:.1f} s, search ended {ended:.1f} s "
          f"(search wall {wall:.1f} s)")


def _check_every_candidate_once(client: MlflowClient, tmp_path: Path) -> None:
    (run,) = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    assert run.info.status == "FINISHED" and run.data.metrics["num_candidates"] == N
    for key in ("candidate/valid_acc", "candidate/test_acc", "candidate/sim_time_s", "best_so_far/valid_acc"):
        steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, key))
        assert steps == list(range(N)), f"{key}: {len(steps)} points, {len(set(steps))} distinct"
    table = json.load(open(client.download_artifacts(run.info.run_id, "candidates.json", str(tmp_path))))
    assert sorted(row[table["columns"].index("index")] for row in table["data"]) == list(range(N))

