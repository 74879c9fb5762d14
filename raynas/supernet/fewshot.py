"""Few-shot split training on Ray Tune (Few-Shot NAS, Zhao et al. 2021; GM-NAS, Hu et al. 2022): a tree
of sub-supernets, every one a Tune trial, the splits emitted by a Tune ``Searcher``.

The root trains epochs ``1..split_epochs[0]`` on the whole space (its sampling rule draws from its
sub-space: ``RestrictedSpace``). When a node's trial completes, ``SplitSearcher.on_trial_complete``
splits it — ``exhaustive``: on edge ``edges[level]``, one child per op; ``gm``: on the edge and the
balanced 2|3 cut that gradient matching picks from the op-gradient distances the trial measured at its
end (``gm_batches`` batches, ``raynas.supernet.gm``) — and queues one trial per child, which starts from
the parent's final checkpoint exactly (weights and optimizer state) and trains on to the next split
epoch (or ``epochs``) on its sub-space; the learning-rate schedule spans ``epochs`` for every lineage.
Up to ``max_concurrent`` trials run at once, each with ``cpus_per_trial``/``gpus_per_trial`` (a GPU
when given: ``train.device`` ``auto``). Every epoch is a checkpoint; a failed trial is retried from its
last one (``FailureConfig(max_failures)``). A finished node's final checkpoint is kept in
``<storage>/<name>/nodes/<node>`` for its children (and the serving pool). The Searcher saves and
restores its tree, queue and results, so ``Tuner.restore`` continues a split search.
"""
from __future__ import annotations

import dataclasses
import json
import tempfile
import zlib
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
from ray.tune import Callback
from ray.tune.search import Searcher

from raynas import storage
from raynas.data.base import VAL
from raynas.errors import RecipeError
from raynas.metrics import FEW_SHOT, RECORD_KIND, WEIGHTS_VERSION
from raynas.ray_env import quiet_tune
from raynas.space.splits import ROOT, RestrictedSpace, SplitTree, SubSpace
from raynas.state import PickledState
from raynas.typed import bounded

EXHAUSTIVE, GM = "exhaustive", "gm"
NODE, NODE_DIR, DONE, GM_RESULT = "node", "node_dir", "split_done", "gm"
INHERITED, START_VERSION, RESUMED_FROM = "inherited_weights_version", "start_weights_version", "resumed_from"
NODES = "nodes"
VAL_ACC_PREFIX = f"{VAL}_acc_"  # the per-epoch accuracies of a node's tracked archs (train.evaluate_archs)


@dataclasses.dataclass
class SplitConfig:
    """How to split (see the module docstring)."""

    method: Literal["exhaustive", "gm"] = EXHAUSTIVE
    epochs: int = bounded(8, ge=2)  # of every lineage, root to leaf
    split_epochs: list[int] = dataclasses.field(default_factory=lambda: [4])  # one level per entry
    edges: list[int] = dataclasses.field(default_factory=lambda: [0])  # exhaustive: the edge of each level
    gm_batches: int = bounded(4, ge=1)
    max_concurrent: int = bounded(2, ge=1)
    cpus_per_trial: float = bounded(1.0, gt=0)
    gpus_per_trial: float = bounded(0.0, ge=0)
    max_failures: int = bounded(1, ge=0)

    def validate(self, path: str) -> None:
        e = self.split_epochs
        if not e or sorted(set(e)) != e or e[0] < 1 or e[-1] >= self.epochs:
            raise RecipeError(f"{path}.split_epochs", f"must be increasing epochs in 1..{self.epochs - 1}, got {e}")
        if self.method == EXHAUSTIVE and len(self.edges) < len(e):
            raise RecipeError(f"{path}.edges", f"name an edge for each of the {len(e)} split levels, got {self.edges}")


def node_dirname(node: str) -> str:
    return node.replace("/", "__")


def _seed_of(node: str, seed: int) -> int:
    return seed + zlib.crc32(node.encode()) % 1_000_000


