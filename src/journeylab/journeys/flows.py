"""Path flows: top paths, first-order transitions and step-by-step (Sankey) flows.

All three read journeys (built from events by :func:`journeylab.journeys.build.build_journeys`
with the same rules and options, or passed in already built); ``top_paths``
also takes a path table. The sequences are cut and counted in DuckDB SQL; only
the small aggregated tables come back to pandas. Top paths live here,
transitions in :mod:`journeylab.journeys.transition_table`, flows in
:mod:`journeylab.journeys.sankey` and the states and journey reading they share
in :mod:`journeylab.journeys.flow_common`; every public name is importable from
this module.

States
------
Transitions and flows name a touch by its ``level``: ``"channel"`` (default),
``"event"`` or ``"stage"`` (the stage map's stage of the touch's event). With
``level="event"`` or ``"stage"`` every event except the conversion is a touch
unless ``touch_events`` says otherwise. Four extra states frame the journeys:

- ``START`` — where every journey begins (transitions only);
- ``CONVERSION`` — the journey ended in a conversion;
- ``NULL`` — the journey ended without one (closed: nothing within the lookback);
- ``END`` — the journey is still open at the period end (censored; only with
  ``include_censored=True``).

A conversion with no touch goes ``START → CONVERSION`` in the transitions and
through the node ``(direct)`` in flows, as in the path table.

Names
-----
Built from events, journeys need ``conversion=`` (the event or events that
count as one) and a stage map (the tie-breaker, and the stages of
``level="stage"``); both can come from the project file (``project=``). A
conversion or touch event that no row carries is an error naming it and the
closest event names present.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from journeylab.core.errors import ParameterError, SchemaError, check_range
from journeylab.core.results import Result, fmt_ci, fmt_pct
from journeylab.core.viz import PALETTE, new_axes
from journeylab.journeys.build import Journeys, fmt_count, path_table
from journeylab.journeys.flow_common import (
    CONVERSION,
    END,
    NULL,
    OTHER,
    OUTCOMES,
    START,
    _journey_inputs,
    _journey_options,
)
from journeylab.journeys.sankey import Flow, flow
from journeylab.journeys.transition_table import Transitions, transitions

__all__ = [
    "START",
    "CONVERSION",
    "NULL",
    "END",
    "OTHER",
    "OUTCOMES",
    "TopPaths",
    "Transitions",
    "Flow",
    "top_paths",
    "transitions",
    "flow",
]


# ---------------------------------------------------------------------------
# top paths
# ---------------------------------------------------------------------------
@dataclass(repr=False, eq=False)
class TopPaths(Result):
    """The most common paths with conversions, conversion rate and share of journeys.

    ``to_frame()``: ``path``, ``journeys``, ``conversions``, ``conversion_rate``
    with ``ci_low``/``ci_high`` (Wilson), ``share`` (of all journeys) and
    ``value``.
    """

    table: pd.DataFrame
    total_journeys: int
    total_paths: int
    title: str = "Top paths"

    def to_frame(self) -> pd.DataFrame:
        """Return the top paths."""
        return self.table

    def summary(self) -> str:
        """Describe how much the top paths cover and the best-converting ones."""
        t = self.table
        if t.empty:
            return "No journeys."
        covered = t["journeys"].sum() / self.total_journeys
        best = t[t["journeys"] >= max(10, t["journeys"].max() * 0.05)].sort_values(
            "conversion_rate", ascending=False
        )
        line = (
            f"The top {len(t)} of {fmt_count(self.total_paths)} distinct paths cover {fmt_pct(covered)} of "
            f"{fmt_count(self.total_journeys)} journeys. Most common: {_fmt_path(t['path'].iloc[0])} "
            f"({fmt_pct(t['share'].iloc[0])} of journeys, converting {fmt_pct(t['conversion_rate'].iloc[0])})."
        )
        if len(best):
            b = best.iloc[0]
            line += (
                f" Best converting among the common ones: {_fmt_path(b['path'])} {fmt_pct(b['conversion_rate'])} "
                f"{fmt_ci(b['ci_low'], b['ci_high'], fmt_pct)}."
            )
        return line

    def display_frame(self) -> pd.DataFrame:
        """Return the table with readable paths and rates."""
        t = self.table
        return pd.DataFrame(
            {
                "path": t["path"].map(_fmt_path),
                "journeys": t["journeys"].map(fmt_count),
                "share": t["share"].map(fmt_pct),
                "conversions": t["conversions"].map(fmt_count),
                "conversion rate": [
                    f"{fmt_pct(r)} {fmt_ci(lo, hi, fmt_pct)}"
                    for r, lo, hi in zip(
                        t["conversion_rate"], t["ci_low"], t["ci_high"], strict=True
                    )
                ],
            }
        )

    def plot(self, ax=None):
        """Draw journeys per path (bars) with each path's conversion rate written beside it."""
        t = self.table
        ax = new_axes(ax, figsize=(9, 0.8 + 0.38 * max(len(t), 1)))
        y = np.arange(len(t))
        ax.barh(y, t["journeys"] - t["conversions"], color="#b9b9b9", label="not converted")
        ax.barh(
            y,
            t["conversions"],
            left=t["journeys"] - t["conversions"],
            color=PALETTE[2],
            label="converted",
        )
        top = float(t["journeys"].max()) if len(t) else 1.0
        for i, (n, r) in enumerate(zip(t["journeys"], t["conversion_rate"], strict=True)):
            ax.text(
                n + top * 0.01, i, f"{fmt_count(n)} · {fmt_pct(r)} convert", va="center", fontsize=9
            )
        ax.set_yticks(y)
        ax.set_yticklabels([_fmt_path(p, 60) for p in t["path"]], fontsize=9)
        ax.invert_yaxis()
        ax.set_xlim(0, top * 1.35)
        ax.set_xlabel("journeys")
        ax.set_title(
            f"Top {len(t)} paths ({fmt_pct(t['journeys'].sum() / max(self.total_journeys, 1))} of journeys)"
        )
        ax.grid(axis="y", visible=False)
        ax.legend(loc="lower right")
        return ax


