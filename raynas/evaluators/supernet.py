"""Supernet evaluator: scores archs with a weight-sharing supernet served by a ``ServerPool``.

On first use (or when the evaluator is pickled while Ray is up — which is how Tune ships it to
trial workers, so every worker reaches the driver's pool) it creates the pool's router; the pool
then trains the supernet (``sampling``, ``train``) or loads ``weights`` (an ``.npz``, a checkpoint
directory or an MLflow artifact URI) in one Ray task — trained weights are kept as
``weights_dir/<key>.npz`` (the key hashes everything that determines them) and reused by later runs
and by ``export_model`` — and starts ``replicas`` servers with
``num_cpus``/``num_gpus`` each. ``evaluate`` asks the pool:

  * ``metrics``: ``valid_acc`` (percent, val split, after BN recalibration for the arch);
  * ``hidden``: ``test_acc`` (percent, test split);
  * ``tags``: ``weights_version`` (content hash of the weights that scored it), ``eval_cache``
    (``hit``/``miss`` of the pool's cache), ``replica`` (slot that computed it);
  * ``cost_s``: wall seconds of the pool request, shared equally by its archs (waiting for the pool
    to start — training — is not counted).
With ``pbt`` set, the weights come from population-based training
(``raynas.strategies.supernet_pbt``) run in the driver before the pool starts: the best member's
weights are what the pool serves. ``publish(arrays)`` hot-swaps the served weights; ``export_model(arch, out_dir)`` saves the
stand-alone subnet as an MLflow PyTorch model. Importing this module does not import torch.

Resources: Tune's trial workers only wait on the pool, so give them little CPU
(``backend.cpus_per_worker: 0.25``); ``workers * cpus_per_worker + train_num_cpus`` and
``workers * cpus_per_worker + replicas * num_cpus`` must fit the cluster, or the pool never starts.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
import uuid
from pathlib import Path
from typing import Any, Literal

from raynas.errors import RaynasError, RecipeError
from raynas.evaluators.base import EVALUATORS, TEST_ACC, VALID_ACC, Evaluator, Result
from raynas.recipes.typed import bounded, from_dict, to_dict
from raynas.serving.sources import is_uri
from raynas.strategies.supernet_pbt import PBTConfig

WEIGHTS_VERSION, EVAL_CACHE, REPLICA_TAG = "weights_version", "eval_cache", "replica"
HIT, MISS = "hit", "miss"
POOL_PREFIX = "raynas-supernet-"
WEIGHTS_DIR = ".raynas/supernets"
PBT_EVAL_ARCHS = 2  # seeded random subnets tracked (besides largest/smallest) in PBT's objective
Scalar = bool | int | float | str


@EVALUATORS.register("supernet")
class SupernetEvaluator(Evaluator):
    """Accuracy of archs under shared supernet weights, served by a pool of Ray actors."""

    version = "1"
    space_names = ("mbv3", "nb201")

    @dataclasses.dataclass
    class Config:
        supernet: str = "mbv3"  # a registered supernet serving the recipe's space
        supernet_config: dict[str, Scalar] = dataclasses.field(default_factory=dict)
        dataset: str = "digits"
        dataset_config: dict[str, Scalar] = dataclasses.field(default_factory=dict)
        sampling: str = "sandwich"  # a registered sampling rule (uniform, sandwich, complexity)
        sampling_config: dict[str, Scalar] = dataclasses.field(default_factory=dict)
        train: dict[str, Scalar | None] = dataclasses.field(default_factory=dict)  # TrainConfig fields
        weights: str | None = None  # skip training: .npz path, checkpoint dir or MLflow artifact URI
        weights_dir: str | None = WEIGHTS_DIR  # trained weights saved/reused as <dir>/<training key>.npz
        replicas: int = bounded(1, gt=0)
        num_cpus: float = bounded(1.0, gt=0)  # per replica
        num_gpus: float = bounded(0.0, ge=0)  # per replica; fractions share a GPU
        train_num_cpus: float = bounded(1.0, gt=0)  # the training (or loading) task
        train_num_gpus: float = bounded(0.0, ge=0)
        archs_per_call: int = bounded(4, gt=0)  # archs per replica call
        queue_depth: int = bounded(2, gt=0)  # calls a replica holds at once; more wait in the router
        eval_batch_size: int = bounded(256, gt=0)
        cache_size: int = bounded(100_000, ge=0)
        max_retries: int = bounded(3, ge=0)
        pool_name: str | None = None  # share one pool (and its cache) between searches by name
        pbt: PBTConfig | None = None  # train by population-based training; the best member is served
        device: Literal["auto", "cpu", "cuda"] = "auto"

        def validate(self, path: str) -> None:
            """Names and nested options checked against their registries (imports torch)."""
            from raynas.data import DATASETS
            from raynas.supernet import SAMPLERS, SUPERNETS
            from raynas.supernet.train import TrainConfig

            for field, registry, options in (("supernet", SUPERNETS, self.supernet_config),
                                             ("sampling", SAMPLERS, self.sampling_config),
                                             ("dataset", DATASETS, self.dataset_config)):
                name = getattr(self, field)
                if name not in registry:
                    raise RecipeError(f"{path}.{field}", f"unknown {registry.kind} {name!r}; "
                                      f"known: {', '.join(registry.names())}")
                from_dict(registry.get(name).Config, dict(options), f"{path}.{field}_config")
            from_dict(TrainConfig, dict(self.train), f"{path}.train")
            if self.weights and not is_uri(self.weights) and not Path(self.weights).expanduser().exists():
                raise RecipeError(f"{path}.weights", f"no such file or directory: {self.weights}")

    def __init__(self, space, config: "SupernetEvaluator.Config | None" = None,
                 config_path: str = "evaluator") -> None:
        super().__init__(space, config)
        from raynas.supernet import SUPERNETS

        cfg = self.config
        served = SUPERNETS.get(cfg.supernet).space_name
        if served != space.name:
            raise RecipeError(f"{config_path}.supernet", f"{cfg.supernet!r} serves space {served!r}, "
                              f"not {space.name!r}")
        self.spec = self._spec()
        self.pool_name = cfg.pool_name or f"{POOL_PREFIX}{uuid.uuid4().hex[:12]}"
        self._pool = None

    def _spec(self):
        """The served model; calibration batches as ``train_supernet`` evaluates (its seed, batch size)."""
        from raynas.serving.spec import ModelSpec
        from raynas.supernet.train import TrainConfig

        cfg = self.config
        train = from_dict(TrainConfig, dict(cfg.train), "train")
        return ModelSpec.for_training(
            train_seed=train.seed, train_batch_size=train.batch_size, calib_batches=train.calib_batches,
            space=self.space.name, space_config=to_dict(self.space.config), supernet=cfg.supernet,
            supernet_config=dict(cfg.supernet_config), dataset=cfg.dataset, dataset_config=dict(cfg.dataset_config),
            eval_batch_size=cfg.eval_batch_size, device=cfg.device)

    # --- the pool ----------------------------------------------------------------------------
    def weights_factory(self):
        """Where the weights come from: stored ``weights``, else training (``sampling``, ``train``),
        cached in ``weights_dir`` under a key of everything that determines them."""
        from raynas.serving.server import threads_for
        from raynas.serving.sources import StoredWeights, TrainedWeights

        cfg = self.config
        if cfg.weights:
            return StoredWeights.at(cfg.weights)
        train = {"num_threads": threads_for(cfg.train_num_cpus), **cfg.train}
        if cfg.pbt is not None:
            return StoredWeights(self._pbt_weights(train))
        factory = TrainedWeights(cfg.sampling, dict(cfg.sampling_config), train)
        if cfg.weights_dir is None:
            return factory
        path = Path(cfg.weights_dir).expanduser().resolve() / f"{factory.key(self.spec)}.npz"
        return dataclasses.replace(factory, cache_path=str(path))

    def _pbt_weights(self, train: dict) -> str:
        """Run PBT in this process (once per settings: kept in ``weights_dir``) and return the path of
        the best member's weights, which the pool then loads and serves."""
        from raynas.runtime.ray_session import ensure_ray
        from raynas.strategies.supernet_pbt import run_pbt
        from raynas.supernet.weights import save_npz

        cfg = self.config
        trial = {"space": self.space.name, "space_config": to_dict(self.space.config), "supernet": cfg.supernet,
                 "supernet_config": dict(cfg.supernet_config), "sampling": cfg.sampling,
                 "sampling_config": dict(cfg.sampling_config), "dataset": cfg.dataset,
                 "dataset_config": dict(cfg.dataset_config), "train": train, "eval_random_archs": PBT_EVAL_ARCHS}
        key = hashlib.blake2b(json.dumps([trial, to_dict(cfg.pbt)], sort_keys=True, default=str).encode(),
                              digest_size=8).hexdigest()
        path = Path(cfg.weights_dir or WEIGHTS_DIR).expanduser().resolve() / f"pbt-{key}.npz"
        if not path.is_file():
            ensure_ray()
            result = run_pbt(trial, cfg.pbt, Path(WEIGHTS_DIR).resolve().parent / "tune", name=f"pbt-{key}")
            path.parent.mkdir(parents=True, exist_ok=True)
            save_npz(path, result.best_weights)
        return str(path)

    def pool_config(self):
        from raynas.serving.router import PoolConfig

        cfg = self.config
        return PoolConfig(replicas=cfg.replicas, num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus,
                          archs_per_call=cfg.archs_per_call, queue_depth=cfg.queue_depth, cache_size=cfg.cache_size,
                          max_retries=cfg.max_retries, prepare_num_cpus=cfg.train_num_cpus,
                          prepare_num_gpus=cfg.train_num_gpus)

    @property
    def pool(self):
        """The ``ServerPool`` (created on first access, joining Ray if needed; not yet started)."""
        if self._pool is None:
            from raynas.runtime.ray_session import ensure_ray
            from raynas.serving.pool import ServerPool

            ensure_ray()
            self._pool = ServerPool.create(self.spec, self.pool_config(), factory=self.weights_factory(),
                                           name=self.pool_name)
        return self._pool

    def __getstate__(self) -> dict[str, Any]:
        import ray

        if self._pool is None and ray.is_initialized():
            self.pool  # noqa: B018  (created here, in the driver, so the pool outlives trial workers)
        return dict(self.__dict__)

    def close(self) -> None:
        """Stop the pool (other evaluators sharing it lose it too)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    # --- evaluation --------------------------------------------------------------------------
    def _evaluate(self, archs: list) -> list[Result]:
        pool = self.pool
        pool.ready()
        items = [(self.space.to_str(a), self.space.canonical(a)) for a in archs]
        start = time.perf_counter()
        replies = pool.evaluate(items)
        per = (time.perf_counter() - start) / max(1, len(archs))
        return [self._result(r, per) for r in replies]

    @staticmethod
    def _result(reply: dict[str, Any], cost_s: float) -> Result:
        from raynas.serving.router import CACHED, REPLICA
        from raynas.serving.server import VERSION

        tags = {WEIGHTS_VERSION: str(reply[VERSION]), EVAL_CACHE: HIT if reply[CACHED] else MISS,
                REPLICA_TAG: str(reply[REPLICA])}
        return Result(metrics={VALID_ACC: float(reply[VALID_ACC])}, cost_s=cost_s,
                      hidden={TEST_ACC: float(reply[TEST_ACC])}, tags=tags)

    # --- weights -----------------------------------------------------------------------------
    def publish(self, arrays: dict) -> str:
        """Hot-swap the served weights (searches keep running); returns the new version."""
        return self.pool.publish(arrays)

    def weights(self, splits: Any = None) -> dict:
        """The served weights; without a pool (e.g. ``raynas export``, no Ray), the same weights produced
        in this process: loaded from ``weights`` or ``weights_dir``, else trained (deterministic).
        ``splits``: the dataset, when already loaded."""
        import ray

        if self._pool is not None or (ray.is_initialized() and _pool_exists(self.pool_name)):
            return self.pool.weights()
        from raynas.serving.spec import load_splits

        try:
            return self.weights_factory()(self.spec, splits if splits is not None else load_splits(self.spec))
        except FileNotFoundError as err:
            raise RaynasError(f"supernet weights: {err}") from None

    def export_model(self, arch: Any, out_dir: str | Path) -> str:
        """Save ``arch`` as a stand-alone MLflow PyTorch model in ``out_dir`` (contract:
        ``raynas.tracking.export.ModelExporter``): weights sliced from the supernet, BN recalibrated
        exactly as when it was scored, eval mode on CPU, a signature from a real val batch, metadata
        ``arch``/``canonical``/``weights_version``/``evaluator``. Its outputs equal the supernet's on
        ``arch``. Returns ``out_dir``."""
        from raynas.serving.export import extract_subnet, save_mlflow_model
        from raynas.serving.scorer import SubnetScorer
        from raynas.serving.spec import EvalData, load_splits

        if not self.space.contains(arch):
            raise ValueError(f"{arch!r} is not an arch of space {self.space.name}")
        splits = load_splits(self.spec)
        data = EvalData.build(self.spec, splits)
        scorer = SubnetScorer(dataclasses.replace(self.spec, device="cpu"), data)
        version = scorer.load(self.weights(splits))
        scorer.calibrate(arch)
        meta = {"arch": self.space.to_str(arch), "canonical": self.space.canonical(arch),
                WEIGHTS_VERSION: version, "evaluator": self.id}
        return str(save_mlflow_model(extract_subnet(scorer.model, arch), data.val_x, out_dir, metadata=meta))


def _pool_exists(name: str) -> bool:
    import ray

    try:
        ray.get_actor(name)
    except ValueError:
        return False
    return True
