"""Local search: best-of-samples start, one-edge neighbours, first improvement, restarts, async proposals."""
from __future__ import annotations

from raynas.space.nb201 import NB201Space
from raynas.strategies.base import Observation, Proposal
from raynas.strategies.local_search import LocalSearch

SPACE = NB201Space()
TARGET = (3, 3, 2, 3, 1, 3)


def closeness(arch) -> float:
    """A synthetic objective: edges agreeing with TARGET (one peak, no other local optimum)."""
    return float(sum(a == t for a, t in zip(arch, TARGET)))


def step(ls: LocalSearch, tid: str, score=closeness) -> dict:
    cfg = ls.suggest(tid)
    ls.on_trial_complete(tid, {"valid_acc": score(SPACE.from_str(cfg["arch"]))})
    return cfg


def make(**kw) -> LocalSearch:
    return LocalSearch(SPACE, LocalSearch.Config(**kw), seed=0)


def test_starts_from_the_best_sample_then_walks_its_neighbours():
    ls = make(init_samples=5)
    first = [step(ls, f"t{i}") for i in range(5)]
    assert all(c["parent"] is None and c["variation"] == "random" for c in first)
    best = max((SPACE.from_str(c["arch"]) for c in first), key=closeness)
    nxt = ls.suggest("n")
    assert SPACE.from_str(nxt["parent"]) == best
    assert SPACE.from_str(nxt["arch"]) in SPACE.neighbours(best)


def test_moves_to_the_first_improvement_and_reaches_the_single_peak():
    ls = make(init_samples=1, dedup="arch")
    for i in range(200):
        step(ls, f"t{i}")
        if ls.best().proposal.arch == TARGET:
            break
    assert ls.best().proposal.arch == TARGET and ls.report()["moves"] >= 1
    # every move was an improvement: the centre's score never decreased along the walk
    assert ls.center.score == max(o.score for o in ls.history)


def test_restarts_at_a_local_optimum():
    ls = make(init_samples=1, restart_samples=2, dedup="arch")
    flat = [step(ls, f"t{i}", score=lambda a: 0.0) for i in range(1 + 24 + 2)]
    assert flat[0]["variation"] == "random"
    assert all(c["parent"] == flat[0]["arch"] for c in flat[1:25])  # all 24 neighbours, none better
    assert all(c["variation"] == "random" for c in flat[25:]) and ls.report()["restarts"] == 1


def test_concurrent_proposals_are_distinct_untried_neighbours():
    ls = make(init_samples=1, dedup="function")
    step(ls, "s")
    centre = ls.center.proposal.arch
    cfgs = [ls.suggest(f"p{i}") for i in range(4)]
    archs = [SPACE.from_str(c["arch"]) for c in cfgs]
    assert len({SPACE.canonical(a) for a in archs}) == 4 and all(a in SPACE.neighbours(centre) for a in archs)


def test_an_evaluated_neighbour_that_beats_the_centre_is_a_free_move():
    ls = make(init_samples=1, dedup="function")
    low, high = (0, 0, 0, 0, 0, 1), (0, 0, 0, 0, 3, 1)  # neighbours
    ls.center, ls.queue = Observation(Proposal(low), 1.0, {}), [high]
    ls.known[ls.dedup_key(high)] = Observation(Proposal(high), 2.0, {})
    ls.seen.update({ls.dedup_key(low), ls.dedup_key(high)})
    cfg = ls.suggest("next")
    assert SPACE.from_str(cfg["parent"]) == high and ls.report()["moves"] == 1
