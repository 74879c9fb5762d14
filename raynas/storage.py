"""Where Tune experiments and the files trials hand to each other live: a local directory (one
machine, or a filesystem every node mounts) or a URI that every node reaches (``s3://``, ``gs://``,
any scheme ``pyarrow.fs`` knows, ``file://`` included).

* ``resolve(location)`` is the form Tune's ``RunConfig(storage_path=…)`` takes: a local path made
  absolute (Tune refuses relative ones), a URI unchanged; ``None`` gives ``DEFAULT`` under the working
  directory. ``join`` appends path parts to either.
* ``upload(local_dir, location)`` / ``local_copy(location)`` move a directory to and from a location
  with pyarrow's filesystems (what Tune itself uses for its storage): a trial writes what another
  trial, on another node, reads. For a local location both are plain directory access.
"""
from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

DEFAULT = ".raynas/tune"  # under the working directory: the one-machine default
SCHEME = "://"


def is_remote(location: str) -> bool:
    """True for a URI (``s3://bucket/x``, ``file:///x``), False for a path."""
    return SCHEME in location


def resolve(location: str | Path | None) -> str:
    """``location`` as Tune's ``storage_path``: an absolute local path, or the URI unchanged."""
    if location is None:
        return str((Path.cwd() / DEFAULT).resolve())
    text = str(location)
    return text.rstrip("/") if is_remote(text) else str(Path(text).expanduser().resolve())


def join(location: str, *parts: str) -> str:
    """``location`` with ``parts`` appended (``/``-separated for a URI)."""
    if is_remote(location):
        return "/".join([location.rstrip("/"), *parts])
    return str(Path(location, *parts))


def _filesystem(location: str):
    from pyarrow import fs

    return fs.FileSystem.from_uri(location)


def upload(local_dir: str | Path, location: str) -> None:
    """Copy the directory ``local_dir`` to ``location`` (replacing files of the same names)."""
    if not is_remote(location):
        shutil.copytree(local_dir, location, dirs_exist_ok=True)
        return
    from pyarrow import fs

    filesystem, path = _filesystem(location)
    filesystem.create_dir(path, recursive=True)
    fs.copy_files(str(local_dir), path, source_filesystem=fs.LocalFileSystem(), destination_filesystem=filesystem)


@contextlib.contextmanager
def local_copy(location: str) -> Iterator[Path]:
    """The directory at ``location`` as a local directory for the block: itself when local, else a
    temporary download removed afterwards. ``FileNotFoundError`` when there is nothing there."""
    if not is_remote(location):
        if not Path(location).exists():
            raise FileNotFoundError(f"no such directory: {location}")
        yield Path(location)
        return
    from pyarrow import fs

    filesystem, path = _filesystem(location)
    if filesystem.get_file_info(path).type == fs.FileType.NotFound:
        raise FileNotFoundError(f"nothing at {location}")
    with tempfile.TemporaryDirectory(prefix="raynas-storage-") as tmp:
        fs.copy_files(path, tmp, source_filesystem=filesystem, destination_filesystem=fs.LocalFileSystem())
        yield Path(tmp)


def remove(location: str) -> None:
    """Delete the directory at ``location`` and everything in it (nothing there: nothing to do)."""
    if not is_remote(location):
        shutil.rmtree(location, ignore_errors=True)
        return
    from pyarrow import fs

    filesystem, path = _filesystem(location)
    if filesystem.get_file_info(path).type != fs.FileType.NotFound:
        filesystem.delete_dir(path)


def read_text(location: str) -> str | None:
    """The text of the file at ``location``, or None when there is none."""
    if not is_remote(location):
        path = Path(location)
        return path.read_text() if path.is_file() else None
    filesystem, path = _filesystem(location)
    try:
        with filesystem.open_input_stream(path) as stream:
            return stream.read().decode()
    except FileNotFoundError:
        return None
