"""Fake installed distributions for plugin tests: a ``<name>.dist-info`` folder (``METADATA`` and
``entry_points.txt``) in a site folder that goes on ``sys.path`` / ``PYTHONPATH``, as pip would leave it."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "custom-space"
EXAMPLE_SRC = EXAMPLE / "src"
EXAMPLE_PACKAGE = "raynas_custom_space"
# the example's own entry points (its pyproject.toml), as an installed copy would declare them
EXAMPLE_ENTRY_POINTS = {
    "raynas.spaces": {"chain": "raynas_custom_space.space:ChainSpace"},
    "raynas.strategies": {"hill_climb": "raynas_custom_space.strategy:HillClimb"},
    "raynas.evaluators": {"toy_accuracy": "raynas_custom_space.evaluator:ToyAccuracy"},
}


def write_dist(site: Path, name: str, entry_points: dict[str, dict[str, str]], version: str = "0.1.0") -> Path:
    """Write ``<site>/<name>-<version>.dist-info`` declaring ``entry_points`` (group -> name -> value)."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    sections = [f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items())
                for group, eps in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(sections))
    return info


def write_module(folder: Path, module: str, source: str) -> Path:
    """Write a top-level module ``<folder>/<module>.py``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{module}.py"
    path.write_text(source)
    return path
