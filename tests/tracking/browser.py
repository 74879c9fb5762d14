"""Headless Chromium for the UI tests (Debian package ``chromium``; ``make test`` installs it).

A missing browser is a failure, never a skip. Flags: without the background-networking ones Chromium
hangs on a closed network; each call gets a new profile directory.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]
TIMEOUT_S = 120
RENDER_BUDGET_MS = 15000  # virtual time for the MLflow single-page app to fetch and render


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium is not installed: run `make test` (installs it) or "
                    "`apt-get install -y chromium`", pytrace=False)
    return path


def _run(args: list[str]) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="raynas-chromium-") as profile:
        return subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=TIMEOUT_S)


def dump_dom(url: str, budget_ms: int = RENDER_BUDGET_MS) -> str:
    """The DOM after the page has run for ``budget_ms`` of virtual time."""
    proc = _run([f"--virtual-time-budget={budget_ms}", "--window-size=1400,900", "--dump-dom", url])
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def screenshot(url: str, path: Path, size: str = "1400,900", budget_ms: int = RENDER_BUDGET_MS) -> Path:
    proc = _run([f"--virtual-time-budget={budget_ms}", f"--window-size={size}", f"--screenshot={path}", url])
    assert proc.returncode == 0 and path.is_file(), proc.stderr[-2000:]
    return path


def ink_stats(png: Path) -> tuple[int, float]:
    """(distinct colours, share of pixels that are not the dominant background colour)."""
    from PIL import Image

    img = Image.open(png).convert("RGB")
    colors = img.getcolors(maxcolors=1 << 24)
    total = img.width * img.height
    return len(colors), 1.0 - max(c for c, _ in colors) / total
