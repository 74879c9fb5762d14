"""Supernet evaluator: scores archs with a weight-sharing supernet served by a ``ServerPool``.

Its one job is scoring through the pool; where the weights come from is a weights source
(``raynas.serving.sources``): stored ``weights`` (an ``.npz``, a checkpoint directory or an MLflow
artifact URI), training (``sampling``, ``train``; kept as ``weights_dir/<key>.npz``, the key hashing
everything that determines them, and reused by later runs and by ``export_model``) or, with ``pbt``,
population-based training run in the driver (the best member is served).

``prepare()`` — called once by the runtime, in the driver, before the search — joins Ray if needed,
prepares the weights source and creates the pool's router, which then trains or loads the weights in
one Ray task and starts ``pool.replicas`` servers (``pool.num_cpus``/``pool.num_gpus`` each). The
evaluator pickles as a plain value (no side effects): a prepared copy shipped to Tune's trial workers
reaches the driver's pool; an unprepared one prepares on first use, where it is. ``evaluate`` asks
the pool:

  * ``metrics``: ``valid_acc`` (percent, val split, after BN recalibration for the arch);
  * ``hidden``: ``test_acc`` (percent, test split);
  * ``tags``: ``weights_version`` (content hash of the weights that scored it), ``eval_cache``
    (``hit``/``miss`` of the pool's cache), ``replica`` (slot that computed it);
  * ``cost_s``: wall seconds of the pool request, shared equally by its archs (waiting for the pool
    to start — training — is not counted).
``publish(arrays)`` hot-swaps the served weights; ``export_model(arch, out_dir)`` saves the stand-alone
subnet as an MLflow PyTorch model. Importing this module does not import torch.

Data-parallel training (``train.workers: N > 1``, ``raynas.supernet.ddp``): the pool's start-up task
runs a Ray Train ``TorchTrainer`` of N workers (``train.cpus_per_worker``/``gpus_per_worker`` each; a
``Demand`` per worker, so a bundle no node holds is a one-line error at start) and only waits on
them, so give it little CPU (``pool.prepare_num_cpus: 0.1``); ``train.batch_size`` is the global batch.

Resources: Tune's trial workers only wait on the pool, so give them little CPU
(``backend.cpus_per_worker: 0.25``); ``workers * cpus_per_worker + pool.prepare_num_cpus`` and
``workers * cpus_per_worker + pool.replicas * pool.num_cpus`` must fit the cluster, or the pool never
starts. The pool's settings were top-level fields before (``evaluator.replicas`` …, and
``train_num_cpus``/``train_num_gpus`` for ``pool.prepare_num_cpus``/``prepare_num_gpus``): those paths
still work, with a deprecation warning.
"""
from __future__ import annotations

import dataclasses
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

from raynas.devices import AUTO, CPU, Device
from raynas.errors import RaynasError, RecipeError
from raynas.evaluators.base import EVALUATORS, Evaluator, Result
from raynas.metrics import TEST_ACC, VALID_ACC, WEIGHTS_VERSION
from raynas.ray_env import RAY_CPU, RAY_GPU, Demand
from raynas.serving.router import PoolConfig
from raynas.serving.sources import is_uri
from raynas.storage import resolve
from raynas.typed import bounded, from_dict, to_dict

EVAL_CACHE, REPLICA_TAG = "eval_cache", "replica"
HIT, MISS = "hit", "miss"
POOL_PREFIX = "raynas-supernet-"
WEIGHTS_DIR = ".raynas/supernets"
PBT_EVAL_ARCHS = 2  # seeded random subnets tracked (besides largest/smallest) in PBT's objective
SPLIT_EVAL_ARCHS = 20  # seeded random archs; each node tracks those in its sub-space (its curve, its score)
POOL_FIELDS = ("replicas", "num_cpus", "num_gpus", "archs_per_call", "queue_depth", "cache_size", "max_retries")
Scalar = bool | int | float | str


