"""A killed ``raynas run`` loses no finished candidate: ``SIGKILL`` at three moments of a simulated
search, then ``raynas resume-tracking`` brings MLflow to exactly the candidates that had finished.

The witness of "finished" is a listener placed after the tracker (``raynas run``'s own code path, with
``build_search`` wrapped to add it) that writes each candidate's index unbuffered to a file: whatever
it saw, the tracker had already been given."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from raynas.tracking.spool import load_state, spool_files

WITNESS = textwrap.dedent("""
    import os, sys
    import raynas.runtime as runtime
    from raynas.cli import main

    class Witness:
        def __init__(self, path):
            self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        def on_start(self, info): pass
        def on_candidate(self, record): os.write(self.fd, b"%d\\n" % record.index)
        def on_end(self, summary): pass

    build = runtime.build_search
    runtime.build_search = lambda recipe, listeners=(), **kw: build(recipe, [*listeners, Witness("seen.txt")], **kw)
    sys.exit(main(["run", sys.argv[1], "--quiet"]))
""")


def seen(work: Path) -> list[int]:
    path = work / "seen.txt"
    return [int(x) for x in path.read_text().split()] if path.exists() else []


@pytest.mark.parametrize("kill_after", [30, 450, 1300])
def test_sigkill_then_resume_tracking_loses_nothing(tmp_path, nb201_path, kill_after):
    recipe = {"name": "killed", "seed": 0, "space": {"name": "nb201"},
              "evaluator": {"name": "tabular", "data_path": nb201_path}, "strategy": {"name": "random"},
              "budget": {"max_candidates": 1_000_000}, "backend": {"name": "simulate"},
              "tracking": {"batch_size": 200, "plots": False}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    (tmp_path / "witness.py").write_text(WITNESS)
    proc = subprocess.Popen([sys.executable, "witness.py", "r.yaml"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while len(seen(tmp_path)) < kill_after and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)  # the process this test started, nothing else
    proc.wait(timeout=30)
    proc.stderr.close()
    finished = seen(tmp_path)
    (spool,) = spool_files(tmp_path / ".raynas" / "spool")
    spooled = [r.index for r in load_state(spool).records]
    assert spooled[: len(finished)] == finished == list(range(len(finished)))  # every finished one spooled
    assert len(spooled) - len(finished) <= 1  # at most the one being handed to the witness

    done = subprocess.run([sys.executable, "-m", "raynas", "resume-tracking"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("killed").experiment_id])
    steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "candidate/valid_acc"))
    assert steps == spooled  # exactly the spooled candidates, none twice
    assert run.info.status == "KILLED" and not spool.exists()


def test_resume_of_an_unknown_run_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    from raynas.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["resume", "0123abcd"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("raynas: error: no spool of run 0123abcd in ") and "\n" not in err
