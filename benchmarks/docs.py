"""Shared by the benchmark scripts: write one ``## section`` of docs/BENCHMARKS.md in place."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "BENCHMARKS.md"
DOC_TITLE = "# Benchmarks"


def publish(section: str, text: str, write: bool) -> None:
    """A benchmark's ending: print its section; with ``write`` (the scripts' ``--write``), also put it
    into docs/BENCHMARKS.md and say so."""
    print(text)
    if write:
        write_section(section, text)
        print(f"wrote the section to {DOC.relative_to(ROOT)}")


def write_section(section: str, text: str, path: Path = DOC) -> None:
    """Replace the block that starts with the heading line ``section`` (up to the next ``#``/``##``
    heading) by ``text``, or append it; the rest of the file is left untouched. The file is re-read
    just before writing, since other benchmarks may edit it too."""
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.read_text() if path.exists() else ""
    if not old.strip():
        old = DOC_TITLE + "\n"
    lines = old.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == section), None)
    block = text.rstrip("\n") + "\n"
    if start is None:
        new = old.rstrip("\n") + "\n\n" + block
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(("## ", "# "))), len(lines))
        tail = "".join(lines[end:])
        new = "".join(lines[:start]) + block + ("\n" + tail if tail else "")
    if not new.lstrip().startswith(DOC_TITLE):
        new = DOC_TITLE + "\n\n" + new.lstrip("\n")
    path.write_text(new)
