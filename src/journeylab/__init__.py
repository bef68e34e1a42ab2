"""journeylab: a Jupyter research workbench for customer-journey analytics.

The public surface is small. Loaders (``load_events``, ``load_assignments``,
``load_feedback``, ``load_spend``, ``load_transactions``) return validated,
canonical tables with a quality report; the analysis modules
(``journeys``, ``maps``, ``attribution``, ``experiments``, ``customers``,
``clv``, ``voice``) return result objects;
``datasets.make_sample`` builds the seeded sample every notebook can run on.

Submodules are imported on first use, so ``import journeylab`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from journeylab.core.errors import (
    DataError,
    JourneylabError,
    JourneylabWarning,
    ModelWarning,
    NotComputableError,
    ParameterError,
    SchemaError,
)

__version__ = "0.1.0"

_LAZY_ATTRIBUTES = {
    "load_events": "journeylab.io",
    "load_assignments": "journeylab.io",
    "load_feedback": "journeylab.io",
    "load_spend": "journeylab.io",
    "load_transactions": "journeylab.io",
    "load_identities": "journeylab.io",
    "resolve_identities": "journeylab.io",
    "LoadedTable": "journeylab.io",
    "QualityReport": "journeylab.io",
    "sort_events": "journeylab.io",
    "events_relation": "journeylab.io",
    "pseudonymize": "journeylab.io",
    "safe_csv": "journeylab.io",
    "make_sample": "journeylab.datasets",
    "open_workspace": "journeylab.reports",
    "attribute": "journeylab.attribution",
    "sessionize": "journeylab.journeys",
    "build_journeys": "journeylab.journeys",
    "path_table": "journeylab.journeys",
    "funnel": "journeylab.journeys",
    "where_instead": "journeylab.journeys",
    "top_paths": "journeylab.journeys",
    "transitions": "journeylab.journeys",
    "flow": "journeylab.journeys",
    "journey_map": "journeylab.maps",
    "pain_points": "journeylab.maps",
    "compare_journeys": "journeylab.maps",
    "segment_users": "journeylab.maps",
    "journey_personas": "journeylab.maps",
    "FunnelExplorer": "journeylab.reports.widgets",
    "PathExplorer": "journeylab.reports.widgets",
    "AttributionComparer": "journeylab.reports.widgets",
    "ExperimentCalculator": "journeylab.reports.widgets",
    "rfm_summary": "journeylab.clv",
    "BetaGeo": "journeylab.clv",
    "GammaGamma": "journeylab.clv",
    "ModifiedBetaGeo": "journeylab.clv",
    "ParetoNBD": "journeylab.clv",
    "calibration_and_holdout": "journeylab.clv",
    "clv_by_channel": "journeylab.clv",
    "cohort_retention": "journeylab.customers",
    "churn": "journeylab.customers",
    "lifecycle_states": "journeylab.customers",
}

#: The packages, in the order data flows through them (see ARCHITECTURE.md).
_SUBMODULES = {
    "core",
    "io",
    "journeys",
    "maps",
    "attribution",
    "experiments",
    "customers",
    "clv",
    "voice",
    "datasets",
    "reports",
    "actions",
}

__all__ = [
    "DataError",
    "JourneylabError",
    "JourneylabWarning",
    "ModelWarning",
    "NotComputableError",
    "ParameterError",
    "SchemaError",
    "__version__",
    *_LAZY_ATTRIBUTES,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY_ATTRIBUTES:
        return getattr(importlib.import_module(_LAZY_ATTRIBUTES[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"journeylab.{name}")
    raise AttributeError(f"module 'journeylab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_ATTRIBUTES) | _SUBMODULES)
