"""The example plugin as a user installs it: ``examples/custom-space`` built into a wheel by pip from its
own ``pyproject.toml`` (entry points and all), the wheel unpacked into a site folder — exactly what
``pip install`` puts in site-packages — and a recipe without ``plugins:`` validated and run from it."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

import pytest
import yaml

from tests.cli.test_plugins_cli import RUN_FLAGS, assert_ran, raynas, write_recipe
from tests.recipes.plugin_dists import EXAMPLE


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    source = tmp_path_factory.mktemp("src") / EXAMPLE.name
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    wheels, site = tmp_path_factory.mktemp("wheels"), tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-q", str(source),
                    "-w", str(wheels)], check=True, capture_output=True, timeout=120)
    (wheel,) = wheels.glob("raynas_custom_space-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    return site


def test_the_built_wheel_declares_the_entry_points_raynas_finds(site, tmp_path):
    (dist_info,) = site.glob("raynas_custom_space-*.dist-info")
    assert "[raynas.spaces]" in (dist_info / "entry_points.txt").read_text()
    path = write_recipe(tmp_path)
    proc = raynas(["validate", str(path)], tmp_path, [site])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert yaml.safe_load(proc.stdout)["space"]["name"] == "chain"
    assert_ran(raynas(["run", str(path), *RUN_FLAGS], tmp_path, [site]))