def _fmt_path(path: tuple, width: int | None = None) -> str:
    text = " > ".join(str(p) for p in path)
    if width and len(text) > width:
        text = text[: width - 1] + "…"
    return text


def top_paths(
    paths_or_journeys: Any,
    n: int = 20,
    *,
    confidence: float = 0.95,
    project: Any = None,
    **path_options: Any,
) -> TopPaths:
    """List the ``n`` most common paths with conversions, conversion rate and share.

    Parameters
    ----------
    paths_or_journeys : path table, Journeys or events
        A path table (columns ``path``, ``conversions``, ``non_conversions``,
        ``value``), journeys, or an event log (passed to
        :func:`journeylab.journeys.build.path_table` with ``path_options``).
    n : int
        How many paths to keep (by journeys, then conversions, then path).
    confidence : float
        Level of the Wilson intervals on the conversion rates.
    project : Project, optional
        The project file: its ``conversion``, ``lookback`` and ``stage_map``
        when paths are built from events here.
    **path_options
        ``level``, ``collapse_repeats``, ``include_censored``, ``stage_map``
        and the journey options (``conversion`` is required for events), when
        paths are built here.

    Returns
    -------
    TopPaths

    Examples
    --------
    >>> paths = pd.DataFrame({"path": [("email",), ("social", "email")],
    ...     "conversions": [3, 1], "value": [30.0, 10.0], "non_conversions": [7, 1]})
    >>> top_paths(paths).to_frame()[["journeys", "conversion_rate", "share"]].values.tolist()
    [[10.0, 0.3, 0.8333333333333334], [2.0, 0.5, 0.16666666666666666]]
    """
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
        raise ParameterError(f"n == {n!r}, must be a whole number.")
    check_range("n", n, low=1, low_inclusive=True)
    check_range("confidence", confidence, low=0, high=1)
    if isinstance(paths_or_journeys, pd.DataFrame) and "path" in paths_or_journeys.columns:
        if path_options or project is not None:
            raise ParameterError(
                f"{sorted(path_options)} apply only when paths are built here; this is a path table already."
            )
        missing = [
            c for c in ("conversions", "non_conversions") if c not in paths_or_journeys.columns
        ]
        if missing:
            raise SchemaError(
                f"The path table lacks column(s) {missing}.",
                missing_columns=missing,
                hint="pass a table from journeylab.journeys.build.path_table(...).",
            )
        paths = paths_or_journeys
    elif isinstance(paths_or_journeys, Journeys):
        paths = path_table(paths_or_journeys, **path_options)
    else:  # events: the same default touches as transitions() and flow()
        options = {k: v for k, v in path_options.items() if k != "stage_map"}
        stage_map, options = _journey_inputs(
            paths_or_journeys,
            path_options.get("stage_map"),
            options,
            project=project,
            func="top_paths",
        )
        options = _journey_options(options.get("level", "channel"), options)
        paths = path_table(paths_or_journeys, stage_map=stage_map, **options)
    t = pd.DataFrame(
        {
            "path": paths["path"].map(tuple),
            "conversions": paths["conversions"].astype(float),
            "non_conversions": paths["non_conversions"].astype(float),
            "value": paths["value"].astype(float) if "value" in paths else 0.0,
        }
    )
    # one row per path even if the table repeats a path
    t = t.groupby("path", as_index=False, sort=False).sum()
    t["journeys"] = t["conversions"] + t["non_conversions"]
    total = float(t["journeys"].sum())
    t["_key"] = t["path"].map(_fmt_path)
    t = t.sort_values(
        ["journeys", "conversions", "_key"], ascending=[False, False, True], kind="stable"
    ).head(int(n))
    rate = np.where(
        t["journeys"] > 0, t["conversions"] / t["journeys"].where(t["journeys"] > 0, 1), np.nan
    )
    low, high = proportion_confint(
        t["conversions"],
        t["journeys"].where(t["journeys"] > 0, 1),
        alpha=1 - confidence,
        method="wilson",
    )
    out = pd.DataFrame(
        {
            "path": t["path"].to_numpy(),
            "journeys": t["journeys"].to_numpy(),
            "conversions": t["conversions"].to_numpy(),
            "conversion_rate": rate,
            "ci_low": np.asarray(low, dtype=float),
            "ci_high": np.asarray(high, dtype=float),
            "share": t["journeys"].to_numpy() / total if total else np.nan,
            "value": t["value"].to_numpy(),
        }
    )
    for col in ("journeys", "conversions"):
        if np.all(np.mod(out[col], 1) == 0):  # whole counts stay whole (weights stay fractional)
            out[col] = out[col].astype("int64")
    return TopPaths(table=out, total_journeys=int(total), total_paths=int(len(paths)))
