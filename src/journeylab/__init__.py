"""journeylab: a Jupyter research workbench for customer-journey analytics.

The public surface is small. Loaders (``load_events``, ``load_assignments``,
``load_feedback``, ``load_spend``, ``load_transactions``) return validated,
canonical tables with a quality report; the analysis modules
(``journeys``, ``funnel``, ``flows``, ``journey_map``, ``attribution``,
``experiments``, ``retention``, ``clv``, ``voice``) return result objects;
``datasets.make_sample`` builds the seeded sample every notebook can run on.

Submodules are imported on first use, so ``import journeylab`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from journeylab.schema import (
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
    "LoadedTable": "journeylab.io",
    "QualityReport": "journeylab.io",
    "sort_events": "journeylab.io",
    "events_relation": "journeylab.io",
    "pseudonymize": "journeylab.privacy",
    "safe_csv": "journeylab.privacy",
    "make_sample": "journeylab.datasets",
    "open_workspace": "journeylab.workspace",
    "attribute": "journeylab.attribution",
    "sessionize": "journeylab.journeys",
    "build_journeys": "journeylab.journeys",
    "path_table": "journeylab.journeys",
    "where_instead": "journeylab.funnel",
    "top_paths": "journeylab.flows",
    "transitions": "journeylab.flows",
    "flow": "journeylab.flows",
    "FunnelExplorer": "journeylab.widgets",
    "PathExplorer": "journeylab.widgets",
    "AttributionComparer": "journeylab.widgets",
    "ExperimentCalculator": "journeylab.widgets",
    "compare_journeys": "journeylab.journey_diff",
    "segment_users": "journeylab.segments",
    "journey_personas": "journeylab.segments",
    "rfm_summary": "journeylab.clv",
    "BetaGeo": "journeylab.clv",
    "GammaGamma": "journeylab.clv",
    "ModifiedBetaGeo": "journeylab.clv_models",
    "ParetoNBD": "journeylab.clv_models",
    "calibration_and_holdout": "journeylab.clv_holdout",
    "clv_by_channel": "journeylab.clv",
    "cohort_retention": "journeylab.retention",
    "churn": "journeylab.retention",
    "lifecycle_states": "journeylab.retention",
}

_SUBMODULES = {
    "attribution",
    "cli",
    "clv",
    "clv_channels",
    "clv_fitting",
    "clv_holdout",
    "clv_models",
    "datasets",
    "engine",
    "experiments",
    "flows",
    "funnel",
    "io",
    "journey_map",
    "journey_diff",
    "journeys",
    "lexicons",
    "model_checks",
    "next_touch",
    "pain_points",
    "privacy",
    "progress",
    "propensity",
    "reports",
    "results",
    "retention",
    "schema",
    "segments",
    "sentiment",
    "spark",
    "stages",
    "viz",
    "voice",
    "widgets",
    "workspace",
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