@EVALUATORS.register("supernet")
class SupernetEvaluator(Evaluator):
    """Accuracy of archs under shared supernet weights, served by a pool of Ray actors."""

    version = "1"
    space_names = ("mbv3", "nb201", "transformer")

    @dataclasses.dataclass
    class Config:
        MOVED: ClassVar[dict[str, str]] = {**{f: f"pool.{f}" for f in POOL_FIELDS},
                                           "train_num_cpus": "pool.prepare_num_cpus",
                                           "train_num_gpus": "pool.prepare_num_gpus"}

        supernet: str = "mbv3"  # a registered supernet serving the recipe's space
        supernet_config: dict[str, Scalar] = dataclasses.field(default_factory=dict)
        dataset: str = "digits"
        dataset_config: dict[str, Scalar] = dataclasses.field(default_factory=dict)
        sampling: str = "sandwich"  # a registered sampling rule (uniform, sandwich, complexity)
        sampling_config: dict[str, Scalar] = dataclasses.field(default_factory=dict)
        train: dict[str, Scalar | None] = dataclasses.field(default_factory=dict)  # TrainConfig fields
        weights: str | None = None  # skip training: .npz path, checkpoint dir or MLflow artifact URI
        weights_dir: str | None = WEIGHTS_DIR  # trained weights saved/reused as <dir>/<training key>.npz
        pool: PoolConfig = dataclasses.field(default_factory=PoolConfig)  # replicas, resources, routing, cache
        eval_batch_size: int = bounded(256, gt=0)
        pool_name: str | None = None  # share one pool (and its cache) between searches by name
        pbt: dict[str, Any] | None = None  # PBTConfig fields: train by PBT; the best member is served
        few_shot: dict[str, Any] | None = None  # SplitConfig fields: a few-shot split tree; each leaf is served
        device: Device = AUTO

        def split_config(self, path: str = "evaluator"):
            """The ``SplitConfig`` of ``few_shot`` (its ``epochs`` default to ``train.epochs``), checked."""
            from raynas.supernet.fewshot import SplitConfig
            from raynas.supernet.train import TrainConfig

            if self.pbt is not None:
                raise RecipeError(f"{path}.few_shot", "give either pbt or few_shot, not both")
            epochs = from_dict(TrainConfig, dict(self.train), f"{path}.train").epochs
            split = from_dict(SplitConfig, {"epochs": epochs, **self.few_shot}, f"{path}.few_shot")
            split.validate(f"{path}.few_shot")
            return split

        def _check_workers(self, train: Any, path: str) -> None:
            """``train.workers > 1``: the global batch divides over the workers; the served supernet or
            each PBT member trains data-parallel (split-tree nodes train in one process each)."""
            if train.workers == 1:
                return
            from raynas.supernet.ddp import local_batch_size

            local_batch_size(train, f"{path}.train")
            if self.few_shot is not None:
                raise RecipeError(f"{path}.train.workers", f"{path}.few_shot trains each split-tree node in one "
                                  "process (set workers: 1)")

        def validate(self, path: str) -> None:
            """Names and nested options checked against their registries (imports torch)."""
            from raynas.data import DATASETS
            from raynas.supernet import SAMPLERS, SUPERNETS
            from raynas.supernet.pbt import PBTConfig
            from raynas.supernet.train import TrainConfig

            for field, registry, options in (("supernet", SUPERNETS, self.supernet_config),
                                             ("sampling", SAMPLERS, self.sampling_config),
                                             ("dataset", DATASETS, self.dataset_config)):
                name = getattr(self, field)
                if name not in registry:
                    raise RecipeError(f"{path}.{field}", f"unknown {registry.kind} {name!r}; "
                                      f"known: {', '.join(registry.names())}")
                from_dict(registry.get(name).Config, dict(options), f"{path}.{field}_config")
            self._check_workers(from_dict(TrainConfig, dict(self.train), f"{path}.train"), path)
            if self.pbt is not None:
                from_dict(PBTConfig, dict(self.pbt), f"{path}.pbt")
            if self.few_shot is not None:
                self.split_config(path)
            if self.weights and not is_uri(self.weights) and not Path(self.weights).expanduser().exists():
                raise RecipeError(f"{path}.weights", f"no such file or directory: {self.weights}")

    def __init__(self, space, config: "SupernetEvaluator.Config | None" = None,
                 config_path: str = "evaluator", *, storage_path: str | None = None) -> None:
        super().__init__(space, config, storage_path=storage_path)
        from raynas.supernet import SUPERNETS

        cfg = self.config
        served = SUPERNETS.get(cfg.supernet).space_name
        if served != space.name:
            raise RecipeError(f"{config_path}.supernet", f"{cfg.supernet!r} serves space {served!r}, "
                              f"not {space.name!r}")
        self.spec = self._spec()
        self.pool_name = cfg.pool_name or f"{POOL_PREFIX}{uuid.uuid4().hex[:12]}"
        self._pool = None
        self._record: dict[str, Any] | None = None

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
    def weights_source(self):
        """Where the weights come from (``raynas.serving.sources``): stored ``weights``, else PBT
        (``pbt``), else training (``sampling``, ``train``), kept in ``weights_dir``."""
        from raynas.serving.server import threads_for
        from raynas.serving.sources import PBTWeights, SplitWeights, StoredWeights, TrainedWeights

        cfg = self.config
        if cfg.weights:
            return StoredWeights.at(cfg.weights)
        train = {"num_threads": threads_for(self._train_config().cpus_per_worker if self._data_parallel()
                                            else cfg.pool.prepare_num_cpus), **cfg.train}
        if cfg.few_shot is not None:
            split = cfg.split_config()
            trial = self._trial({**train, "num_threads": threads_for(split.cpus_per_trial), "epochs": split.epochs},
                                SPLIT_EVAL_ARCHS)
            return SplitWeights(trial, to_dict(split), directory=cfg.weights_dir or WEIGHTS_DIR,
                                storage_path=resolve(self.storage_path))
        if cfg.pbt is not None:
            return PBTWeights(self._trial(train, PBT_EVAL_ARCHS), dict(cfg.pbt),
                              directory=cfg.weights_dir or WEIGHTS_DIR, storage_path=resolve(self.storage_path))
        storage = resolve(self.storage_path) if self._data_parallel() else None
        return TrainedWeights(cfg.sampling, dict(cfg.sampling_config), train,
                              storage_path=storage).kept_in(cfg.weights_dir, self.spec)

    def _train_config(self):
        from raynas.supernet.train import TrainConfig

        return from_dict(TrainConfig, dict(self.config.train), "evaluator.train")

    def _data_parallel(self) -> bool:
        """Whether the served weights are trained here by ``train.workers > 1`` Ray Train workers."""
        return not self.config.weights and self._train_config().workers > 1

    def _trial(self, train: dict[str, Any], eval_random_archs: int) -> dict[str, Any]:
        """The ``SupernetTrialConfig`` (as a dict) of PBT members and split-tree nodes."""
        cfg = self.config
        return {"space": self.space.name, "space_config": to_dict(self.space.config),
                "supernet": cfg.supernet, "supernet_config": dict(cfg.supernet_config),
                "sampling": cfg.sampling, "sampling_config": dict(cfg.sampling_config),
                "dataset": cfg.dataset, "dataset_config": dict(cfg.dataset_config), "train": train,
                "eval_random_archs": eval_random_archs}

    def metrics(self) -> tuple[str, ...]:
        return (VALID_ACC,)

    def resources(self) -> list[Demand]:
        """The pool's start-up task and each replica; with ``pbt``, each population member."""
        pool, path = self.config.pool, "evaluator.pool"
        out = [Demand("the pool's start-up task", {RAY_CPU: pool.prepare_num_cpus, RAY_GPU: pool.prepare_num_gpus},
                      {RAY_CPU: f"{path}.prepare_num_cpus", RAY_GPU: f"{path}.prepare_num_gpus"}),
               Demand("each pool replica", {RAY_CPU: pool.num_cpus, RAY_GPU: pool.num_gpus},
                      {RAY_CPU: f"{path}.num_cpus", RAY_GPU: f"{path}.num_gpus"})]
        if self.config.pbt is not None and not self.config.weights:
            from raynas.supernet.pbt import PBTConfig

            pbt = from_dict(PBTConfig, dict(self.config.pbt), "evaluator.pbt")
            if not self._data_parallel():  # else each member's workers are the demand below
                out.append(Demand("each PBT member", {RAY_CPU: pbt.cpus_per_member, RAY_GPU: pbt.gpus_per_member},
                                  {RAY_CPU: "evaluator.pbt.cpus_per_member", RAY_GPU: "evaluator.pbt.gpus_per_member"}))
        if self._data_parallel():
            train, at = self._train_config(), "evaluator.train"
            out.append(Demand(f"each of the {train.workers} data-parallel training workers",
                              {RAY_CPU: train.cpus_per_worker, RAY_GPU: train.gpus_per_worker},
                              {RAY_CPU: f"{at}.cpus_per_worker", RAY_GPU: f"{at}.gpus_per_worker"}))
        if self.config.few_shot is not None and not self.config.weights:
            split, at = self.config.split_config(), "evaluator.few_shot"
            out.append(Demand("each few-shot split trial",
                              {RAY_CPU: split.cpus_per_trial, RAY_GPU: split.gpus_per_trial},
                              {RAY_CPU: f"{at}.cpus_per_trial", RAY_GPU: f"{at}.gpus_per_trial"}))
        return out

    def prepare(self) -> None:
        """Create the pool (once; joining Ray if needed): the weights source is prepared here, in this
        process — PBT runs now — and the pool's router then trains or loads in its start-up task."""
        if self._pool is not None:
            return
        from raynas.ray_env import ensure_ray
        from raynas.serving.pool import ServerPool
        from raynas.serving.sources import shipped
        from raynas.serving.split import SplitPools, SplitServing

        ensure_ray()
        factory = self.weights_source().prepare()
        if isinstance(factory, SplitServing):
            self._pool = SplitPools.create(factory, self.spec, self.config.pool, self.pool_name, self.space.from_str)
            self._record = factory.record
        else:
            self._pool = ServerPool.create(self.spec, self.config.pool, factory=shipped(factory), name=self.pool_name)

    @property
    def pool(self):
        """The ``ServerPool`` (``prepare``d on first access; not necessarily started yet)."""
        self.prepare()
        return self._pool

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
        from raynas.serving.split import SUB_SUPERNET

        tags = {WEIGHTS_VERSION: str(reply[VERSION]), EVAL_CACHE: HIT if reply[CACHED] else MISS,
                REPLICA_TAG: str(reply[REPLICA])}
        if SUB_SUPERNET in reply:
            tags[SUB_SUPERNET] = str(reply[SUB_SUPERNET])
        return Result(metrics={VALID_ACC: float(reply[VALID_ACC])}, cost_s=cost_s,
                      hidden={TEST_ACC: float(reply[TEST_ACC])}, tags=tags)

    # --- weights -----------------------------------------------------------------------------
    def publish(self, arrays: dict) -> str:
        """Hot-swap the served weights (searches keep running); returns the new version. A few-shot
        evaluator serves one set per sub-supernet: publish to ``pool.pools[<leaf id>]``."""
        return self.pool.publish(arrays)

    def training_record(self) -> dict[str, Any] | None:
        """With ``few_shot``, once prepared: the split tree as JSON data (``SplitResult.record``: nodes,
        splits, GM distances, curves, op names); else None."""
        return self._record

    def weights_for(self, arch: Any, splits: Any = None) -> dict:
        """The weights that score ``arch``: the served ones, or with ``few_shot`` those of the
        sub-supernet whose sub-space holds it."""
        if self.config.few_shot is None or self.config.weights:
            return self.weights(splits)
        from raynas.serving.split import SplitPools

        if isinstance(self._pool, SplitPools):
            return self._pool.weights_of(self.space.to_str(arch))
        from raynas.serving.sources import read_weights

        serving = self.weights_source().prepare()
        return read_weights(serving.leaves[serving.tree.route(arch)])

    def weights(self, splits: Any = None) -> dict:
        """The served weights; without a pool (e.g. ``raynas export``, no Ray), the same weights produced
        in this process: loaded from ``weights`` or ``weights_dir``, else trained (deterministic).
        ``splits``: the dataset, when already loaded. A few-shot evaluator has one set per sub-supernet:
        ``weights_for(arch)``."""
        import ray

        if self.config.few_shot is not None and not self.config.weights:
            raise RaynasError("a few-shot supernet evaluator serves one set of weights per sub-supernet; "
                              "ask weights_for(arch)")
        if self._pool is not None or (ray.is_initialized() and _pool_exists(self.pool_name)):
            return self.pool.weights()
        from raynas.serving.spec import load_splits

        try:
            factory = self.weights_source().prepare()
            return factory(self.spec, splits if splits is not None else load_splits(self.spec))
        except FileNotFoundError as err:
            raise RaynasError(f"supernet weights: {err}") from None

    def export_model(self, arch: Any, out_dir: str | Path) -> str:
        """Save ``arch`` as a stand-alone MLflow PyTorch model in ``out_dir`` (contract:
        ``raynas.tracking.export.ModelExporter``): weights sliced from the supernet, BN recalibrated
        exactly as when it was scored, eval mode on CPU, a signature from a real val batch, metadata
        ``arch``/``canonical``/``weights_version``/``evaluator``. Its outputs equal the supernet's on
        ``arch``. Returns ``out_dir``."""
        from raynas.serving.export import save_mlflow_model
        from raynas.serving.scorer import SubnetScorer
        from raynas.serving.spec import EvalData, load_splits

        if not self.space.contains(arch):
            raise ValueError(f"{arch!r} is not an arch of space {self.space.name}")
        splits = load_splits(self.spec)
        data = EvalData.build(self.spec, splits)
        scorer = SubnetScorer(dataclasses.replace(self.spec, device=CPU), data)
        version = scorer.load(self.weights_for(arch, splits))
        scorer.calibrate(arch)
        meta = {"arch": self.space.to_str(arch), "canonical": self.space.canonical(arch),
                WEIGHTS_VERSION: version, "evaluator": self.id}
        return str(save_mlflow_model(scorer.model.extract(arch), data.val_x, out_dir, metadata=meta))


def _pool_exists(name: str) -> bool:
    import ray

    try:
        ray.get_actor(name)
    except ValueError:
        return False
    return True
