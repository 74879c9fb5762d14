"""``raynas compare``, ``export``, ``ui`` (argument errors) and ``resume-tracking`` on real sqlite stores,
run in-process through ``raynas.cli.main``."""
from __future__ import annotations

import json
import socket

import numpy as np
import pytest

from raynas.cli import main
from raynas.evaluators import EVALUATORS
from raynas.evaluators.tabular import TabularNB201
from raynas.recipes.schema import TrackingSpec
from raynas.runtime import build_search
from raynas.tracking import MlflowTracker
from tests.runtime.helpers import Collector, recipe
from tests.tracking.browser import ink_stats
from tests.tracking.stores import fresh_sqlite_uri

EXPORTABLE = "tabular-exportable"
IN_FEATURES = 8


class ExportableTabular(TabularNB201):
    """A tabular evaluator with the ``export_model`` hook, following its documented contract."""

    def export_model(self, arch, out_dir: str) -> str:
        import mlflow.pytorch
        import torch
        from mlflow.models import infer_signature

        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(IN_FEATURES, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)).eval()
        x = torch.ones(3, IN_FEATURES)
        mlflow.pytorch.save_model(
            model, out_dir, signature=infer_signature(x.numpy(), model(x).detach().numpy()),
            input_example=x.numpy(), pip_requirements=["torch"],
            metadata={"arch": self.space.to_str(arch), "canonical": self.space.canonical(arch),
                      "weights_version": "none", "evaluator": self.id})
        return out_dir


if EXPORTABLE not in EVALUATORS:
    EVALUATORS.register(EXPORTABLE)(ExportableTabular)


@pytest.fixture(scope="module")
def store(nb201_path, tmp_path_factory):
    """A store with two seeds of one experiment and one run of an exportable evaluator."""
    tmp = tmp_path_factory.mktemp("cmds")
    uri = fresh_sqlite_uri(tmp)
    runs = {}
    for name, overrides in (("seed0", ["seed=0"]), ("seed1", ["seed=1"]),
                            ("exportable", ["name=exportable", f"evaluator.name={EXPORTABLE}"])):
        tracker, col = MlflowTracker(TrackingSpec(uri, spool_dir=str(tmp / "spool"), plots=False)), Collector()
        build_search(recipe(nb201_path, "budget.sim_seconds=4000", *overrides), [tracker, col]).run()
        runs[name] = (tracker.run_id, col.summary)
    return uri, runs


def test_compare_plots_every_run_of_an_experiment(store, tmp_path, capsys):
    uri, _ = store
    out = tmp_path / "cmp.png"
    assert main(["compare", "runtime-test", "--tracking-uri", uri, "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    colors, ink = ink_stats(out)
    assert colors > 50 and ink > 0.03


def test_compare_names_the_known_experiments_when_one_is_missing(store, capsys):
    assert main(["compare", "nope", "--tracking-uri", store[0]]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("raynas: error: experiment 'nope' not found") and "runtime-test" in err
    assert "\n" not in err


def test_export_writes_the_best_arch(store, tmp_path, capsys):
    uri, runs = store
    run_id, summary = runs["seed0"]
    assert main(["export", run_id, "--out", str(tmp_path), "--tracking-uri", uri]) == 0
    best = json.loads((tmp_path / "best_arch.json").read_text())
    assert best["arch"] == summary.best.arch and best["canonical"] == summary.best.canonical
    assert best["metrics"]["valid_acc"] == summary.best.metrics["valid_acc"]
    assert best["metrics"]["test_acc"] == summary.best.hidden["test_acc"]
    assert (best["recipe"], best["run_id"], best["candidate_index"]) == ("runtime-test", run_id, summary.best.index)
    assert set(best["lineage"]) == {"parent", "variation", "generation", "weights_version", "evaluator"}
    assert "has no export_model hook" in capsys.readouterr().out
    assert not (tmp_path / "model").exists()


def test_export_calls_the_evaluators_model_hook(store, tmp_path):
    import mlflow.pytorch
    import torch
    from mlflow.models import Model

    uri, runs = store
    run_id, summary = runs["exportable"]
    assert main(["export", run_id, "--out", str(tmp_path), "--tracking-uri", uri]) == 0
    model_dir = tmp_path / "model"
    meta = Model.load(str(model_dir))
    assert meta.metadata["arch"] == summary.best.arch and meta.signature is not None
    x = torch.ones(3, IN_FEATURES)
    y = mlflow.pytorch.load_model(str(model_dir))(x).detach().numpy()
    assert y.shape == (3, 2) and np.isfinite(y).all()


def test_export_of_an_unknown_run_is_a_one_line_error(store, tmp_path, capsys):
    assert main(["export", "0" * 32, "--out", str(tmp_path), "--tracking-uri", store[0]]) == 2
    assert capsys.readouterr().err.startswith(f"raynas: error: run {'0' * 32} not found")


def test_ui_refuses_what_it_cannot_serve(tmp_path, capsys):
    assert main(["ui", "--tracking-uri", "http://127.0.0.1:5000"]) == 2
    assert "serves a local sqlite store" in capsys.readouterr().err
    assert main(["ui", "--tracking-uri", f"sqlite:///{tmp_path / 'none.db'}"]) == 2
    assert "no MLflow store at" in capsys.readouterr().err
    uri = fresh_sqlite_uri(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["ui", "--tracking-uri", uri, "--port", str(port)]) == 2
    assert f"port {port} on 127.0.0.1 is in use" in capsys.readouterr().err


def test_resume_tracking_with_nothing_to_replay(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["resume-tracking"]) == 0
    assert "nothing to replay" in capsys.readouterr().out
    assert main(["resume-tracking", "missing.jsonl"]) == 2
