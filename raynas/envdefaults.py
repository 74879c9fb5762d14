"""``env_defaults``: set environment variables for a block, without overriding what the user exported."""
from __future__ import annotations

import contextlib
import os
from typing import Iterator, Mapping


@contextlib.contextmanager
def env_defaults(values: Mapping[str, str]) -> Iterator[None]:
    """Within the block, each variable not already set has the given value; afterwards the variables
    this call added are removed again (those the user had set are never touched)."""
    added = [key for key in values if key not in os.environ]
    os.environ.update({key: values[key] for key in added})
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


# raynas logs to MLflow itself and draws its own progress lines: Tune's per-trial loggers and console
# output are off for raynas' own Tune runs only (restored afterwards, so other Tune runs keep theirs).
TUNE_CONSOLE_OFF = {"RAY_AIR_NEW_OUTPUT": "0"}  # with verbose=0: no experiment box, no status tables
QUIET_TUNE = {**TUNE_CONSOLE_OFF, "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}
