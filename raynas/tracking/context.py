"""Where a search ran: package versions, git commit, Ray cluster size — as MLflow run tags."""
from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

VERSION_TAG = "raynas.version."
GIT_COMMIT_TAG = "mlflow.source.git.commit"
CLUSTER_TAG = "raynas.cluster."
PACKAGES = ("raynas", "ray", "mlflow", "torch")


def version_tags() -> dict[str, str]:
    """``raynas.version.<pkg>`` for raynas, ray, mlflow, torch (those installed), and the git commit
    of the raynas checkout (``mlflow.source.git.commit``, which the MLflow UI shows) when there is one."""
    tags = {}
    for pkg in PACKAGES:
        try:
            tags[VERSION_TAG + pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=Path(__file__).resolve().parent)
        if commit.returncode == 0:
            tags[GIT_COMMIT_TAG] = commit.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return tags


def cluster_tags() -> dict[str, str]:
    """Size of the Ray cluster this process is connected to: ``raynas.cluster.{nodes,cpus,gpus}``.

    Without a Ray connection (the ``simulate`` backend) only ``raynas.cluster.ray=off`` is returned;
    Ray is never started here.
    """
    import ray

    if not ray.is_initialized():
        return {CLUSTER_TAG + "ray": "off"}
    resources = ray.cluster_resources()
    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    return {CLUSTER_TAG + "ray": "on", CLUSTER_TAG + "nodes": str(nodes),
            CLUSTER_TAG + "cpus": f"{resources.get('CPU', 0):g}",
            CLUSTER_TAG + "gpus": f"{resources.get('GPU', 0):g}"}
