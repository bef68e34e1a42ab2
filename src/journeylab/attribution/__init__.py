"""Attribution: which channels earn the conversions, with uncertainty.

Exact, deterministic models on the path table of
:func:`journeylab.journeys.build.path_table` (or a ChannelAttribution-style table):

* rule-based: first touch, last touch, last non-direct, linear, position-based
  (U-shaped), time-decay (needs touch timestamps);
* :class:`MarkovChain`: absorbing-chain removal effects of order 1–4, solved
  with sparse linear algebra (no simulation), with transition (sequence) credit;
* Shapley value of the set-based coalition game (exact at any size; subset
  enumeration and permutation sampling as alternative routes);
* journey bootstrap intervals on every model's credit and on the ranking;
* CPA, ROAS and marginal returns per model given a spend table;
* :func:`next_best_touchpoint`: the next touch that raises the probability of
  converting most, from the same first-order chain.

Examples
--------
>>> import pandas as pd
>>> from journeylab.attribution import attribute
>>> paths = pd.DataFrame({"path": ["A > B", "B", "A"], "conversions": [10, 2, 1],
...                       "null": [5, 8, 9]})
>>> attribute(paths, ["linear", "markov"], non_conversions="null",
...           value_column=None).to_frame().round(2)["linear"].to_dict()
{'A': 6.0, 'B': 7.0}
"""

from __future__ import annotations

from journeylab.attribution.compare import (
    DEFAULT_MODELS,
    MODELS,
    AttributionResult,
    attribute,
)
from journeylab.attribution.heuristics import time_decay
from journeylab.attribution.markov import MarkovChain
from journeylab.attribution.next_touch import NextBestTouchpointResult, next_best_touchpoint
from journeylab.attribution.paths import DIRECT, PathTable, read_path_table
from journeylab.attribution.shapley import shapley
from journeylab.attribution.touches import touches_to_path_table

__all__ = [
    "attribute",
    "AttributionResult",
    "MarkovChain",
    "next_best_touchpoint",
    "NextBestTouchpointResult",
    "PathTable",
    "read_path_table",
    "touches_to_path_table",
    "shapley",
    "time_decay",
    "MODELS",
    "DEFAULT_MODELS",
    "DIRECT",
]
