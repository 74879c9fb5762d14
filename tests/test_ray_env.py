"""``ensure_ray`` starts a private local Ray whose worker processes keep Tune's per-checkpoint and
per-restore INFO lines off the console (a fresh process: the test session has its own Ray)."""
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
