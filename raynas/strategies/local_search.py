"""Local search (White, Nolen, Savani, 2021: "Local search is state of the art for NAS benchmarks").

The search runs in *rounds*. A round starts with uniform samples; once ``init_samples`` of their
results are in (``restart_samples`` in later rounds) the best of them becomes the **centre**. The
centre's neighbours (``space.neighbours``: every one-edge change on NB201) are proposed in an order
shuffled with ``self.rng``; the first completed neighbour scoring better than the centre becomes the
new centre (first improvement) and its neighbours are shuffled anew. When every neighbour of the
centre was tried and none is still pending, the centre is a local optimum and a new round starts.

Duplicates and constraints (``Strategy.acceptable``): a neighbour whose dedup key was already proposed,
or that breaks a recipe constraint, is not proposed; if an equivalent arch was already *evaluated* and
beat the centre, the search moves there without an evaluation (a free move).

Asynchronous proposals (Ray Tune asks for several suggestions before results arrive): with untried
neighbours left, the next one is proposed; moves are decided as results come in, in completion order
(a late neighbour of an earlier centre that beats the current centre moves it too). When all
neighbours are out but some are pending, the proposal is a uniform sample, kept for the next round.
Everything (centre, the shuffled queue, samples kept for the next round) is in the saved state.
Defaults tuned on NB201 seeds 1000..1199 (``benchmarks/nb201_tune.py``, docs/BENCHMARKS.md).
"""
from __future__ import annotations

import dataclasses
from typing import Any

from raynas.space.base import Arch
from raynas.strategies.base import DEDUP_FUNCTION, STRATEGIES, DedupMode, Observation, Proposal, Strategy
from raynas.typed import bounded


@STRATEGIES.register("local_search")
class LocalSearch(Strategy):
    """First-improvement hill climbing over ``space.neighbours`` with random restarts."""

    @dataclasses.dataclass
    class Config:
        init_samples: int = bounded(5, gt=0)  # uniform samples whose best is the first centre
        restart_samples: int = bounded(10, gt=0)  # the same at each restart from a local optimum
        dedup: DedupMode = DEDUP_FUNCTION
        max_retries: int = bounded(50, ge=0)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.center: Observation | None = None
        self.queue: list[Arch] = []  # untried neighbours of the centre, in proposal order
        self.samples: list[Observation] = []  # uniform samples' results not yet used by a round
        self.needed = self.config.init_samples  # samples the current round waits for
        self.known: dict[Any, Observation] = {}  # best result per dedup key (for free moves)
        self.num_moves = self.num_restarts = 0

    # --- proposals ---------------------------------------------------------------------------
    def _propose(self) -> Proposal:
        for _ in range(self.config.max_retries + 1):
            if self.center is None:
                break
            proposal = self._next_neighbour()
            if proposal is not None:
                return proposal
            if self._centre_pending():
                break
            self._restart()
        return self.unseen(self.random_proposal)

    def _next_neighbour(self) -> Proposal | None:
        """Pop untried neighbours of the centre until one is acceptable (free moves on the way)."""
        while self.center is not None and self.queue:
            arch = self.queue.pop(0)
            if self.acceptable(arch):
                parent = self.center.proposal
                return Proposal(arch, parent=parent.arch, variation=self.space.describe_mutation(parent.arch, arch),
                                generation=parent.generation + 1)
            known = self.known.get(self.dedup_key(arch))
            if known is not None and known.score > self.center.score:
                self._move(known)
        return None

    def _centre_pending(self) -> bool:
        arch = self.center.proposal.arch if self.center is not None else None
        return any(p.parent == arch for p in self.pending.values())

    def _move(self, obs: Observation, improvement: bool = True) -> None:
        """Make ``obs`` the centre and shuffle its neighbours into the queue."""
        self.center = obs
        near = self.space.neighbours(obs.proposal.arch)
        self.queue = [near[int(i)] for i in self.rng.permutation(len(near))]
        self.num_moves += improvement

    def _restart(self) -> None:
        self.center, self.queue = None, []
        self.needed = self.config.restart_samples
        self.num_restarts += 1
        self._maybe_start_round()

    def _maybe_start_round(self) -> None:
        if self.center is None and len(self.samples) >= self.needed:
            best = max(self.samples, key=lambda o: o.score)
            self.samples = []
            self._move(best, improvement=False)

    # --- results -----------------------------------------------------------------------------
    def _observe(self, obs: Observation) -> None:
        key = self.dedup_key(obs.proposal.arch)
        if key not in self.known or obs.score > self.known[key].score:
            self.known[key] = obs
        if obs.proposal.parent is None:
            self.samples.append(obs)
            self._maybe_start_round()
        elif self.center is not None and obs.score > self.center.score:
            self._move(obs)

    def report(self) -> dict[str, float]:
        return {**super().report(), "moves": float(self.num_moves), "restarts": float(self.num_restarts)}

    # --- state -------------------------------------------------------------------------------
    def _state(self) -> dict:
        return {"center": self.center, "queue": list(self.queue), "samples": list(self.samples),
                "needed": self.needed, "known": dict(self.known), "moves": self.num_moves,
                "restarts": self.num_restarts}

    def _load_state(self, state: dict) -> None:
        self.center, self.queue, self.samples = state["center"], list(state["queue"]), list(state["samples"])
        self.needed, self.known = state["needed"], dict(state["known"])
        self.num_moves, self.num_restarts = state["moves"], state["restarts"]
