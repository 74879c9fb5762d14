"""The candidates table: one row per candidate, the same columns in parquet and in the MLflow table.

Columns, in reading order: ``index``, ``arch``, the visible and hidden metrics by name, the lineage
columns ``LINEAGE`` (always present, ``None`` when unknown: ``weights_version`` comes from the
record's ``tags``), every other ``CandidateRecord`` field (canonical, clock times, worker …), then
any other record tags. Metric names must not collide with field names (the records' contract).
Every row has a ``status``: ``finished``, or ``failed`` for a failed candidate (``FailedCandidate``:
no metrics and no index, its ``error``'s first line instead).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

from raynas.metrics import WEIGHTS_VERSION
from raynas.runtime.records import CandidateRecord, FailedCandidate

LINEAGE = ("parent", "variation", "generation", WEIGHTS_VERSION, "evaluator")
PARQUET_TABLE = "candidates.parquet"
MLFLOW_TABLE = "candidates.json"  # logged with MlflowClient.log_table: the UI renders it as a table
FIRST = ("index", "arch")  # then metrics, then LINEAGE, then the other record fields, then tags
STATUS, ERROR = "status", "error"
FINISHED_ROW, FAILED_ROW = "finished", "failed"  # the values of the status column
_FIELDS = [f.name for f in dataclasses.fields(CandidateRecord)
           if f.name not in ("metrics", "hidden", "tags", *FIRST, *LINEAGE)]


def row(record: CandidateRecord) -> dict[str, Any]:
    """One flat row, columns in reading order: index, arch, metrics, lineage, the rest."""
    out = {name: getattr(record, name) for name in FIRST}
    out.update(record.metrics)
    out.update(record.hidden)
    for name in LINEAGE:
        out[name] = record.tags.get(name) if name == WEIGHTS_VERSION else getattr(record, name)
    out.update({name: getattr(record, name) for name in _FIELDS})
    out.update({k: v for k, v in record.tags.items() if k != WEIGHTS_VERSION})
    out[STATUS] = FINISHED_ROW
    return out


def failed_row(failed: FailedCandidate) -> dict[str, Any]:
    """The row of a failed candidate: no index or metrics; its lineage, ``status`` and ``error``."""
    out: dict[str, Any] = {"index": None, "arch": failed.arch}
    out.update({name: getattr(failed, name, None) for name in LINEAGE})
    out.update({"trial_id": failed.trial_id, "candidate_id": failed.candidate_id, "wall_s": failed.wall_s,
                STATUS: FAILED_ROW, ERROR: failed.error})
    return out


def dataframe(records: Sequence[CandidateRecord], failures: Sequence[FailedCandidate] = ()):
    """A pandas DataFrame over the union of all rows' columns (rows may differ in tags/metrics):
    the candidates in index order, then the failed ones."""
    import pandas as pd

    return pd.DataFrame([*(row(r) for r in records), *(failed_row(f) for f in failures)])


def write_parquet(records: Sequence[CandidateRecord], path: str | Path,
                  failures: Sequence[FailedCandidate] = ()) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pandas(dataframe(records, failures), preserve_index=False), str(path))
    return Path(path)
