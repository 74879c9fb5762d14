"""Console progress: a live status line (candidates, best so far, clock and wall time) on stderr."""
from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from raynas.metrics import MAX, MIN, TEST_ACC, VALID_ACC
from raynas.runtime.records import INFO_METRIC, INFO_MODE, CandidateRecord, FailedCandidate, SearchSummary


class ConsoleProgress:
    """Redraws one line at most ``max_hz`` times a second on a terminal; elsewhere prints a line every
    ``every_s`` seconds, so CI logs show progress without flooding."""

    def __init__(self, metric: str = VALID_ACC, budget_s: float | None = None,
                 max_candidates: int | None = None, stream: TextIO | None = None,
                 max_hz: float = 10.0, every_s: float = 5.0) -> None:
        self.metric, self.mode, self.budget_s, self.max_candidates = metric, MAX, budget_s, max_candidates
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.min_gap = 1.0 / max_hz if self.live else every_s
        self._last = 0.0
        self._t0 = time.perf_counter()
        self._n = 0
        self._failed = 0
        self._best: CandidateRecord | None = None
        self._clock = 0.0

    def on_start(self, info: dict[str, Any]) -> None:
        """``info``: ``metric``/``mode`` of the search, when it names them."""
        self._t0 = time.perf_counter()
        self.metric, self.mode = info.get(INFO_METRIC, self.metric), info.get(INFO_MODE, self.mode)

    def on_candidate(self, record: CandidateRecord) -> None:
        self._n += 1
        self._clock = max(self._clock, record.sim_end_s)
        score = record.metrics.get(self.metric)
        if score is not None and (self._best is None or self._beats(score, self._best.metrics[self.metric])):
            self._best = record
        now = time.perf_counter()
        if now - self._last >= self.min_gap:
            self._last = now
            self._draw()

    def on_failure(self, failed: FailedCandidate) -> None:
        self._failed += 1

    def _beats(self, score: float, best: float) -> bool:
        return score < best if self.mode == MIN else score > best

    def on_end(self, summary: SearchSummary) -> None:
        self._draw()
        if self.live:
            self.stream.write("\n")
        self.stream.flush()

    def line(self) -> str:
        cands = f"{self._n}" + (f"/{self.max_candidates}" if self.max_candidates else "")
        parts = [f"candidates {cands}" + (f" ({self._failed} failed)" if self._failed else "")]
        if self._best is not None:
            best = f"best {self.metric} {self._best.metrics[self.metric]:.2f}"
            if TEST_ACC in self._best.hidden:
                best += f" (test {self._best.hidden[TEST_ACC]:.2f})"
            parts.append(best)
        clock = f"clock {self._clock:,.0f}" + (f"/{self.budget_s:,.0f}" if self.budget_s else "") + " s"
        parts += [clock, f"wall {time.perf_counter() - self._t0:.1f} s"]
        return "[raynas] " + " | ".join(parts)

    def _draw(self) -> None:
        if self.live:
            self.stream.write("\r\033[K" + self.line())
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()
