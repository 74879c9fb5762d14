"""A few-shot split tree in MLflow: one nested run per sub-supernet under the search run.

``log_split_tree(client, experiment_id, run_id, record)`` (``record``: ``SplitResult.record``, what a
few-shot evaluator's ``training_record()`` gives) makes, parents first, one run per node of the tree,
nested as the tree is (the root's parent is the search run, a child's its node's run): run name = the
node id; params ``node``, ``parent``, ``split_edge``, ``split_ops`` (op names), ``sub_space`` (the ops
each edge keeps), ``epochs``, ``leaf``; tags ``raynas.split_node``, ``weights_version``; metrics = its
per-epoch training curve (step = epoch). A node that was split carries ``split/edge``,
``split/groups`` and, for gradient matching, ``split/score`` and ``split/distances.json`` with one
heatmap ``split/edge<k>.png`` per measured edge (the chosen cut outlined on the chosen edge). The
search run gets ``plots/split_tree.png`` and ``split_tree.json``. Idempotent: nodes already logged
(found by tag) are skipped, so a retried end of run adds only what is missing.
"""
from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from raynas.metrics import PARENT_RUN_TAG
from raynas.tracking import plots

NODE_TAG, OF_TAG = "raynas.split_node", "raynas.split_of"
TREE_PNG, TREE_JSON = "plots/split_tree.png", "split_tree.json"
SPLIT_DIR, DISTANCES_JSON = "split", "distances.json"
MAX_PER_BATCH = 1000


def op_label(record: dict[str, Any], op: int) -> str:
    names = record.get("op_names") or []
    return names[op] if op < len(names) else str(op)


def sub_space_text(record: dict[str, Any], node: dict[str, Any]) -> str:
    """``e0={nor_conv_3x3}; e2={none,skip_connect}``: the edges restricted in ``node``'s sub-space."""
    return "; ".join(f"e{e}={{{','.join(op_label(record, o) for o in ops)}}}"
                     for e, ops in sorted(node.get("allowed", {}).items())) or "whole space"


def _existing(client, experiment_id: str, run_id: str) -> dict[str, str]:
    runs = client.search_runs([experiment_id], filter_string=f"tags.`{OF_TAG}` = '{run_id}'", max_results=10_000)
    return {r.data.tags[NODE_TAG]: r.info.run_id for r in runs}


def log_split_tree(client, experiment_id: str, run_id: str, record: dict[str, Any]) -> dict[str, str]:
    """Log ``record`` under search run ``run_id`` (see the module docstring); returns node → run id."""
    splits = {s["node"]: s for s in record.get("splits", [])}
    runs = _existing(client, experiment_id, run_id)
    for node in record["nodes"]:
        if node["id"] not in runs:
            parent = runs[node["parent"]] if node["parent"] else run_id
            runs[node["id"]] = _node_run(client, experiment_id, run_id, parent, record, node, splits)
    with tempfile.TemporaryDirectory() as tmp:
        plots.save_split_tree(record["nodes"], os.path.join(tmp, TREE_PNG), op_names=record.get("op_names"),
                              title=f"{record.get('method', '')} split tree: {len(record['nodes'])} nodes")
        with open(os.path.join(tmp, TREE_JSON), "w") as f:
            json.dump(record, f, indent=1)
        client.log_artifact(run_id, os.path.join(tmp, TREE_JSON))
        client.log_artifacts(run_id, os.path.join(tmp, "plots"), "plots")
    return runs


def _node_run(client, experiment_id: str, search_run: str, parent_run: str, record: dict[str, Any],
              node: dict[str, Any], splits: dict[str, dict[str, Any]]) -> str:
    from mlflow.entities import Metric, Param, RunTag

    tags = {PARENT_RUN_TAG: parent_run, NODE_TAG: node["id"], OF_TAG: search_run,
            "weights_version": str(node.get("weights_version"))}
    run = client.create_run(experiment_id, run_name=node["id"], tags=tags)
    rid = run.info.run_id
    params = {"node": node["id"], "parent": str(node["parent"]), "leaf": str(node["leaf"]),
              "epochs": f"{node['epochs'][0]}-{node['epochs'][1]}", "sub_space": sub_space_text(record, node),
              "split_edge": str(node["edge"]),
              "split_ops": ",".join(op_label(record, o) for o in node["ops"]) if node["ops"] else "None"}
    metrics = [Metric(k, float(v), 0, int(epoch["epoch"])) for epoch in node.get("curve", [])
               for k, v in epoch.items() if k != "epoch"]
    split = splits.get(node["id"])
    if split is not None:
        params["split/edge"] = str(split["edge"])
        params["split/groups"] = " | ".join(",".join(op_label(record, o) for o in g) for g in split["groups"])
        if split.get("score") is not None:
            metrics.append(Metric("split/score", float(split["score"]), 0, 0))
    client.log_batch(rid, params=[Param(k, v) for k, v in params.items()], tags=[RunTag(k, v) for k, v in tags.items()])
    for i in range(0, len(metrics), MAX_PER_BATCH):
        client.log_batch(rid, metrics=metrics[i:i + MAX_PER_BATCH])
    if split is not None and split.get("distances"):
        _log_distances(client, rid, record, split)
    client.set_terminated(rid)
    return rid


def _log_distances(client, run_id: str, record: dict[str, Any], split: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, SPLIT_DIR)
        os.makedirs(out)
        with open(os.path.join(out, DISTANCES_JSON), "w") as f:
            json.dump(split["distances"], f, indent=1)
        for edge, measured in split["distances"].items():
            ops = [int(o) for o in measured["ops"]]
            chosen = int(edge) == int(split["edge"])
            groups = [[ops.index(o) for o in g] for g in split["groups"]] if chosen else None
            plots.save_distance_heatmap(measured["dist"], [op_label(record, o) for o in ops],
                                        os.path.join(out, f"edge{edge}.png"), groups=groups,
                                        title=f"edge {edge}{' (split)' if chosen else ''}: 1 - cos of gradients")
        client.log_artifacts(run_id, out, SPLIT_DIR)
