"""The epoch-evaluator contract suite: every ``EpochEvaluator`` passes it besides the evaluator suite.

Subclasses provide ``evaluator_factory`` as for ``EvaluatorContract`` (``(seed) -> EpochEvaluator``, with
``max_epochs() >= 2``). The suite checks what ``raynas.evaluators.base.EpochEvaluator`` promises:
  * ``metrics[EPOCHS]`` after epoch ``e`` is ``e``, and ``evaluate`` is a run of ``max_epochs()`` epochs
    (the same scores as starting a run and training every epoch);
  * a run saved after epoch ``e`` and started again from its directory continues with epoch ``e + 1``
    and ends with the scores of a run never interrupted;
  * ``cost_s`` counts every epoch, the restored ones included (it never goes down);
  * an arch outside the space is a ``ValueError`` from ``start``.
"""
from __future__ import annotations

import pytest

from raynas.metrics import EPOCHS
from raynas.testing.evaluator_contract import NOT_AN_ARCH, sample_archs, scores


class EpochEvaluatorContract:
    @pytest.fixture
    def evaluator_factory(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def test_each_epoch_reports_its_number_and_evaluate_runs_them_all(self, evaluator_factory):
        evaluator = evaluator_factory(0)
        (arch,) = sample_archs(evaluator.space, 1)
        run = evaluator.start(arch)
        results = [run.run_epoch() for _ in range(evaluator.max_epochs())]
        assert [r.metrics[EPOCHS] for r in results] == list(range(1, evaluator.max_epochs() + 1))
        assert run.epochs_done == evaluator.max_epochs()
        assert scores(evaluator.evaluate([arch])) == scores(results[-1:])

    def test_a_saved_run_continues_where_it_stopped(self, evaluator_factory, tmp_path):
        evaluator = evaluator_factory(0)
        (arch,) = sample_archs(evaluator.space, 1, seed=1)
        straight = evaluator.start(arch)
        expected = [straight.run_epoch() for _ in range(evaluator.max_epochs())][-1]
        first = evaluator.start(arch)
        done = first.run_epoch()
        first.save(str(tmp_path))
        again = evaluator.start(arch, str(tmp_path))
        assert again.epochs_done == 1
        results = [again.run_epoch() for _ in range(evaluator.max_epochs() - 1)]
        assert scores(results[-1:]) == scores([expected])
        assert results[0].metrics[EPOCHS] == 2 and results[-1].cost_s >= done.cost_s

    def test_an_arch_outside_the_space_is_a_value_error(self, evaluator_factory):
        with pytest.raises(ValueError, match=NOT_AN_ARCH):
            evaluator_factory(0).start(NOT_AN_ARCH)
