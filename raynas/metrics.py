"""The names every layer shares: metrics, optimisation modes and run statuses (one home; no literal
copies elsewhere, in the manner of ``syne_tune/constants.py``).

Metric names are what evaluators report, strategies optimise, recipes constrain and MLflow shows.
"""
from __future__ import annotations

# --- what evaluators report ---------------------------------------------------------------------
VALID_ACC = "valid_acc"  # percent, validation split: what strategies see
TEST_ACC = "test_acc"  # percent, test split: report-only (``Result.hidden``), never seen by strategies
FLOPS = "flops_m"  # MFLOPs
PARAMS = "params_mb"  # MB of parameters
LATENCY = "latency_ms"  # ms on the evaluator's latency device
COST_METRICS = (LATENCY, FLOPS, PARAMS)  # the cost metrics, in the order plots prefer them
COST_S = "cost_s"  # a candidate's cost on the search clock (wall or simulated seconds)
EPOCHS = "epochs"  # epochs a candidate trained (fewer than planned: a Tune scheduler stopped it early)
SIM_TIME_S = "sim_time_s"  # the search clock when a candidate finished / the search ended

# --- lineage tags of results -------------------------------------------------------------------
WEIGHTS_VERSION = "weights_version"  # content hash of the supernet weights that scored a candidate
PARENT_RUN_TAG = "mlflow.parentRunId"  # MLflow's tag nesting a run under another

# --- how an evaluator's weights were trained (``Evaluator.training_record``) ---------------------
RECORD_KIND, FEW_SHOT = "kind", "few_shot"  # the record's kind: a few-shot split tree

# --- what benchmarks know (``Evaluator.reference``) ---------------------------------------------
OPTIMUM_TEST_ACC = "optimum_test_acc"  # the best test accuracy in the benchmark
TEST_ACC_OF_BEST_VALID = "test_acc_of_best_valid"  # test accuracy of the arch best on validation

# --- what a search reports at its end (``SearchSummary.metrics``) --------------------------------
NUM_CANDIDATES = "num_candidates"
NUM_FAILED = "num_failed"
NUM_OVER_BUDGET = "num_over_budget"
WALL_TIME_S = "wall_time_s"
REGRET_TEST_ACC = "regret_test_acc"  # OPTIMUM_TEST_ACC minus the best candidate's test accuracy
BEST_PREFIX = "best_"  # best_<metric>: the best feasible candidate's value of <metric>

# --- optimisation modes -------------------------------------------------------------------------
MAX, MIN = "max", "min"

# --- run statuses (MLflow's names) --------------------------------------------------------------
RUNNING, FINISHED, FAILED, KILLED = "RUNNING", "FINISHED", "FAILED", "KILLED"

# --- metrics on a named device ------------------------------------------------------------------
DEVICE_SEP = "."  # MLflow metric names allow [/\w.\- :]; '@' is refused


def best(metric: str) -> str:
    """The summary metric holding the best candidate's ``metric``: ``best_valid_acc``."""
    return f"{BEST_PREFIX}{metric}"


def device_metric(metric: str, device: str) -> str:
    """The name of ``metric`` measured on ``device``: ``latency_ms.raspi4``."""
    return f"{metric}{DEVICE_SEP}{device}"
