"""Export the best architecture of a search run (``raynas export``), and the evaluator export hook.

``export_best`` reads the run's ``candidates.parquet``, picks the best candidate by the run's metric
and mode (tags ``raynas.metric``/``raynas.mode``; ties: the earliest), and writes ``best_arch.json``.
When the run's evaluator class defines ``export_model`` (``ModelExporter``), it builds that evaluator
from the run's ``recipe.yaml`` and asks it for a deployable model under ``<out>/model``.
"""
from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from raynas.errors import RaynasError
from raynas.metrics import COST_S, VALID_ACC
from raynas.tracking import tables
from raynas.tracking.sync import CANDIDATE_PREFIX, METRIC_TAG, MODE_TAG, NOT_FOUND, RECIPE_ARTIFACT

BEST_ARCH_JSON = "best_arch.json"
MODEL_DIR = "model"
EXPORT_HOOK = "export_model"
RECORD_METRICS = (COST_S, "sim_end_s")  # CandidateRecord fields logged as metrics


@runtime_checkable
class ModelExporter(Protocol):
    """Optional evaluator hook: turn an architecture into a deployable MLflow PyTorch model.

    Contract for ``export_model(arch, out_dir) -> str`` (implemented by weight-sharing evaluators,
    e.g. supernet ones; a tabular evaluator has nothing to export and does not define it):
      * ``self`` is built exactly as during the search, from the run's resolved ``recipe.yaml``
        (same space and evaluator config: checkpoint paths, weights version …), in the calling
        process, without Ray. Load the weights the search used (e.g. the supernet checkpoint whose
        version is the candidates' ``weights_version``).
      * ``arch`` is ``space.from_str(<best arch string>)``; ``out_dir`` does not exist yet (its parent
        does); write nothing outside it.
      * Build the standalone ``torch.nn.Module`` of ``arch`` (weights sliced from the supernet, BN
        statistics recalibrated if the evaluator does so for scoring), in ``eval()`` mode on CPU, and
        save it with ``mlflow.pytorch.save_model(model, out_dir, signature=…, input_example=…,
        metadata={"arch": <arch string>, "canonical": <space.canonical(arch)>,
        "weights_version": <version>, "evaluator": self.id})``, the signature from
        ``mlflow.models.infer_signature(x.numpy(), model(x).detach().numpy())`` on a real input batch
        ``x`` of the evaluator's input shape. ``mlflow.pytorch.load_model(out_dir)`` must give back a
        model whose output on ``x`` equals the exported one's.
      * Return ``out_dir``. Raise ``RaynasError`` (one line) for user-fixable problems, e.g. a missing
        checkpoint; anything else is a bug.
    """

    def export_model(self, arch: Any, out_dir: str) -> str: ...


@dataclasses.dataclass
class Exported:
    best: dict[str, Any]  # what best_arch.json holds
    json_path: Path
    model_path: Path | None  # None: the evaluator has no export hook
    note: str = ""  # why no model was exported


def export_best(client, run_id: str, out_dir: str | Path, tracking_uri: str = "") -> Exported:
    """Write ``<out_dir>/best_arch.json`` (and ``<out_dir>/model`` via the hook); see the module doc."""
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException as err:
        if err.error_code == NOT_FOUND:
            raise RaynasError(f"run {run_id} not found at {tracking_uri or 'the tracking store'}") from None
        raise
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    best = _best_row(client, run)
    json_path = out / BEST_ARCH_JSON
    json_path.write_text(json.dumps(best, indent=2, default=str) + "\n")
    model_path, note = _export_model(client, run_id, best["arch"], out / MODEL_DIR)
    return Exported(best, json_path, model_path, note)


def _best_row(client, run) -> dict[str, Any]:
    import pyarrow.parquet as pq

    run_id = run.info.run_id
    metric = run.data.tags.get(METRIC_TAG, VALID_ACC)
    mode = run.data.tags.get(MODE_TAG, "max")
    if tables.PARQUET_TABLE not in [f.path for f in client.list_artifacts(run_id)]:
        raise RaynasError(f"run {run_id} has no {tables.PARQUET_TABLE} yet (is the search still running?)")
    with tempfile.TemporaryDirectory() as tmp:
        rows = pq.read_table(client.download_artifacts(run_id, tables.PARQUET_TABLE, tmp)).to_pylist()
    scored = [r for r in rows if r.get(metric) is not None]
    if not scored:
        raise RaynasError(f"run {run_id}: no candidate has the metric {metric!r}")
    sign = -1.0 if mode == "min" else 1.0
    row = max(scored, key=lambda r: (sign * r[metric], -r["index"]))
    names = {k[len(CANDIDATE_PREFIX):] for k in run.data.metrics if k.startswith(CANDIDATE_PREFIX)}
    metrics = {k: row[k] for k in sorted(names) if row.get(k) is not None}
    metrics.update({k: row[k] for k in RECORD_METRICS})
    return {"arch": row["arch"], "canonical": row["canonical"], "metric": metric, "mode": mode,
            "metrics": metrics, "candidate_index": row["index"],
            "lineage": {k: row.get(k) for k in tables.LINEAGE},
            "recipe": run.data.tags.get("raynas.recipe"), "run_id": run_id,
            "experiment_id": run.info.experiment_id}


def _export_model(client, run_id: str, arch: str, model_dir: Path) -> tuple[Path | None, str]:
    """Run the evaluator's ``export_model`` hook if its class has one."""
    import yaml

    from raynas.recipes import parse_recipe

    with tempfile.TemporaryDirectory() as tmp:
        text = Path(client.download_artifacts(run_id, RECIPE_ARTIFACT, tmp)).read_text()
    try:
        recipe = parse_recipe(yaml.safe_load(text))
    except RaynasError as err:
        return None, f"no model exported: the run's recipe does not load here ({err})"
    if not callable(getattr(recipe.evaluator.impl, EXPORT_HOOK, None)):
        return None, f"no model exported: evaluator {recipe.evaluator.name!r} has no {EXPORT_HOOK} hook"
    if model_dir.exists():
        raise RaynasError(f"{model_dir} already exists; export to an empty --out directory")
    space = recipe.space.impl(recipe.space.config)
    evaluator = recipe.evaluator.impl(space, recipe.evaluator.config, storage_path=recipe.backend.storage_path)
    return Path(evaluator.export_model(space.from_str(arch), str(model_dir))), ""