# --- the trial -------------------------------------------------------------------------------------
def run_split_trial(config: dict[str, Any], report: Callable[..., None], checkpoint: Any = None) -> None:
    """Train one node of the tree (``config``: ``SplitSearcher.node_config``), reporting every epoch
    with a checkpoint, then once more with ``split_done`` (and the GM distances when asked)."""
    from ray import tune

    from raynas.supernet.sampling import build_sampler
    from raynas.supernet.train import apply_hyperparams, make_optimizer, train_supernet
    from raynas.supernet.trainable import restore_checkpoint, write_checkpoint
    from raynas.supernet.trial import build_trial
    from raynas.supernet.weights import to_numpy, weights_version

    trial = build_trial(config["trial"])
    space = trial.space
    sub = SubSpace(len(space.edges), len(space.ops), {int(e): frozenset(ops) for e, ops in config["allowed"]})
    rule = build_sampler(trial.config.sampling, RestrictedSpace(space, sub),
                         {**trial.config.sampling_config, "seed": _seed_of(config[NODE], trial.config.train.seed)})
    optimizer = make_optimizer(trial.model, trial.config.train)
    start, info = int(config["start_epoch"]), {NODE: config[NODE]}
    if config["parent"]:
        info[INHERITED] = config["parent_version"]
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            start = restore_checkpoint(directory, trial.model, optimizer, rule)
        info[RESUMED_FROM] = start
    elif config["parent"]:
        with storage.local_copy(config["parent"]) as parent:  # weights and optimizer, not the rule
            restore_checkpoint(parent, trial.model, optimizer)
    apply_hyperparams(optimizer, trial.config.train)
    info[START_VERSION] = weights_version(to_numpy(trial.model))
    if checkpoint is None and config["parent"] and info[START_VERSION] != config["parent_version"]:
        raise RuntimeError(f"{config['parent']}: weights {info[START_VERSION]} are not the parent's final "
                           f"{config['parent_version']}")

    def on_epoch(epoch: int, metrics: dict[str, Any]) -> None:
        with tempfile.TemporaryDirectory() as directory:
            metrics[WEIGHTS_VERSION] = write_checkpoint(directory, trial.model, optimizer, rule, epoch)
            report({**metrics, **info}, checkpoint=tune.Checkpoint.from_directory(directory))

    eval_archs = {k: a for k, a in trial.eval_archs.items() if sub.contains(a)}
    train_supernet(trial.model, rule, trial.splits, trial.config.train, eval_archs=eval_archs, optimizer=optimizer,
                   start_epoch=start, stop_epoch=int(config["stop_epoch"]), on_epoch=on_epoch)
    node_dir = storage.join(config["nodes_dir"], node_dirname(config[NODE]))
    with tempfile.TemporaryDirectory() as directory:  # the children, on any node, start from it
        version = write_checkpoint(directory, trial.model, optimizer, rule, int(config["stop_epoch"]))
        storage.upload(directory, node_dir)
    final = {**info, DONE: True, NODE_DIR: node_dir, "epoch": int(config["stop_epoch"]), WEIGHTS_VERSION: version}
    if config.get("gm"):
        final[GM_RESULT] = json.dumps(gm_distances(trial, sub, int(config["gm_batches"])))  # Tune flattens dicts
    report(final)


def gm_distances(trial: Any, sub: SubSpace, num_batches: int) -> dict[str, dict[str, Any]]:
    """``{edge: {"ops": [...], "dist": matrix}}`` for every edge of ``sub`` with a choice left."""
    import itertools

    from raynas.data.base import TRAIN
    from raynas.supernet.gm import gradient_distances
    from raynas.supernet.splitting import edge_gradients

    seed = trial.config.train.seed
    loader = trial.splits.loader(TRAIN, trial.config.train.batch_size, shuffle=True, seed=seed, drop_last=True)
    device = next(trial.model.parameters()).device
    batches = [(x.to(device), y.to(device)) for x, y in itertools.islice(loader, num_batches)]
    out = {}
    for edge in sub.splittable():
        ops, mats = edge_gradients(trial.model, sub, edge, batches, np.random.default_rng(seed + edge))
        out[str(edge)] = {"ops": ops, "dist": gradient_distances(mats).tolist()}
    return out


def split_trainable(config: dict[str, Any]) -> None:
    """The Ray Tune function trainable of one node."""
    from ray import tune

    run_split_trial(config, report=tune.report, checkpoint=tune.get_checkpoint())


