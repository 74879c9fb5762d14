"""Weights sources (no Ray): .npz files, checkpoint directories, MLflow artifact URIs, the training cache."""
from __future__ import annotations

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from raynas.serving.sources import StoredWeights, TrainedWeights, read_weights
from raynas.supernet.weights import save_npz, weights_version

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
