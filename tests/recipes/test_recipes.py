"""Recipes: every shipped recipe validates; malformed ones are rejected naming the field path."""
from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from raynas.errors import RaynasError, RecipeError
from raynas.recipes import apply_overrides, dump_recipe, load_recipe, parse_recipe

REPO = Path(__file__).resolve().parents[2]
BASE = {
    "name": "t", "seed": 1, "space": {"name": "nb201"},
    "evaluator": {"name": "tabular", "dataset": "cifar10", "fidelity": 12},
    "strategy": {"name": "rea", "population_size": 10, "sample_size": 3},
    "budget": {"sim_seconds": 12000}, "backend": {"name": "simulate", "workers": 1},
}


@pytest.mark.parametrize("path", sorted((REPO / "recipes").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_recipes_validate(path):
    recipe = load_recipe(path)
    assert parse_recipe(yaml.safe_load(dump_recipe(recipe))).to_dict() == recipe.to_dict()


MALFORMED = [
    ("strategy.population_size=-3", r"^strategy.population_size: must be > 0, got -3$"),
    ("strategy.sample_size=ten", r"^strategy.sample_size: must be int, got 'ten'$"),
    ("strategy.temperature=1", r"^strategy.temperature: unknown field; known: .*population_size, sample_size"),
    ("strategy.name=bayes", r"^strategy.name: unknown strategy 'bayes'; known: .*random.*rea"),
    ("space.name=darts", r"^space.name: unknown search space 'darts'"),
    ("evaluator.dataset=mnist", r"^evaluator.dataset: must be one of cifar10, cifar100, ImageNet16-120"),
    ("evaluator.fidelity=50", r"^evaluator.fidelity: must be one of 12, 200, got 50$"),
    ("evaluator.dataset=cifar100", None),  # valid on its own …
    ("budget.sim_seconds=0", r"^budget.sim_seconds: must be > 0, got 0.0$"),
    ("budget.sim_seconds=null", r"^budget: set sim_seconds or max_candidates"),
    ("backend.name=slurm", r"^backend.name: must be one of tune, simulate, got 'slurm'$"),
    ("backend.workers=0", r"^backend.workers: must be > 0, got 0$"),
    ("backend.gpus_per_worker=-1", r"^backend.gpus_per_worker: must be >= 0"),
    ("seed=-1", r"^seed: must be >= 0, got -1$"),
    ("tracking.batch_size=abc", r"^tracking.batch_size: must be int"),
    ("budgett.sim_seconds=5", r"^budgett: unknown field"),
    ("evaluator.wall_delay_s=true", r"^evaluator.wall_delay_s: must be float, got True$"),
    ("name=''", r"^name: must not be empty$"),
    ("budget.sim_seconds=.inf", r"^budget.sim_seconds: must be a finite number, got inf$"),
    ("budget.sim_seconds=.nan", r"^budget.sim_seconds: must be a finite number, got nan$"),
]


@pytest.mark.parametrize("override,error", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_recipes_name_the_field(override, error):
    data = apply_overrides(BASE, [override])
    if error is None:
        parse_recipe(data)
        return
    with pytest.raises(RecipeError, match=error):
        parse_recipe(data)


def test_cross_field_rule_fidelity_200_only_on_cifar10():
    with pytest.raises(RecipeError, match=r"^evaluator.fidelity: 200-epoch validation accuracy exists only"):
        parse_recipe(apply_overrides(BASE, ["evaluator.dataset=cifar100", "evaluator.fidelity=200"]))


def test_missing_sections_and_wrong_shapes():
    for key in ("space", "strategy", "evaluator", "budget"):
        data = copy.deepcopy(BASE)
        del data[key]
        with pytest.raises(RecipeError, match=rf"^{key}: is required$"):
            parse_recipe(data)
    with pytest.raises(RecipeError, match=r"^strategy.name: is required"):
        parse_recipe({**BASE, "strategy": {"population_size": 3}})
    with pytest.raises(RecipeError, match=r"^recipe: must be a mapping"):
        parse_recipe(["not", "a", "mapping"])


def test_overrides_parse_yaml_values_and_reject_bad_syntax():
    data = apply_overrides(BASE, ["strategy.population_size=20", "backend.workers=2", "tracking.experiment=x"])
    recipe = parse_recipe(data)
    assert recipe.strategy.config.population_size == 20 and recipe.backend.workers == 2
    assert BASE["strategy"]["population_size"] == 10  # the input is not mutated
    with pytest.raises(RaynasError, match="expected dotted.path=value"):
        apply_overrides(BASE, ["novalue"])
    with pytest.raises(RecipeError, match=r"^seed: is not a mapping"):
        apply_overrides(BASE, ["seed.x=1"])


def test_yaml_syntax_error_names_the_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nspace: [unclosed\n")
    with pytest.raises(RaynasError, match=r"bad.yaml: line \d+, column \d+: invalid YAML"):
        load_recipe(bad)


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "raynas", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def test_cli_rejects_bad_recipe_with_one_line_and_exit_2(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({**BASE, "strategy": {"name": "rea", "population_size": -3}}))
    proc = _cli("validate", str(recipe), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "raynas: error: strategy.population_size: must be > 0, got -3"
    assert "Traceback" not in proc.stderr
    proc = _cli("run", str(recipe), "--set", "strategy.population_size=5", "--set", "backend.workers=zero",
                cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip() == "raynas: error: backend.workers: must be int, got 'zero'"
    assert not (tmp_path / "mlflow.db").exists()  # rejected before anything starts


def test_cli_validate_checks_what_needs_the_data(tmp_path):
    recipe = tmp_path / "r.yaml"
    bad = {**BASE, "constraints": [{"metric": "latency_ms", "max": 5, "latency_device": "toaster"}]}
    recipe.write_text(yaml.safe_dump(bad))
    proc = _cli("validate", str(recipe), cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("raynas: error: constraints[0].latency_device: unknown device 'toaster'")


def test_cli_validate_prints_resolved_recipe(tmp_path):
    proc = _cli("validate", str(REPO / "recipes" / "quickstart.yaml"), "--set", "seed=5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    resolved = yaml.safe_load(proc.stdout)
    assert resolved["seed"] == 5 and resolved["strategy"]["name"] == "rea"


def test_bad_input_of_every_kind_is_one_field_error(tmp_path):
    """Non-UTF-8 text, a top-level list or scalar with --set, PBT's lr range, a missing CIFAR-10 folder."""
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(RaynasError, match=r"latin.yaml: not UTF-8 text \(byte 0xe9 at offset 9\)"):
        load_recipe(latin)
    for top in ("[1, 2]", "42", "just text"):
        path = tmp_path / "top.yaml"
        path.write_text(top)
        with pytest.raises(RecipeError, match=r"^recipe: must be a mapping"):
            load_recipe(path, ["seed=1"])
        with pytest.raises(RecipeError, match=r"^recipe: must be a mapping"):
            load_recipe(path)
    mbv3 = yaml.safe_load((REPO / "recipes" / "supernet-pbt-digits.yaml").read_text())
    mbv3["evaluator"]["pbt"].update(lr_min=0.5, lr_max=0.1)
    with pytest.raises(RecipeError, match=r"^evaluator.pbt.lr_min: must be <= lr_max \(0.1\), got 0.5$"):
        parse_recipe(mbv3)
    mbv3["evaluator"]["pbt"].update(lr_min=0.01)
    mbv3["evaluator"].update(dataset="cifar10", dataset_config={"path": str(tmp_path / "no-cifar")})
    with pytest.raises(RecipeError, match=r"^evaluator.dataset_config.path: cifar10: no CIFAR-10 python batches"):
        parse_recipe(mbv3)
