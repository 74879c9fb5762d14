"""Weights sources (no Ray): .npz files, checkpoint directories, MLflow artifact URIs, the training cache."""
from __future__ import annotations

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from raynas.serving.sources import StoredWeights, TrainedWeights, read_weights
from raynas.supernet.weights import save_npz, weights_version
from tests.serving.helpers import tiny_spec

ARRAYS = {"conv.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2), "bn.num_batches": np.array(3)}


def same(a, b) -> bool:
    return weights_version(a) == weights_version(b)


def test_file_and_checkpoint_directory(tmp_path):
    save_npz(tmp_path / "w.npz", ARRAYS)
    ckpt = tmp_path / "checkpoint_000003"
    ckpt.mkdir()
    save_npz(ckpt / "weights.npz", ARRAYS)
    save_npz(ckpt / "optimizer.npz", {"0.momentum_buffer": np.zeros(2)})  # a trainable checkpoint has both
    assert same(read_weights(str(tmp_path / "w.npz")), ARRAYS) and same(read_weights(str(ckpt)), ARRAYS)
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_weights(str(tmp_path / "missing.npz"))


def test_mlflow_artifact_uri(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("w", artifact_location=(tmp_path / "art").as_uri())
    run = client.create_run(exp)
    save_npz(tmp_path / "supernet.npz", ARRAYS)
    client.log_artifact(run.info.run_id, str(tmp_path / "supernet.npz"), "weights")
    mlflow.set_tracking_uri(uri)
    try:
        factory = StoredWeights.at(f"runs:/{run.info.run_id}/weights/supernet.npz")
    finally:
        mlflow.set_tracking_uri(None)
    assert factory.tracking_uri == uri  # pinned where it was built: the factory runs in a Ray task
    assert same(factory(None), ARRAYS)


def test_trained_weights_are_cached_by_key(tmp_path, monkeypatch):
    factory = TrainedWeights("uniform", train={"epochs": 1}, cache_path=str(tmp_path / "k.npz"))
    calls = []
    monkeypatch.setattr(TrainedWeights, "train_now", lambda self, spec, splits: calls.append(1) or ARRAYS)
    assert same(factory("spec", None), ARRAYS) and same(factory("spec", None), ARRAYS)
    assert calls == [1]  # the second call loaded the file
    from raynas.serving.spec import ModelSpec

    keys = {TrainedWeights("uniform", train={"epochs": e}).key(ModelSpec()) for e in (1, 2)}
    assert len(keys) == 2 and TrainedWeights("uniform").key(ModelSpec()) == TrainedWeights("uniform").key(ModelSpec())


def test_weights_keys_follow_the_code_that_makes_the_weights(tmp_path, monkeypatch):
    """Trained and PBT weights are keyed on their settings and on a digest of the space, data and
    supernet source: changed training code never reuses stale weights."""
    import shutil

    from raynas.serving import sources
    from raynas.serving.sources import PACKAGE_ROOT, WEIGHTS_CODE, PBTWeights, TrainedWeights, code_digest

    for package in WEIGHTS_CODE:
        shutil.copytree(PACKAGE_ROOT / package, tmp_path / package)
    before = code_digest.__wrapped__(tmp_path)
    assert before == code_digest(PACKAGE_ROOT)
    train_py = tmp_path / "supernet" / "train.py"
    train_py.write_text(train_py.read_text() + "\n# a changed training loop\n")
    assert code_digest.__wrapped__(tmp_path) != before  # (cached per process: the code cannot change under it)

    spec = tiny_spec()
    trained = TrainedWeights("uniform", {}, {"epochs": 1})
    pbt = PBTWeights({"space": "mbv3"}, {"population": 2}, directory=str(tmp_path), storage_path=str(tmp_path))
    keys = (trained.key(spec), pbt.key())
    assert TrainedWeights("uniform", {}, {"epochs": 2}).key(spec) != keys[0]
    assert PBTWeights({"space": "mbv3"}, {"population": 3}, str(tmp_path), str(tmp_path)).key() != keys[1]
    monkeypatch.setattr(sources, "code_digest", lambda: "other-code")
    assert trained.key(spec) != keys[0] and pbt.key() != keys[1]
