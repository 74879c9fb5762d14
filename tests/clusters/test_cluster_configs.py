"""clusters/: the cloud launcher YAMLs pass Ray's own config checker; the KubeRay manifests carry what
the operator requires; every entrypoint's recipe and ``--set`` fields resolve in this repository."""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from raynas.cli import make_parser
from raynas.commands.run import run_recipe

REPO = Path(__file__).resolve().parents[2]
CLUSTERS = REPO / "clusters"
LAUNCHER = ["aws.yaml", "gcp.yaml"]
KUBERAY = CLUSTERS / "kuberay"
GPU = "nvidia.com/gpu"


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("name", LAUNCHER)
def test_launcher_config_passes_rays_checker(name):
    from ray.autoscaler._private.util import prepare_config, validate_config

    cfg = load(CLUSTERS / name)
    validate_config(prepare_config(cfg))  # raises on unknown keys, missing resources/node_config, …
    types = cfg["available_node_types"]
    assert cfg["head_node_type"] in types
    gpu = [t for name, t in types.items() if "gpu" in name]
    assert gpu and all(t["min_workers"] == 0 for t in gpu)  # GPUs only while a search asks for them
    assert types[cfg["head_node_type"]]["resources"] == {"CPU": 0}  # no trials on the head


def test_ray_rejects_an_unknown_key_so_the_check_is_real():
    from ray.autoscaler._private.util import prepare_config, validate_config

    cfg = load(CLUSTERS / "aws.yaml")
    cfg["available_node_types"]["gpu_worker"]["min_worker"] = 0
    with pytest.raises(Exception, match="min_worker"):
        validate_config(prepare_config(cfg))


@pytest.mark.parametrize("name", LAUNCHER)
def test_launcher_installs_the_wheel_and_starts_mlflow_on_the_private_network(name):
    cfg = load(CLUSTERS / name)
    mounts = cfg["file_mounts"]
    assert mounts["/home/ubuntu/dist"] == "./dist" and (REPO / mounts["/home/ubuntu/raynas/recipes"]).is_dir()
    assert any("/home/ubuntu/dist/raynas-*.whl" in c for c in cfg["setup_commands"])
    mlflow = " ".join(c for c in cfg["head_start_ray_commands"] if "mlflow server" in c)
    assert "--host $(hostname -I" in mlflow and "--artifacts-destination" in mlflow
    assert any(scheme in mlflow for scheme in ("s3://", "gs://"))
    assert "wheel:" in (REPO / "Makefile").read_text()  # `make wheel` builds what file_mounts ships


def pod_containers(template: dict) -> list[dict]:
    return template["spec"]["containers"]


def check_ray_cluster_spec(spec: dict) -> None:
    assert pod_containers(spec["headGroupSpec"]["template"])
    groups = spec["workerGroupSpecs"]
    for g in groups:
        assert {"groupName", "minReplicas", "maxReplicas", "template"} <= set(g), g.get("groupName")
        assert g["minReplicas"] <= g["maxReplicas"] and pod_containers(g["template"])
    gpu = [g for g in groups if any(GPU in c["resources"].get("limits", {}) for c in pod_containers(g["template"]))]
    assert gpu and all(g["minReplicas"] == 0 for g in gpu)


def test_kuberay_raycluster_has_the_required_fields_and_a_gpu_group():
    doc = load(KUBERAY / "raycluster.yaml")
    assert (doc["apiVersion"], doc["kind"]) == ("ray.io/v1", "RayCluster")
    check_ray_cluster_spec(doc["spec"])


def entrypoint_recipe(command: str):
    """The recipe a ``raynas run`` command line runs, parsed by raynas's own CLI parser."""
    argv = shlex.split(command)
    assert argv[:2] == ["raynas", "run"], argv
    args = make_parser().parse_args(argv[1:])
    assert (REPO / args.recipe).is_file(), args.recipe
    args.recipe = str(REPO / args.recipe)
    return run_recipe(args)


def test_kuberay_rayjob_runs_a_recipe_of_this_repo_and_shuts_down():
    doc = load(KUBERAY / "rayjob.yaml")
    assert (doc["apiVersion"], doc["kind"]) == ("ray.io/v1", "RayJob")
    spec = doc["spec"]
    assert spec["shutdownAfterJobFinishes"] is True
    check_ray_cluster_spec(spec["rayClusterSpec"])
    recipe = entrypoint_recipe(spec["entrypoint"])
    assert recipe.ray.address == "auto" and recipe.backend.storage_path.startswith("s3://")


def test_every_documented_command_line_names_a_recipe_that_loads():
    text = (CLUSTERS / "kuberay" / "raycluster.yaml").read_text()
    lines = [line.lstrip("# ").rstrip(" \\") for line in text.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("raynas run"))
    recipe = entrypoint_recipe(" ".join(lines[start:start + 2]))
    assert recipe.ray.address == "auto"
