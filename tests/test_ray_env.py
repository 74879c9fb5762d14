"""``raynas.ray_env``: ``ensure_ray`` starts a private local Ray whose worker processes keep Tune's
per-checkpoint and per-restore INFO lines off the console (a fresh process: the test session has its own
Ray); ``quiet_tune`` changes nothing outside its block."""
from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

from raynas.ray_env import CHATTY_WORKER_LOGGERS

SCRIPT = textwrap.dedent("""
    import logging, ray
    from raynas.ray_env import CHATTY_WORKER_LOGGERS, ensure_ray

    assert ensure_ray(num_cpus=1) and not ensure_ray()  # starts once, then reuses
    levels = ray.get(ray.remote(lambda: [logging.getLogger(n).getEffectiveLevel()
                                         for n in CHATTY_WORKER_LOGGERS]).remote())
    print(levels)
""")


def test_worker_processes_log_warnings_only_from_tunes_chatty_loggers(tmp_path):
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == str([logging.WARNING] * len(CHATTY_WORKER_LOGGERS))


def test_quiet_tune_is_scoped(monkeypatch):
    """Within the block Tune's console and per-trial loggers are off and its file warnings silenced;
    afterwards everything is as before, and a variable the user exported is never touched."""
    import os

    from raynas.ray_env import TUNE_FILE_WARNING_LOGGERS, quiet_tune

    monkeypatch.delenv("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", raising=False)
    monkeypatch.setenv("RAY_AIR_NEW_OUTPUT", "1")  # the user's choice
    loggers = [logging.getLogger(n) for n in TUNE_FILE_WARNING_LOGGERS]
    before = [log.level for log in loggers]
    with quiet_tune():
        assert os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] == "1" and os.environ["RAY_AIR_NEW_OUTPUT"] == "1"
        assert all(log.level == logging.ERROR for log in loggers)
    with quiet_tune(trial_loggers=True):
        assert "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS" not in os.environ
    assert "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS" not in os.environ and os.environ["RAY_AIR_NEW_OUTPUT"] == "1"
    assert [log.level for log in loggers] == before
