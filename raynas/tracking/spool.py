"""What a tracker owes MLflow (``TrackingState``) and its write-ahead log on disk (``Spool``).

The spool is a JSON-lines file, ``<spool_dir>/<spool_id>.jsonl``, one event a line:
  * ``{"kind": "spec", …}``       first line: everything needed to create the run (``RunSpec``);
  * ``{"kind": "run", "run_id"}`` once the server has created the run;
  * ``{"kind": "candidate", "record": {…}}`` every candidate, in index order;
  * ``{"kind": "failed", "failed": {…}}`` every failed candidate (``FailedCandidate``);
  * ``{"kind": "end", …}``        the search's summary (``RunEnd``).
Every event is appended and flushed to the operating system as it happens — a candidate before the
search counts it as done — so a dead server or a killed process (even ``SIGKILL``) loses nothing;
``sync()`` (called by the tracker once per batch) also fsyncs, so a machine crash loses at most the
candidates since the last batch. ``raynas resume-tracking`` replays a spool (``load_state``). The
tracker deletes its spool once the server holds everything. A torn last line (a crash mid-write) is
ignored on load.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from raynas.metrics import MAX, VALID_ACC
from raynas.runtime.records import CandidateRecord, FailedCandidate

SPEC, RUN, CANDIDATE, FAILURE, END = "spec", "run", "candidate", "failed", "end"
SPOOL_SUFFIX = ".jsonl"


@dataclasses.dataclass
class RunSpec:
    """What creates the parent run of a search (all of it known before the first candidate)."""

    spool_id: str
    tracking_uri: str
    experiment: str
    artifact_location: str | None
    run_name: str
    tags: dict[str, str]
    params: dict[str, str]
    recipe_yaml: str
    metric: str = VALID_ACC
    mode: str = MAX
    run_per_candidate: bool = False
    plots: bool = True


@dataclasses.dataclass
class RunEnd:
    """How a search ended: summary metrics, extra tags (best arch, cluster) and the run status."""

    metrics: dict[str, float]
    tags: dict[str, str]
    status: str
    training: dict[str, Any] | None = None  # Evaluator.training_record(): e.g. a few-shot split tree


@dataclasses.dataclass
class TrackingState:
    """Everything the MLflow run must end up holding. ``best_so_far[i]`` is the best ``spec.metric``
    among candidates ``0..i`` (``None`` until one has it); ``failures`` the failed candidates."""

    spec: RunSpec
    run_id: str | None = None
    records: list[CandidateRecord] = dataclasses.field(default_factory=list)
    best_so_far: list[float | None] = dataclasses.field(default_factory=list)
    end: RunEnd | None = None
    failures: list[FailedCandidate] = dataclasses.field(default_factory=list)

    def add(self, record: CandidateRecord) -> None:
        if record.index != len(self.records):
            raise ValueError(f"candidate {record.index} arrived out of order (expected {len(self.records)})")
        best = self.best_so_far[-1] if self.best_so_far else None
        score = record.metrics.get(self.spec.metric)
        if score is not None and (best is None or (score > best if self.spec.mode == MAX else score < best)):
            best = score
        self.records.append(record)
        self.best_so_far.append(best)


def fields_of(obj: Any) -> dict[str, Any]:
    """A flat dataclass's fields as a dict, what ``json`` writes of ``dataclasses.asdict(obj)`` (its
    dicts are written as they are, not deep-copied: ``asdict`` was most of a candidate's spooling time)."""
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


class Spool:
    """Append-only event log of one search's tracking (see the module docstring). The file is opened
    on first write and kept open; a pickled spool carries only its path."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._file: Any = None

    @classmethod
    def create(cls, spool_dir: str | Path, spec: RunSpec) -> "Spool":
        path = Path(spool_dir) / f"{spec.spool_id}{SPOOL_SUFFIX}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("", encoding="utf-8")
        spool = cls(path)
        spool._write({"kind": SPEC, **dataclasses.asdict(spec)}, sync=True)
        return spool

    def run(self, run_id: str) -> None:
        self._write({"kind": RUN, "run_id": run_id}, sync=True)

    def candidate(self, record: CandidateRecord) -> None:
        """Appended and flushed to the OS now: it survives the process; ``sync()`` survives the machine."""
        self._write({"kind": CANDIDATE, "record": fields_of(record)})

    def failure(self, failed: FailedCandidate) -> None:
        self._write({"kind": FAILURE, "failed": dataclasses.asdict(failed)})

    def end(self, end: RunEnd) -> None:
        self._write({"kind": END, **dataclasses.asdict(end)}, sync=True)

    def sync(self) -> None:
        """fsync what was written (once per batch of candidates)."""
        if self._file is not None:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)

    def _write(self, event: dict[str, Any], sync: bool = False) -> None:
        if self._file is None:
            self._file = open(self.path, "a", encoding="utf-8")
        self._file.write(json.dumps(event) + "\n")
        self._file.flush()
        if sync:
            self.sync()

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "_file": None}


def load_state(path: str | Path) -> TrackingState:
    """Rebuild the ``TrackingState`` a spool file describes (``ValueError`` if it has no spec line)."""
    state: TrackingState | None = None
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line
        kind = event.pop("kind", None)
        if kind == SPEC:
            state = TrackingState(RunSpec(**event))
        elif state is None:
            raise ValueError(f"{path}: not a raynas spool (no spec line first)")
        elif kind == RUN:
            state.run_id = event["run_id"]
        elif kind == CANDIDATE:
            state.add(CandidateRecord(**event["record"]))
        elif kind == FAILURE:
            state.failures.append(FailedCandidate(**event["failed"]))
        elif kind == END:
            state.end = RunEnd(**event)
    if state is None:
        raise ValueError(f"{path}: not a raynas spool (empty)")
    return state


def spool_files(spool_dir: str | Path) -> list[Path]:
    """The spools left in a directory, oldest first."""
    d = Path(spool_dir)
    return sorted(d.glob(f"*{SPOOL_SUFFIX}"), key=lambda p: p.stat().st_mtime) if d.is_dir() else []


def run_of(path: str | Path) -> str | None:
    """The MLflow run id a spool recorded (its ``run`` event), reading no further than that event."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                return None
            if event.get("kind") == RUN:
                return event["run_id"]
    return None


def find_spool(spool_dir: str | Path, run_id: str) -> Path | None:
    """The spool in ``spool_dir`` of the MLflow run ``run_id``, or None."""
    return next((p for p in spool_files(spool_dir) if run_of(p) == run_id), None)
