"""Customers over time: cohorts, repeat purchase, churn, lifecycle states and propensity."""

from journeylab.customers.propensity import (
    PropensityResult,
    auc_delong,
    churn_features,
    fit_propensity,
    propensity_features,
)
from journeylab.customers.retention import (
    ChurnResult,
    CohortResult,
    LifecycleResult,
    RepeatRateResult,
    churn,
    cohort_retention,
    lifecycle_states,
    repeat_purchase_rate,
)

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
