"""``raynas.storage``: Tune's storage locations, local paths and URIs (here ``file://``, which goes
through pyarrow's filesystems exactly as ``s3://``/``gs://`` do)."""
from __future__ import annotations

from pathlib import Path

import pytest

from raynas import storage


def test_resolve_makes_paths_absolute_and_keeps_uris(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert storage.resolve(None) == str(tmp_path.resolve() / storage.DEFAULT)
    assert storage.resolve("rel/dir") == str(tmp_path.resolve() / "rel" / "dir")
    assert storage.resolve("s3://bucket/tune/") == "s3://bucket/tune"
    assert storage.join("s3://bucket/tune", "exp", "nodes") == "s3://bucket/tune/exp/nodes"
    assert storage.join("/data/tune", "exp") == "/data/tune/exp"
    assert storage.is_remote("gs://b/x") and not storage.is_remote("/x")


@pytest.mark.parametrize("remote", [False, True])
def test_a_directory_goes_there_and_back(tmp_path, remote):
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "weights.npz").write_bytes(b"\x00\x01weights")
    (source / "sub" / "meta.json").write_text('{"epoch": 3}')
    root = f"file://{tmp_path / 'store'}" if remote else str(tmp_path / "store")
    where = storage.join(root, "exp", "nodes", "root")
    storage.upload(source, where)
    with storage.local_copy(where) as copy:
        assert (copy / "weights.npz").read_bytes() == b"\x00\x01weights"
        assert (copy / "sub" / "meta.json").read_text() == '{"epoch": 3}'
        if remote:
            assert copy != Path(tmp_path / "store" / "exp" / "nodes" / "root")  # a download, removed after
    assert storage.read_text(storage.join(where, "sub", "meta.json")) == '{"epoch": 3}'
    assert storage.read_text(storage.join(where, "absent.txt")) is None
    with pytest.raises(FileNotFoundError):
        with storage.local_copy(storage.join(root, "nothing")):
            pass
