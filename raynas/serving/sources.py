"""Where a pool's weights come from. A *weights source* is a picklable value with two steps:

  * ``prepare()`` runs once, in the driver, before the pool starts, and returns the *factory* the pool
    runs: work that must happen in the driver (a whole Tune experiment, pinning the MLflow URI) happens
    here; for sources with nothing to do it returns the source itself;
  * the factory, ``(spec, splits) -> arrays``, runs once in the pool's start-up Ray task (or in-process
    when there is no pool, e.g. ``raynas export``).

Sources:
  * ``TrainedWeights`` trains a fresh supernet with the other half of the stack
    (``raynas.supernet.train.train_supernet`` and a registered sampling rule), optionally keeping the
    result as ``.npz`` under a key of everything that determines it (``cache_key``); with
    ``train.workers > 1`` by a Ray Train ``TorchTrainer`` (``raynas.supernet.ddp``);
  * ``StoredWeights`` reads weights saved before: an ``.npz`` file (``save_npz``), a checkpoint
    directory holding one (``weights.npz`` preferred), or an MLflow artifact URI (``runs:/<id>/<path>``,
    ``models:/…``, ``mlflow-artifacts:/…``, or any URI ``mlflow.artifacts.download_artifacts`` reads);
  * ``PBTWeights`` runs population-based training (``raynas.supernet.pbt``) in the driver when its
    weights are not kept yet, and serves the best member's weights (kept as ``.npz``, then stored).
Weights are always a dict of numpy arrays (``raynas.supernet.weights.to_numpy``): no pickles.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from raynas.serving.spec import ModelSpec, build_model
from raynas.typed import from_dict

NPZ_SUFFIX = ".npz"
DDP_DIR = "supernet-ddp"  # Ray Train experiments of data-parallel training, under the storage path
CHECKPOINT_WEIGHTS = ("weights.npz", "supernet.npz", "model.npz")
URI_PREFIXES = ("runs:/", "models:/", "mlflow-artifacts:", "s3://", "gs://", "http://", "https://", "file://")


def is_uri(source: str) -> bool:
    return source.startswith(URI_PREFIXES)


# The code that determines trained weights: the network, its data and its training (not serving).
WEIGHTS_CODE = ("space", "data", "supernet")
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=None)
def code_digest(root: Path = PACKAGE_ROOT, packages: tuple[str, ...] = WEIGHTS_CODE) -> str:
    """A digest of the source of ``packages`` under ``root`` (every ``.py`` file, by path and content):
    changed supernet, data or training code gives other weights, so another cache key."""
    h = hashlib.blake2b(digest_size=8)
    for package in packages:
        for file in sorted((root / package).rglob("*.py")):
            h.update(file.relative_to(root).as_posix().encode() + b"\0" + file.read_bytes() + b"\0")
    return h.hexdigest()


def cache_key(what: Any) -> str:
    """The name under which weights determined by ``what`` (JSON-able settings: spec, sampling,
    training, data) are kept: a digest of ``what`` and of the code that turns it into weights
    (``code_digest``), so neither changed settings nor changed code reuse stale weights."""
    text = json.dumps([what, code_digest()], sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def save_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as ``path`` (.npz) atomically: a concurrent reader sees the whole file or none."""
    from raynas.supernet.weights import save_npz

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    save_npz(tmp, arrays)
    os.replace(tmp, path)


def weights_file(path: Path) -> Path:
    """The ``.npz`` of ``path``: itself, or the weights file of a checkpoint directory."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"supernet weights {path}: no such file or directory")
    for name in CHECKPOINT_WEIGHTS:
        if (path / name).is_file():
            return path / name
    found = sorted(path.rglob(f"*{NPZ_SUFFIX}"))
    if len(found) != 1:
        raise FileNotFoundError(f"supernet weights: expected one of {', '.join(CHECKPOINT_WEIGHTS)} or a single "
                                f"{NPZ_SUFFIX} file in {path}, found {[str(p) for p in found[:5]]}")
    return found[0]


def read_weights(source: str, tracking_uri: str | None = None) -> dict[str, np.ndarray]:
    """Weights from a file, a checkpoint directory or an MLflow artifact URI (see the module docstring);
    ``runs:/``/``models:/`` URIs resolve against ``tracking_uri`` (default: MLflow's current one)."""
    from raynas.supernet.weights import load_npz

    if is_uri(source):
        import mlflow.artifacts

        with tempfile.TemporaryDirectory(prefix="raynas-weights-") as tmp:
            local = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=tmp, tracking_uri=tracking_uri)
            return load_npz(weights_file(Path(local)))
    return load_npz(weights_file(Path(source).expanduser()))


