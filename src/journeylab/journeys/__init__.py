"""Journeys: events ordered into sessions and journeys, the path table, funnels and flows.

:mod:`~journeylab.journeys.build` holds the journey rules and the path table,
:mod:`~journeylab.journeys.funnels` funnels and "where instead",
:mod:`~journeylab.journeys.flows` transitions, top paths and Sankey flows, and
:mod:`~journeylab.journeys.spark` the same aggregations for Spark DataFrames;
:mod:`~journeylab.journeys.rules` holds what the DuckDB and Spark engines share
(the path vocabulary, the journey options and their reading, funnel steps).
"""

from journeylab.journeys.build import (
    PATH_COLUMNS,
    Journeys,
    build_journeys,
    path_table,
    sessionize,
)
from journeylab.journeys.flows import Flow, TopPaths, Transitions, flow, top_paths, transitions
from journeylab.journeys.funnels import FunnelResult, WhereInstead, funnel, where_instead
from journeylab.journeys.rules import DIRECT, NO_CHANNEL

__all__ = [
    "DIRECT",
    "NO_CHANNEL",
    "PATH_COLUMNS",
    "Journeys",
    "build_journeys",
    "path_table",
    "sessionize",
    "FunnelResult",
    "WhereInstead",
    "funnel",
    "where_instead",
    "Flow",
    "TopPaths",
    "Transitions",
    "flow",
    "top_paths",
    "transitions",
]
