"""``raynas ui`` serves a tracker-made sqlite store through a real ``mlflow server``; ``raynas run``
logs to that server; headless Chromium renders the experiment and run pages with their runs, metrics
and plot artifacts; Ctrl-C stops everything.

Set ``RAYNAS_SCREENSHOT_DIR`` to keep the rendered screenshot (docs/img/mlflow-run.png comes from it).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from raynas.cli import main
from raynas.recipes.schema import TrackingSpec
from raynas.runtime import build_search
from raynas.tracking import MlflowTracker
from raynas.tracking.server import ML_VIEW, free_port, port_in_use
from tests.runtime.helpers import recipe
from tests.tracking.browser import dump_dom, ink_stats, screenshot
from tests.tracking.stores import fresh_sqlite_uri, get_bytes, get_json

PLOTS = ("plots/progress.png", "plots/pareto.png")
SCREENSHOT_ENV = "RAYNAS_SCREENSHOT_DIR"


@pytest.fixture(scope="module")
def ui(nb201_path, tmp_path_factory):
    """(work dir, store URI, UI URL, tracker of a search logged directly to the store, ui process)."""
    work = tmp_path_factory.mktemp("ui")
    uri = fresh_sqlite_uri(work)
    tracker = MlflowTracker(TrackingSpec(uri, spool_dir=str(work / "spool")))
    build_search(recipe(nb201_path, "budget.sim_seconds=12000"), [tracker]).run()
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "raynas", "ui", "--tracking-uri", uri, "--port", str(port)],
                            cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in line, line + proc.stderr.read()[-2000:]
        yield work, uri, f"http://127.0.0.1:{port}", tracker, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    assert not port_in_use(port), "the mlflow server outlived raynas ui"


def test_ui_serves_runs_and_artifacts_the_tracker_wrote(ui):
    _, _, url, tracker, _ = ui
    api = f"{url}/ajax-api/2.0/mlflow"
    run = get_json(f"{api}/runs/get?run_id={tracker.run_id}")["run"]
    assert run["info"]["artifact_uri"].startswith("file://")  # written by the tracker, not the server
    metrics = {m["key"] for m in run["data"]["metrics"]}
    assert {"best_valid_acc", "num_candidates", "candidate/valid_acc", "best_so_far/valid_acc"} <= metrics
    listed = get_json(f"{api}/artifacts/list?run_id={tracker.run_id}&path=plots")["files"]
    assert sorted(f["path"] for f in listed) == sorted(PLOTS)
    for plot in PLOTS:
        png = get_bytes(f"{url}/get-artifact?path={urllib.parse.quote(plot)}&run_uuid={tracker.run_id}")
        assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_run_logs_to_the_running_server(ui, nb201_path, tmp_path, capsys, monkeypatch):
    work, _, url, _, _ = ui
    path = tmp_path / "via-server.yaml"
    path.write_text(yaml.safe_dump({
        "name": "via-server", "space": {"name": "nb201"}, "strategy": {"name": "random"},
        "evaluator": {"name": "tabular", "data_path": nb201_path}, "budget": {"max_candidates": 40},
        "backend": {"name": "simulate"}}))
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(path), "--tracking-uri", url, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"Open the UI:  {url}/#/experiments/" in out
    client = MlflowClient(url)
    (run,) = client.search_runs([client.get_experiment_by_name("via-server").experiment_id])
    steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "candidate/valid_acc"))
    assert steps == list(range(40)) and run.info.status == "FINISHED"
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # proxied by the server ...
    stored = list((work / "mlruns").glob(f"*/{run.info.run_id}/artifacts/plots/progress.png"))
    assert len(stored) == 1  # ... into mlruns/ beside the store, like the tracker's own runs


def test_browser_renders_experiment_and_run_pages(ui, tmp_path):
    _, _, url, tracker, _ = ui
    exp_id = tracker.experiment_id
    experiment = dump_dom(f"{url}/#/experiments/{exp_id}{ML_VIEW}")
    run_name = MlflowClient(ui[1]).get_run(tracker.run_id).info.run_name
    assert run_name in experiment and "runtime-test" in experiment

    overview = dump_dom(f"{url}/#/experiments/{exp_id}/runs/{tracker.run_id}{ML_VIEW}")
    for text in ("best_valid_acc", "num_candidates", "regret_test_acc", "raynas.best_arch", "Finished"):
        assert text in overview, text

    page = f"{url}/#/experiments/{exp_id}/runs/{tracker.run_id}/artifacts/plots/progress.png{ML_VIEW}"
    artifacts = dump_dom(page)
    for text in ("plots", "candidates.json", "candidates.parquet", "recipe.yaml", "progress.png"):
        assert text in artifacts, text
    assert '<img alt="plots/progress.png" src="blob:' in artifacts  # the plot was fetched and shown

    shot = screenshot(page, tmp_path / "mlflow-run.png", size="1600,900")
    colors, ink = ink_stats(shot)
    assert colors > 200 and ink > 0.1, (colors, ink)
    if os.environ.get(SCREENSHOT_ENV):
        shutil.copy(shot, Path(os.environ[SCREENSHOT_ENV]) / shot.name)


def test_ctrl_c_stops_ui_and_server(ui):
    _, _, url, _, proc = ui
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 0
    assert not port_in_use(int(url.rsplit(":", 1)[1]))