@dataclasses.dataclass(frozen=True)
class StoredWeights:
    """Factory: weights saved before (``source``: path, checkpoint directory or MLflow URI). Build it
    with ``StoredWeights.at(source)`` in the driver: it pins the MLflow tracking URI there, since the
    factory runs in another process."""

    source: str
    tracking_uri: str | None = None

    @classmethod
    def at(cls, source: str) -> "StoredWeights":
        if not is_uri(source):
            return cls(str(Path(source).expanduser().resolve()))
        import mlflow

        return cls(source, mlflow.get_tracking_uri())

    def prepare(self) -> "StoredWeights":
        return self

    def __call__(self, spec: ModelSpec, splits: Any = None) -> dict[str, np.ndarray]:
        return read_weights(self.source, self.tracking_uri)


@dataclasses.dataclass(frozen=True)
class ObjectWeights:
    """Factory: weights in Ray's object store (``ref``: a dict of numpy arrays). ``ObjectWeights.put``
    in the driver is how weights the driver holds — a file on its disk, PBT's best member, a split
    tree's leaves — reach a pool's start-up task on any node of the cluster: never by a driver path."""

    ref: Any  # ray.ObjectRef

    @classmethod
    def put(cls, arrays: dict[str, np.ndarray]) -> "ObjectWeights":
        import ray

        return cls(ray.put(arrays))

    def prepare(self) -> "ObjectWeights":
        return self

    def __call__(self, spec: ModelSpec, splits: Any = None) -> dict[str, np.ndarray]:
        import ray

        return ray.get(self.ref)


def shipped(factory: Any) -> Any:
    """The factory a pool on a cluster can run: ``StoredWeights`` read here, in the driver (whose disk
    and MLflow store it names), and put in the object store; other factories unchanged (training
    happens where the pool's start-up task runs)."""
    if isinstance(factory, StoredWeights):
        return ObjectWeights.put(factory(None))
    return factory


@dataclasses.dataclass(frozen=True)
class TrainedWeights:
    """Factory: train ``spec``'s supernet on ``splits`` with sampling rule ``sampling`` (its options in
    ``sampling_config``) and ``raynas.supernet.train.TrainConfig(**train)``. With ``cache_path``, weights
    already there are loaded instead (no training) and freshly trained ones are saved there. With
    ``train.workers > 1`` the process that runs it starts a Ray Train ``TorchTrainer`` of that many
    data-parallel workers (``raynas.supernet.ddp``) under ``<storage_path>/supernet-ddp`` (shared
    storage once the workers span nodes; default a temporary directory) and returns the weights of
    its last checkpoint."""

    sampling: str
    sampling_config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    train: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    cache_path: str | None = None
    storage_path: str | None = None  # Ray Train's storage for data-parallel training (not in the key)

    def key(self, spec: ModelSpec) -> str:
        """A digest of everything that determines the trained weights (spec, rule, training, code version)."""
        what = {"spec": dataclasses.asdict(spec), "sampling": self.sampling,
                "sampling_config": dict(self.sampling_config), "train": dict(self.train)}
        what["spec"].pop("eval_batch_size"), what["spec"].pop("device")  # do not change the weights
        return cache_key(what)

    def kept_in(self, directory: str | Path | None, spec: ModelSpec) -> "TrainedWeights":
        """This source keeping its weights as ``<directory>/<key>.npz`` (unchanged for ``None``)."""
        if directory is None:
            return self
        path = Path(directory).expanduser().resolve() / f"{self.key(spec)}{NPZ_SUFFIX}"
        return dataclasses.replace(self, cache_path=str(path))

    def prepare(self) -> "TrainedWeights":
        return self

    def __call__(self, spec: ModelSpec, splits: Any) -> dict[str, np.ndarray]:
        from raynas.supernet.weights import load_npz

        cached = Path(self.cache_path).expanduser() if self.cache_path else None
        if cached is not None and cached.is_file():
            return load_npz(cached)
        arrays = self.train_now(spec, splits)
        if cached is not None:
            save_atomic(cached, arrays)
        return arrays

    def train_now(self, spec: ModelSpec, splits: Any) -> dict[str, np.ndarray]:
        """Train a fresh supernet (no cache)."""
        from raynas.supernet import build_sampler
        from raynas.supernet.train import TrainConfig, train_supernet
        from raynas.supernet.weights import to_numpy

        config = from_dict(TrainConfig, dict(self.train), "train")
        if config.workers > 1:
            return self._train_data_parallel(spec)
        space, model = build_model(spec)
        rule = build_sampler(self.sampling, space, dict(self.sampling_config))
        train_supernet(model, rule, splits, config, eval_archs={})
        return to_numpy(model)

    def _train_data_parallel(self, spec: ModelSpec) -> dict[str, np.ndarray]:
        from raynas import storage
        from raynas.supernet.ddp import DDPRun, fit_ddp, trial_from_spec

        trial = trial_from_spec(spec, self.sampling, self.sampling_config, self.train)
        where = storage.join(self.storage_path, DDP_DIR) if self.storage_path else None
        return fit_ddp(DDPRun(trial, evaluate=False), where).arrays


