"""A/B/n experiments: frequentist, Bayesian, CUPED, sequential, power, trust checks.

The entry point is :func:`analyze` on a user-level table (one row per user:
variant and metric columns), built from assignments and events with
:func:`user_metrics`. It runs the trust checks first (each unit once and in one
variant, SRM against the designed split, pre-period imbalance, Simpson's-paradox guard, novelty
trend), compares every variant with the control, adjusts p-values (Holm by
default) and reports what cannot be computed as a status, never a number.

Examples
--------
>>> import pandas as pd
>>> from journeylab.experiments import analyze, power_calculator
>>> frame = pd.DataFrame({"variant": ["control", "b"] * 500, "booked": [0, 1, 1, 1] * 250})
>>> analyze(frame, metrics=["booked"]).to_frame().loc[0, "abs_lift"]
np.float64(0.5)
>>> power_calculator(0.10, mde=0.01).n_total
29502
"""

from __future__ import annotations

from journeylab.experiments.analysis import analyze
from journeylab.experiments.bayesian import (
    BayesianComparison,
    bayes_normal,
    bayes_proportions,
    beta_expected_loss,
    prob_beta_greater,
)
from journeylab.experiments.checks import Check, imbalance_check, srm_check, unit_check
from journeylab.experiments.cuped import (
    ancova_lift,
    check_pre_exposure,
    cuped_adjust,
    cuped_lift,
    cuped_theta,
)
from journeylab.experiments.frequentist import (
    Comparison,
    compare_means,
    compare_proportions,
    compare_ratios,
    prop_test,
    relative_lift,
    welch_test,
)
from journeylab.experiments.metrics import Metric, user_metrics
from journeylab.experiments.multiple import adjust_p_values
from journeylab.experiments.period_checks import split_change_check, stratified_lift, trend_check
from journeylab.experiments.power import (
    PowerCalculation,
    arcsine_power,
    power_calculator,
    power_prop_test,
    power_t_test,
    prop_power,
    t_power,
)
from journeylab.experiments.readout import FRAME_COLUMNS, STRAT_COLUMNS, ExperimentResult
from journeylab.experiments.sequential import (
    AASimulation,
    SequentialResult,
    msprt,
    sequential_test,
    simulate_aa,
)

__all__ = [
    "analyze",
    "ExperimentResult",
    "FRAME_COLUMNS",
    "STRAT_COLUMNS",
    "Metric",
    "user_metrics",
    "Comparison",
    "compare_proportions",
    "compare_means",
    "compare_ratios",
    "relative_lift",
    "welch_test",
    "prop_test",
    "power_calculator",
    "PowerCalculation",
    "power_prop_test",
    "power_t_test",
    "prop_power",
    "t_power",
    "arcsine_power",
    "Check",
    "unit_check",
    "srm_check",
    "imbalance_check",
    "split_change_check",
    "stratified_lift",
    "trend_check",
    "cuped_theta",
    "cuped_adjust",
    "cuped_lift",
    "ancova_lift",
    "check_pre_exposure",
    "msprt",
    "sequential_test",
    "SequentialResult",
    "simulate_aa",
    "AASimulation",
    "BayesianComparison",
    "bayes_proportions",
    "bayes_normal",
    "prob_beta_greater",
    "beta_expected_loss",
    "adjust_p_values",
]
