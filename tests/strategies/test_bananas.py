"""BANANAS-style search: ensemble size, candidates from the best archs, acquisitions, proxy feature, refits."""
from __future__ import annotations

import pytest

from raynas.space.nb201 import NB201Space
from raynas.strategies.bananas import Bananas

SPACE = NB201Space()
TARGET = (3, 3, 2, 3, 1, 3)


def closeness(arch) -> float:
    return float(sum(a == t for a, t in zip(arch, TARGET)))


def run(steps: int, scorer=None, **kw) -> tuple[Bananas, list[dict]]:
    config = Bananas.Config(**{"init_samples": 5, "n_estimators": 5, "candidates": 20, "parents": 3, **kw})
    strategy = Bananas(SPACE, config, seed=0, scorer=scorer)
    cfgs = []
    for i in range(steps):
        cfg = strategy.suggest(f"t{i}")
        strategy.on_trial_complete(f"t{i}", {"valid_acc": closeness(SPACE.from_str(cfg["arch"]))})
        cfgs.append(cfg)
    return strategy, cfgs


@pytest.mark.parametrize("acquisition", ["its", "ucb"])
def test_proposals_after_the_samples_are_children_of_the_best(acquisition):
    strategy, cfgs = run(12, acquisition=acquisition)
    assert all(c["variation"] == "random" for c in cfgs[:5])
    assert all(c["parent"] is not None for c in cfgs[5:])
    assert len(strategy.models) == 5 and strategy.report()["ms_per_proposal"] > 0


def test_neighbour_candidates_and_refit_schedule():
    strategy, cfgs = run(15, candidate_mode="neighbours", refit_every=4, refit_growth=0.0)
    for cfg in cfgs[5:]:
        parent, child = SPACE.from_str(cfg["parent"]), SPACE.from_str(cfg["arch"])
        assert child in SPACE.neighbours(parent)
    assert strategy.report()["refits"] == 3  # at 5 (first fit), 9 and 13 results


def test_proxy_is_an_extra_feature_from_the_scorer():
    calls = []
    strategy, _ = run(8, scorer=lambda a: calls.append(a) or float(a[0]), proxy="naswot")
    assert Bananas.scorer_proxy(strategy.config) == "naswot" and calls
    assert len(strategy.models[0].thresholds) == SPACE.encoding_size + 1
    with pytest.raises(RuntimeError, match="scorer"):
        run(8, proxy="naswot")


def test_ridge_members_learn_an_additive_score_and_climb_to_its_optimum():
    """``closeness`` is additive over edges, which a ridge on the one-hot encoding represents exactly."""
    from raynas.strategies.ridge import Ridge

    strategy, cfgs = run(30, predictor="ridge", ridge_alpha=0.1, acquisition="ucb", ucb_beta=0.0)
    assert all(isinstance(m, Ridge) for m in strategy.models) and len(strategy.models) == 5
    scores = [closeness(SPACE.from_str(c["arch"])) for c in cfgs]
    assert max(scores) == len(TARGET) and max(scores[:5]) < len(TARGET)


def test_all_mode_scores_every_new_arch_of_the_space_and_refuses_what_it_cannot_enumerate():
    from raynas.errors import RecipeError
    from raynas.space.mbv3 import MBV3Space
    from raynas.typed import from_dict

    strategy, cfgs = run(20, predictor="ridge", ridge_alpha=0.1, candidate_mode="all", acquisition="ucb", ucb_beta=0.0,
                        clip_quantile=0.0)
    keys = [SPACE.canonical(SPACE.from_str(c["arch"])) for c in cfgs]
    assert len(set(keys)) == len(keys)  # never a function twice
    assert max(closeness(SPACE.from_str(c["arch"])) for c in cfgs) == len(TARGET)
    assert all(c["parent"] is not None for c in cfgs[5:])  # lineage: the best result when proposed
    with pytest.raises(RecipeError, match="strategy.candidate_mode.*mbv3 has 2,954"):
        Bananas(MBV3Space(), Bananas.Config(candidate_mode="all"))
    with pytest.raises(RecipeError, match="strategy.candidate_mode: 'all' needs proxy: null"):
        from_dict(Bananas.Config, {"candidate_mode": "all", "proxy": "naswot"}, "strategy")  # as a recipe is read