# --- the searcher ----------------------------------------------------------------------------------
class SplitSearcher(PickledState, Searcher):
    """Emits the root's trial, then each finished node's children (see the module docstring).
    ``splits`` records every split: node → edge, groups and (GM) distances and score."""

    def __init__(self, trial_config: dict[str, Any], split: SplitConfig, nodes_dir: str,
                 num_edges: int, num_ops: int) -> None:
        super().__init__()  # no metric: the tree, not a score, decides what runs next
        self.trial_config, self.split, self.nodes_dir = trial_config, split, nodes_dir
        self.tree = SplitTree(num_edges, num_ops)
        self.queue: list[dict[str, Any]] = [self.node_config(ROOT, None)]
        self.running: dict[str, str] = {}  # Tune trial id -> node
        self.results: dict[str, dict[str, Any]] = {}  # node -> its trial's final result
        self.failed: list[str] = []
        self.errored: dict[str, str] = {}  # Tune trial id -> node, for trials that errored
        self.splits: dict[str, dict[str, Any]] = {}

    def epochs_of(self, level: int) -> tuple[int, int]:
        bounds = [0, *self.split.split_epochs, self.split.epochs]
        return bounds[level], bounds[level + 1]

    def node_config(self, node: str, parent: dict[str, Any] | None) -> dict[str, Any]:
        """The trial config of ``node``; ``parent``: its parent's final result (None for the root)."""
        level = self.tree.depth(node)
        start, stop = self.epochs_of(level)
        allowed = [[e, sorted(ops)] for e, ops in sorted(self.tree.nodes[node].space.allowed.items())]
        return {NODE: node, "allowed": allowed, "parent": parent[NODE_DIR] if parent else None,
                "parent_version": parent[WEIGHTS_VERSION] if parent else None, "start_epoch": start, "stop_epoch": stop,
                "gm": self.split.method == GM and level < len(self.split.split_epochs),
                "gm_batches": self.split.gm_batches, "nodes_dir": self.nodes_dir, "trial": self.trial_config}

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.queue:
            config = self.queue.pop(0)
            self.running[trial_id] = config[NODE]
            return config
        return Searcher.FINISHED if not self.running else None

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        node = self.running.pop(trial_id, None) or self.errored.pop(trial_id, None)
        if node is None:
            return
        if error or not result or not result.get(DONE):
            self.failed.append(node)
            self.errored[trial_id] = node  # Tuner.restore(resume_errored=True) may finish it later
            return
        if node in self.failed:
            self.failed.remove(node)
        self.results[node] = result
        level = self.tree.depth(node)
        if level >= len(self.split.split_epochs):
            return
        edge, groups, record = self._choose(node, result, level)
        self.splits[node] = record
        for child in self.tree.split(node, edge, groups):
            self.queue.append(self.node_config(child.id, result))

    def _choose(self, node: str, result: dict[str, Any], level: int) -> tuple[int, list[list[int]], dict[str, Any]]:
        if self.split.method == EXHAUSTIVE:
            edge = self.split.edges[level]
            groups = [[op] for op in sorted(self.tree.nodes[node].space.ops(edge))]
            return edge, groups, {"edge": edge, "groups": groups}
        from raynas.supernet.gm import choose_split

        measured = json.loads(result[GM_RESULT])
        edge, cut = choose_split({int(e): np.array(m["dist"]) for e, m in measured.items()})
        ops = measured[str(edge)]["ops"]
        groups = [[ops[i] for i in group] for group in cut.groups]
        return edge, groups, {"edge": edge, "groups": groups, "score": cut.score, "within": cut.within,
                              "distances": measured}

    def get_state(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("trial_config", "split", "nodes_dir", "tree", "queue", "running",
                                              "results", "failed", "errored", "splits")}

    def set_state(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)


class NodeCurves(Callback):
    """Every epoch result of every node, in order (a restored trial's repeated epochs replace the old)."""

    def __init__(self) -> None:
        self.curves: dict[str, dict[int, dict[str, Any]]] = {}

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if NODE in result and not result.get(DONE):
            keep = {k: v for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            self.curves.setdefault(result[NODE], {})[int(result["epoch"])] = keep


@dataclasses.dataclass
class SplitResult:
    tree: SplitTree
    results: dict[str, dict[str, Any]]  # node -> final result (NODE_DIR: its checkpoint)
    splits: dict[str, dict[str, Any]]
    failed: list[str]
    experiment_path: str
    curves: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)  # node -> epochs


    def record(self, split: SplitConfig, op_names: Sequence[str] = ()) -> dict[str, Any]:
        """The tree as JSON data (``tree_from_record`` rebuilds it): method, every node (parent, the edge
        and ops of the split that made it, leaf or not, epoch range, final weights version, per-epoch
        curve, ``score``: mean val accuracy of its tracked archs at its last epoch) and every split."""
        bounds = [0, *split.split_epochs, split.epochs]
        nodes = []
        for node in self.tree.walk():
            level, curve = self.tree.depth(node.id), self.curves.get(node.id, [])
            accs = [v for k, v in (curve[-1] if curve else {}).items() if k.startswith(VAL_ACC_PREFIX)]
            nodes.append({"id": node.id, "parent": node.parent, "edge": node.edge,
                          "ops": list(node.ops) if node.parent else None, "leaf": not self.tree.children[node.id],
                          "allowed": {str(e): sorted(ops) for e, ops in sorted(node.space.allowed.items())},
                          "epochs": [bounds[level], bounds[level + 1]],
                          WEIGHTS_VERSION: self.results.get(node.id, {}).get(WEIGHTS_VERSION),
                          "score": float(np.mean(accs)) if accs else None, "curve": curve})
        splits = [{NODE: node, **rec} for node, rec in self.splits.items()]
        root = self.tree.nodes[ROOT].space
        return {RECORD_KIND: FEW_SHOT, "method": split.method, "op_names": list(op_names), "num_edges": root.num_edges,
                "num_ops": root.num_ops, "nodes": nodes, "splits": splits,
                "failed": list(self.failed)}


