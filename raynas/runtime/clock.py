"""The search clock: N virtual workers, each with the time at which it next becomes free.

Both backends account time the same way: a trial is placed on the idle virtual worker that became free
earliest, and its candidates run back to back from that worker's free time (``cost_s`` each). In the
``simulate`` backend completions are also *delivered* in clock order; in the ``tune`` backend they are
delivered in real completion order. With one worker the two are identical.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class VirtualWorkers:
    num_workers: int
    free_at: list[float] = dataclasses.field(default_factory=list)
    busy: dict[str, int] = dataclasses.field(default_factory=dict)  # trial id -> worker

    def __post_init__(self) -> None:
        if not self.free_at:
            self.free_at = [0.0] * self.num_workers

    def idle(self) -> list[int]:
        taken = set(self.busy.values())
        return [w for w in range(self.num_workers) if w not in taken]

    def next_start(self) -> float | None:
        """Clock time at which the next trial would start, or ``None`` if every worker is busy."""
        idle = self.idle()
        return min(self.free_at[w] for w in idle) if idle else None

    def acquire(self, trial_id: str) -> int | None:
        idle = self.idle()
        if not idle:
            return None
        worker = min(idle, key=lambda w: (self.free_at[w], w))
        self.busy[trial_id] = worker
        return worker

    def start_of(self, trial_id: str) -> float:
        return self.free_at[self.busy[trial_id]]

    def release(self, trial_id: str, end: float | None = None) -> int:
        worker = self.busy.pop(trial_id)
        if end is not None:
            self.free_at[worker] = end
        return worker

    def now(self) -> float:
        """The latest time any worker has reached (the clock as a user sees it)."""
        return max(self.free_at)
