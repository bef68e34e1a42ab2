"""Interactive explorers for JupyterLab, each with a data twin and a static fallback.

Four explorers put controls (ipywidgets) in front of the analysis functions;
none of them computes a statistic of its own:

- :class:`FunnelExplorer` — :func:`journeylab.journeys.funnels.funnel` by segment,
  filter columns, month, window and order;
- :class:`PathExplorer` — :func:`journeylab.journeys.flows.top_paths` and
  :func:`journeylab.journeys.flows.transitions` by level, number of paths and
  collapsed repeats;
- :class:`AttributionComparer` — :func:`journeylab.attribution.attribute`
  by models, Markov order, conversions or value, bootstrap on or off;
- :class:`ExperimentCalculator` — sample size, power or minimum detectable
  effect (:func:`journeylab.experiments.power_calculator`, R's
  ``power.prop.test`` formulas) and a readout from counts per arm
  (:func:`journeylab.experiments.compare_proportions`, the SRM check and the
  beta-binomial comparison).

Every explorer has a data twin — a module function (:func:`funnel_data`,
:func:`path_data`, :func:`attribution_data`, :func:`experiment_data`) and the
method ``explorer.data()`` for the current control values — so the numbers
behind the picture can be tested and used without a front end.

Displaying an explorer shows the live widget where a widget runtime exists;
the same display also carries a static HTML rendering of the current state
(summary, table and the figure as an embedded PNG), which is what an exported
HTML report shows. Under the report runner (``journeylab report``) only the
static rendering is emitted: a scheduled run has nobody to move a control, and
nbconvert would otherwise prefer the widget view it cannot draw. Results are
computed when a control changes (not while the explorer is built) and cached
per tuple of control values.
"""

from __future__ import annotations

from journeylab.reports.widgets._base import ALL, NONE
from journeylab.reports.widgets.attribution import AttributionComparer, attribution_data
from journeylab.reports.widgets.experiment import (
    ExperimentCalculator,
    ProportionsReadout,
    experiment_data,
    power_data,
    readout_data,
)
from journeylab.reports.widgets.funnel import FunnelExplorer, funnel_data
from journeylab.reports.widgets.paths import PathExplorer, path_data

__all__ = [
    "FunnelExplorer",
    "PathExplorer",
    "AttributionComparer",
    "ExperimentCalculator",
    "ProportionsReadout",
    "funnel_data",
    "path_data",
    "attribution_data",
    "experiment_data",
    "power_data",
    "readout_data",
    "ALL",
    "NONE",
]
