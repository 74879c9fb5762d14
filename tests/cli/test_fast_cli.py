"""``raynas --help`` and ``raynas validate`` on an NB201 recipe never import torch (they stay fast); a
deprecated recipe path is one warning line and the command goes on."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
TORCH_MODULES = "sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))"


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_validate_and_help_import_no_torch(tmp_path, nb201_path):
    proc = _run(f"""
        import contextlib, io, sys
        from raynas.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["validate", {str(REPO / "recipes" / "quickstart.yaml")!r},
                         "--set", "evaluator.data_path={nb201_path}"]) == 0
            try:
                main(["--help"])
            except SystemExit as done:
                assert done.code == 0
        print({TORCH_MODULES})
    """, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


def test_validate_zero_cost_recipe_imports_no_torch(tmp_path):
    proc = _run(f"""
        import contextlib, io, sys
        from raynas.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["validate", {str(REPO / "recipes" / "nb201-zero-cost.yaml")!r}]) == 0
        print({TORCH_MODULES})
    """, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


def test_a_deprecated_path_is_one_warning_line(tmp_path):
    recipe = yaml.safe_load((REPO / "recipes" / "mbv3-digits-rea.yaml").read_text())
    pool = recipe["evaluator"].pop("pool")
    recipe["evaluator"].update(replicas=pool["replicas"], train_num_cpus=pool["prepare_num_cpus"])
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(recipe))
    proc = subprocess.run([sys.executable, "-m", "raynas", "validate", str(path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr.splitlines() == [
        "raynas: warning: evaluator.replicas is deprecated: use evaluator.pool.replicas",
        "raynas: warning: evaluator.train_num_cpus is deprecated: use evaluator.pool.prepare_num_cpus"]
    resolved = yaml.safe_load(proc.stdout)["evaluator"]
    assert "replicas" not in resolved and resolved["pool"]["replicas"] == pool["replicas"]
    assert resolved["pool"]["prepare_num_cpus"] == pool["prepare_num_cpus"]