@dataclasses.dataclass(frozen=True)
class PBTWeights:
    """Source: the best member of a population-based training run (``raynas.supernet.pbt.run_pbt``) of
    the supernet trial ``trial`` (a ``SupernetTrialConfig`` as a dict) with PBT settings ``pbt`` (a
    ``PBTConfig`` as a dict), kept as ``<directory>/pbt-<key>.npz``. ``prepare()`` runs PBT in this
    process — the Tune experiment under ``storage_path`` — unless that file exists, joining Ray if
    needed, and returns the ``StoredWeights`` of the file."""

    trial: Mapping[str, Any]
    pbt: Mapping[str, Any]
    directory: str
    storage_path: str

    def key(self) -> str:
        return cache_key([dict(self.trial), dict(self.pbt)])

    @property
    def path(self) -> Path:
        return Path(self.directory).expanduser().resolve() / f"pbt-{self.key()}{NPZ_SUFFIX}"

    def prepare(self) -> StoredWeights:
        if not self.path.is_file():
            from raynas.ray_env import ensure_ray
            from raynas.supernet.pbt import PBTConfig, run_pbt

            ensure_ray()
            config = from_dict(PBTConfig, dict(self.pbt), "pbt")
            result = run_pbt(dict(self.trial), config, self.storage_path, name=f"pbt-{self.key()}")
            save_atomic(self.path, result.best_weights)
        return StoredWeights(str(self.path))

    def __call__(self, spec: ModelSpec, splits: Any = None) -> dict[str, np.ndarray]:
        return self.prepare()(spec, splits)


SPLIT_MANIFEST = "tree.json"


@dataclasses.dataclass(frozen=True)
class SplitWeights:
    """Source: a few-shot split tree (``raynas.supernet.fewshot.run_split``) of the supernet trial
    ``trial`` with split settings ``split`` (a ``SplitConfig`` as a dict), kept as
    ``<directory>/split-<key>/`` (one ``.npz`` per leaf and ``tree.json``: the tree's record and each
    leaf's file). ``prepare()`` runs the split experiment (a Tune experiment under ``storage_path``) in
    this process unless that directory is complete, joining Ray if needed, and returns the
    ``SplitServing`` of the kept tree."""

    trial: Mapping[str, Any]
    split: Mapping[str, Any]
    directory: str
    storage_path: str

    def key(self) -> str:
        return cache_key([dict(self.trial), dict(self.split)])

    @property
    def path(self) -> Path:
        return Path(self.directory).expanduser().resolve() / f"split-{self.key()}"

    def prepare(self):
        from raynas.serving.split import SplitServing
        from raynas.supernet.fewshot import tree_from_record

        manifest = self.path / SPLIT_MANIFEST
        if not manifest.is_file():
            self._train(manifest)
        kept = json.loads(manifest.read_text())
        leaves = {leaf: str(self.path / name) for leaf, name in kept["leaves"].items()}
        return SplitServing(tree_from_record(kept["record"]), leaves, kept["record"])

    def _train(self, manifest: Path) -> None:
        from raynas import storage
        from raynas.ray_env import ensure_ray
        from raynas.space import SPACES
        from raynas.supernet.fewshot import NODE_DIR, SplitConfig, node_dirname, run_split
        from raynas.supernet.weights import load_npz

        ensure_ray()
        config = from_dict(SplitConfig, dict(self.split), "few_shot")
        result = run_split(dict(self.trial), config, self.storage_path, name=f"split-{self.key()}")
        if result.failed:
            raise RuntimeError(f"few-shot split training failed for sub-supernets {result.failed} "
                               f"(Tune experiment {result.experiment_path})")
        leaves = {}
        for leaf in result.tree.leaves():
            name = f"{node_dirname(leaf.id)}{NPZ_SUFFIX}"
            with storage.local_copy(result.results[leaf.id][NODE_DIR]) as node_dir:
                save_atomic(self.path / name, load_npz(weights_file(node_dir)))
            leaves[leaf.id] = name
        tmp = manifest.with_suffix(".tmp")
        ops = getattr(SPACES.get(self.trial.get("space", "nb201")), "ops", ())
        tmp.write_text(json.dumps({"leaves": leaves, "record": result.record(config, ops)}, indent=1))
        os.replace(tmp, manifest)

    def __call__(self, spec: ModelSpec, splits: Any = None):
        raise TypeError("SplitWeights serves one set of weights per sub-supernet: use prepare()")
