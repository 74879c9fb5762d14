"""How many candidates the next trial evaluates (``backend.candidates_per_trial``).

A Tune trial costs the driver a fixed ~20–40 ms (a ``Trial`` object, a placement group, actor reset and
run calls, result processing, its share of the experiment snapshot; see docs/SCALING.md), whatever it
evaluates. ``Batching`` amortises that cost:

* a number: every trial gets that many candidates (fewer at the end of the budget);
* ``auto`` (the default): the first trials get one candidate each; from the first result on, each
  trial gets enough candidates to run for about ``TARGET_TRIAL_S`` of evaluation wall time (measured:
  the mean wall seconds per candidate so far, as the trials report them), more with many workers
  (the driver loop is one thread: ``workers`` trials every ``target`` seconds must stay well inside
  what it can do), at most ``MAX_AUTO``. Near the end of the budget batches shrink (guided
  self-scheduling: at most the candidates left / (``TAIL_SHARE`` x workers)), so that the workers finish
  together instead of one of them running a long last batch alone.

Strategies stay fed: a batch is ``candidates`` proposals made back to back, each from the strategy's
state at that moment (a steady-state strategy such as REA or NSGA-II draws each child from the current
population, as if the batch's candidates ran on as many workers); the results come back one by one, in
the batch's order, when the trial ends. A strategy that cannot propose more without results (it
returns ``None``) just makes the batch shorter: a batch never waits on results it depends on.
"""
from __future__ import annotations

import dataclasses
import math

from raynas.recipes.schema import AUTO

TARGET_TRIAL_S = 2.0  # evaluation wall seconds per trial: Tune's ~30 ms per trial is then ~1.5 %
DRIVER_S_PER_TRIAL = 0.04  # driver time per trial (measured, benchmarks/driver_profile.py), ...
DRIVER_SHARE = 0.25  # ... of which ``workers`` trials per trial duration may use this share
MAX_AUTO = 64  # candidates per trial at most under auto (0-s evaluations would ask for any number)
TAIL_SHARE = 2  # at the end: at most the candidates left / (TAIL_SHARE x workers) per trial


@dataclasses.dataclass
class Batching:
    """Candidates per trial: ``fixed`` (a number) or, with ``fixed=None``, auto (module docstring)."""

    fixed: int | None = None
    measured: int = 0  # candidates whose evaluation wall time was reported
    wall_s: float = 0.0  # their total evaluation wall time
    cost_s: float = 0.0  # their total cost on the search clock (to estimate what a clock budget leaves)

    @classmethod
    def of(cls, candidates_per_trial: int | str) -> "Batching":
        """From ``backend.candidates_per_trial`` (a number or ``"auto"``)."""
        return cls(None if candidates_per_trial == AUTO else int(candidates_per_trial))

    def observe(self, candidates: int, wall_s: float | None, cost_s: float) -> None:
        """A trial of ``candidates`` took ``wall_s`` evaluating them (``None``: not reported) and
        ``cost_s`` on the search clock."""
        if wall_s is None:
            return
        self.measured += candidates
        self.wall_s += wall_s
        self.cost_s += cost_s

    def target_s(self, workers: int) -> float:
        """Evaluation wall seconds a trial should run for with ``workers`` workers."""
        return max(TARGET_TRIAL_S, workers * DRIVER_S_PER_TRIAL / DRIVER_SHARE)

    def size(self, workers: int, left: int | None = None, clock_left_s: float | None = None) -> int:
        """Candidates for the next trial; ``left``: candidates the budget still allows (``None``: no
        such limit), ``clock_left_s``: search-clock seconds left (``None``: no clock budget)."""
        if self.fixed is not None:
            return self.fixed if left is None else max(1, min(self.fixed, left))
        if not self.measured:
            return 1
        left = self._left(workers, left, clock_left_s)
        per = self.wall_s / self.measured
        want = MAX_AUTO if per <= 0 else min(MAX_AUTO, math.ceil(self.target_s(workers) / per))
        if left is not None:
            want = min(want, math.ceil(left / (TAIL_SHARE * workers)))
        return max(1, want)

    def _left(self, workers: int, left: int | None, clock_left_s: float | None) -> int | None:
        """Candidates left: the smaller of ``left`` and what the clock budget holds at the mean cost."""
        if clock_left_s is None or self.cost_s <= 0:
            return left
        by_clock = math.ceil(max(0.0, clock_left_s) * workers * self.measured / self.cost_s)
        return by_clock if left is None else min(left, by_clock)
