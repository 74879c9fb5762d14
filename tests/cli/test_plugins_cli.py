"""Plugins from the command line, in fresh processes on a real local Ray: components found through an
installed distribution's entry points (a ``.dist-info`` on ``PYTHONPATH``) and through a recipe's
``plugins:`` (a package in the current directory) both ``raynas validate`` and ``raynas run``; a plugin
that cannot be imported is one error line and exit status 2; the example package passes its own tests."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from raynas.registry import PLUGINS_ENV
from tests.recipes.plugin_dists import (
    EXAMPLE,
    EXAMPLE_ENTRY_POINTS,
    EXAMPLE_PACKAGE,
    EXAMPLE_SRC,
    write_dist,
)

BAD_INPUT = 2
CANDIDATES = 6
TIMEOUT_S = 300
RAYNAS = Path(sys.executable).with_name("raynas")  # the console script: its sys.path lacks the cwd
CHAIN_ARCH = re.compile(r"^Best arch: (skip|conv3x3|conv5x5|maxpool)(-(skip|conv3x3|conv5x5|maxpool)){5}$", re.M)
RUN_FLAGS = ["--set", f"budget.max_candidates={CANDIDATES}", "--set", "ray.num_cpus=2",
             "--set", "tracking.plots=false", "--quiet"]


def raynas(args: list[str], cwd: Path, pythonpath: list[Path] = ()) -> subprocess.CompletedProcess:
    """``raynas ARGS`` in ``cwd`` with exactly ``pythonpath`` on ``PYTHONPATH`` (and no inherited plugins)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", PLUGINS_ENV)}
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(map(str, pythonpath))
    return subprocess.run([str(RAYNAS), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_S)


def write_recipe(folder: Path, **fields) -> Path:
    data = {"name": "plugged", "seed": 0, "space": {"name": "chain", "length": 6},
            "evaluator": {"name": "toy_accuracy", "seconds": 100}, "strategy": {"name": "hill_climb", "warmup": 3},
            "budget": {"sim_seconds": 100_000}, "backend": {"name": "tune", "workers": 1}, **fields}
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def assert_ran(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"Search finished: {CANDIDATES} candidates" in proc.stdout and CHAIN_ARCH.search(proc.stdout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A site folder holding the example as pip would install it: its package and a dist-info."""
    site = tmp_path_factory.mktemp("site")
    write_dist(site, "raynas-custom-space", EXAMPLE_ENTRY_POINTS)
    return [site, EXAMPLE_SRC]


def test_entry_points_validate_and_run(installed, tmp_path):
    path = write_recipe(tmp_path)  # no plugins: the registries find the example through its entry points
    proc = raynas(["validate", str(path)], tmp_path, installed)
    assert proc.returncode == 0, proc.stderr[-3000:]
    resolved = yaml.safe_load(proc.stdout)
    assert (resolved["space"]["name"], resolved["strategy"]["name"], resolved["plugins"]) == ("chain", "hill_climb", [])
    assert_ran(raynas(["run", str(path), *RUN_FLAGS], tmp_path, installed))


def test_the_plugins_key_validates_and_runs_the_example_recipe(tmp_path):
    # the package only in the current directory: the driver imports it from there, Ray's workers too
    shutil.copytree(EXAMPLE_SRC / EXAMPLE_PACKAGE, tmp_path / EXAMPLE_PACKAGE)
    recipe = EXAMPLE / "recipe.yaml"
    proc = raynas(["validate", str(recipe)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert yaml.safe_load(proc.stdout)["plugins"] == [EXAMPLE_PACKAGE]
    assert_ran(raynas(["run", str(recipe), *RUN_FLAGS], tmp_path))


@pytest.mark.parametrize("command", ["validate", "run"])
def test_an_unknown_plugin_module_is_one_line_naming_its_index(tmp_path, command):
    path = write_recipe(tmp_path, plugins=["json", "no_such_plugin_module"])
    proc = raynas([command, str(path)], tmp_path)
    assert proc.returncode == BAD_INPUT and proc.stdout == ""
    assert proc.stderr.splitlines() == ["raynas: error: plugins[1]: no module named 'no_such_plugin_module' "
                                        "(install it, or put it on PYTHONPATH or in the current directory)"]


def test_a_broken_entry_point_is_one_line_naming_the_field_and_the_distribution(tmp_path):
    site = tmp_path / "site"
    write_dist(site, "broken-spaces", {"raynas.spaces": {"broken": "gone_package.space:Space"}})
    proc = raynas(["validate", str(write_recipe(tmp_path, space="broken"))], tmp_path, [site, EXAMPLE_SRC])
    assert proc.returncode == BAD_INPUT
    assert proc.stderr.splitlines() == [
        "raynas: error: space.name: search space 'broken': entry point 'broken = gone_package.space:Space' "
        "(group raynas.spaces) of distribution broken-spaces 0.1.0 failed to load: ModuleNotFoundError: "
        "No module named 'gone_package'"]


def test_the_example_package_passes_its_own_contract_tests(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != PLUGINS_ENV}
    env["PYTHONPATH"] = str(EXAMPLE_SRC)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert re.search(r"\b\d+ passed\b", proc.stdout) and "failed" not in proc.stdout


def test_a_broken_module_of_raynas_plugins_is_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env[PLUGINS_ENV] = "no_such_env_plugin"  # what a Ray worker inherits; read when a name is missing
    proc = subprocess.run([str(RAYNAS), "validate", str(write_recipe(tmp_path))], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == BAD_INPUT
    assert proc.stderr.splitlines() == [f"raynas: error: ${PLUGINS_ENV}: no module named 'no_such_env_plugin' "
                                        "(install it, or put it on PYTHONPATH or in the current directory)"]
