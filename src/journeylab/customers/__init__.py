"""Customers over time: cohorts, repeat purchase, churn, lifecycle states and propensity."""

from journeylab.customers.cohorts import CohortResult, cohort_retention
from journeylab.customers.logit import auc_delong
from journeylab.customers.propensity import PropensityResult, fit_propensity
from journeylab.customers.rates import RepeatRateResult, repeat_purchase_rate
from journeylab.customers.retention import ChurnResult, LifecycleResult, churn, lifecycle_states
from journeylab.customers.snapshots import churn_features, propensity_features

__all__ = [
    "CohortResult",
    "RepeatRateResult",
    "ChurnResult",
    "LifecycleResult",
    "cohort_retention",
    "repeat_purchase_rate",
    "churn",
    "lifecycle_states",
    "propensity_features",
    "churn_features",
    "fit_propensity",
    "auc_delong",
    "PropensityResult",
]
