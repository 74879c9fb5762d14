"""End to end: ``raynas run recipes/few-shot-nb201.yaml`` (in a small setting) on local Ray Tune into a
real sqlite MLflow store — the exhaustive split tree trained as Tune trials, served one pool per
sub-supernet, searched by REA, and recorded: candidates routed to the sub-supernet holding them, the tree
as nested runs with curves, its picture; a second run finds the kept tree instead of training it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from raynas.errors import RaynasError, RecipeError
from raynas.recipes import load_recipe
from raynas.runtime import build_search
from raynas.space.nb201 import NB201Space
from raynas.supernet.fewshot import tree_from_record

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "few-shot-nb201.yaml"
SMALL = ["evaluator.dataset_config={train_size: 256, val_size: 128, test_size: 128}",
         "evaluator.supernet_config={channels: 4}",
         "evaluator.train.epochs=2", "evaluator.few_shot.split_epochs=[1]", "budget.max_candidates=16"]


def _run(work: Path) -> subprocess.CompletedProcess:
    sets = [a for s in SMALL for a in ("--set", s)]
    return subprocess.run([sys.executable, "-m", "raynas", "run", str(RECIPE), "--quiet", *sets],
                          cwd=work, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def few_shot(tmp_path_factory):
    work = tmp_path_factory.mktemp("work")
    first = _run(work)
    assert first.returncode == 0, first.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    exp = client.get_experiment_by_name("few-shot-nb201")
    (search,) = client.search_runs([exp.experiment_id], filter_string="tags.`raynas.recipe` = 'few-shot-nb201'")
    record = json.loads(Path(client.download_artifacts(search.info.run_id, "split_tree.json", str(work))).read_text())
    return work, client, exp, search, record


def test_the_tree_has_one_sub_supernet_per_op_of_edge_0(few_shot):
    *_, record = few_shot
    tree = tree_from_record(record)
    assert sorted(leaf.id for leaf in tree.leaves()) == [f"root/e0={op}" for op in range(5)]
    versions = {n["id"]: n["weights_version"] for n in record["nodes"]}
    assert len(set(versions.values())) == 6 and None not in versions.values()


def test_every_candidate_is_scored_by_the_sub_supernet_holding_it(few_shot):
    work, client, _, search, record = few_shot
    import pyarrow.parquet as pq

    rows = pq.read_table(client.download_artifacts(search.info.run_id, "candidates.parquet", str(work))).to_pylist()
    tree, space = tree_from_record(record), NB201Space()
    versions = {n["id"]: n["weights_version"] for n in record["nodes"]}
    assert len(rows) == 16 and len({r["sub_supernet"] for r in rows}) >= 3
    for row in rows:
        leaf = tree.route(space.from_str(row["arch"]))
        assert row["sub_supernet"] == leaf and row["weights_version"] == versions[leaf]


def test_the_split_tree_is_nested_runs_with_curves_and_a_picture(few_shot):
    _, client, exp, search, _ = few_shot
    nodes = {r.data.tags["raynas.split_node"]: r for r in
             client.search_runs([exp.experiment_id], filter_string=f"tags.`raynas.split_of` = '{search.info.run_id}'")}
    assert sorted(nodes) == ["root", *(f"root/e0={op}" for op in range(5))]
    assert nodes["root"].data.tags["mlflow.parentRunId"] == search.info.run_id
    assert nodes["root"].data.params["split/groups"] == " | ".join(NB201Space.ops)
    for op in range(5):
        child = nodes[f"root/e0={op}"]
        assert child.data.tags["mlflow.parentRunId"] == nodes["root"].info.run_id
        assert child.data.params["sub_space"] == f"e0={{{NB201Space.ops[op]}}}" and child.data.params["epochs"] == "1-2"
        assert [m.step for m in client.get_metric_history(child.info.run_id, "train_loss")] == [2]
    assert [m.step for m in client.get_metric_history(nodes["root"].info.run_id, "train_loss")] == [1]
    assert "plots/split_tree.png" in [f.path for f in client.list_artifacts(search.info.run_id, "plots")]


def test_a_second_run_reuses_the_kept_tree(few_shot, monkeypatch):
    """What a second ``raynas run`` of the recipe does first: the evaluator's weights source finds the kept
    tree (no Ray, no second Tune experiment) with the same leaves and record."""
    work, *_, record = few_shot
    experiments = sorted((work / ".raynas" / "tune").iterdir())
    monkeypatch.chdir(work)
    search = build_search(load_recipe(RECIPE, SMALL))
    serving = search.evaluator.weights_source().prepare()
    assert serving.record == record and sorted(serving.leaves) == [f"root/e0={op}" for op in range(5)]
    assert all(Path(p).is_file() for p in serving.leaves.values())
    assert sorted((work / ".raynas" / "tune").iterdir()) == experiments


@pytest.mark.parametrize("override, field", [
    ("evaluator.few_shot.split_epochs=[3]", "evaluator.few_shot.split_epochs"),
    ("evaluator.few_shot.method=random", "evaluator.few_shot.method"),
    ("evaluator.few_shot.edges=[]", "evaluator.few_shot.edges"),
    ("evaluator.pbt={population: 2}", "evaluator.few_shot"),
])
def test_bad_few_shot_settings_name_the_field(override, field):
    with pytest.raises(RecipeError) as err:
        build_search(load_recipe(RECIPE, ["evaluator.train.epochs=3", "evaluator.few_shot.split_epochs=[1]", override]))
    assert str(err.value).startswith(field) and "\n" not in str(err.value)


def test_a_candidate_exports_with_its_sub_supernets_weights(few_shot, monkeypatch):
    """``export_model`` (what ``raynas export`` calls) slices the arch from the leaf that scored it."""
    import mlflow

    work, *_, record = few_shot
    monkeypatch.chdir(work)
    evaluator = build_search(load_recipe(RECIPE, SMALL)).evaluator
    space, versions = NB201Space(), {n["id"]: n["weights_version"] for n in record["nodes"]}
    arch = space.from_str("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|")
    info = mlflow.models.get_model_info(evaluator.export_model(arch, str(work / "exported")))
    assert info.metadata["weights_version"] == versions[tree_from_record(record).route(arch)] == versions["root/e0=3"]
    with pytest.raises(RaynasError, match="weights_for"):
        evaluator.weights()