def tree_from_record(record: dict[str, Any]) -> SplitTree:
    """The ``SplitTree`` a ``SplitResult.record`` describes (its splits replayed, parents first)."""
    tree = SplitTree(int(record["num_edges"]), int(record["num_ops"]))
    by_node = {s[NODE]: s for s in record["splits"]}
    queue = [ROOT]
    while queue:
        node = queue.pop(0)
        if node in by_node:
            queue.extend(c.id for c in tree.split(node, int(by_node[node]["edge"]), by_node[node]["groups"]))
    return tree


def _trial_name(trial: Any) -> str:
    return f"{node_dirname(trial.config.get(NODE, 'node'))}_{trial.trial_id}"


def run_split(trial_config: dict[str, Any], split: SplitConfig, storage_path: str | Path, name: str = "few-shot",
              trainable: Callable[[dict[str, Any]], None] = split_trainable) -> SplitResult:
    """Train the split tree as one Tune experiment (needs a connected Ray)."""
    from ray import tune

    from raynas.space import SPACES

    space_cls = SPACES.get(trial_config.get("space", "nb201"))
    experiment = storage.join(storage.resolve(storage_path), name)
    searcher = SplitSearcher(trial_config, split, storage.join(experiment, NODES), len(space_cls.edges),
                             len(space_cls.ops))
    curves = NodeCurves()
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": split.cpus_per_trial, "gpu": split.gpus_per_trial}),
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=-1, max_concurrent_trials=split.max_concurrent,
                                    reuse_actors=True,  # no process start (torch import, data) per node
                                    trial_name_creator=_trial_name, trial_dirname_creator=_trial_name),
        run_config=tune.RunConfig(name=name, storage_path=storage.resolve(storage_path), verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=split.max_failures),
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=2), callbacks=[curves]))
    with quiet_tune(trial_loggers=True):
        tuner.fit()
    by_node = {node: [epochs[e] for e in sorted(epochs)] for node, epochs in curves.curves.items()}
    return SplitResult(searcher.tree, searcher.results, searcher.splits, searcher.failed, experiment, by_node)


def resume_split(experiment_path: str | Path, trainable: Callable[[dict[str, Any]], None] = split_trainable,
                 resources: dict[str, float] | None = None) -> SplitResult:
    """Continue a split experiment that was interrupted or had errored trials (``Tuner.restore`` with
    ``resume_errored``: each such trial restarts from its last checkpoint); returns the tree as the
    restored Searcher ends it. Per-node curves are not collected on resume."""
    from ray import tune

    path = storage.resolve(experiment_path)
    wrapped = tune.with_resources(trainable, resources or {"cpu": 1.0})
    with quiet_tune(trial_loggers=True):
        grid = tune.Tuner.restore(path, trainable=wrapped, resume_errored=True).fit()
    searcher = SplitSearcher.__new__(SplitSearcher)
    Searcher.__init__(searcher)
    searcher.restore_from_dir(path)
    # Tune's concurrency limiter forgets errored trials, so the restored Searcher never hears of the
    # ones that finished on resume: tell it from the results (a resumed node that should still split
    # would queue its children for a further resume; leaves, the usual case, are complete).
    for result in grid:
        trial_id = result.metrics.get("trial_id")
        if trial_id in searcher.errored and result.metrics.get(DONE):
            searcher.on_trial_complete(trial_id, result.metrics)
    return SplitResult(searcher.tree, searcher.results, searcher.splits, searcher.failed, path)
