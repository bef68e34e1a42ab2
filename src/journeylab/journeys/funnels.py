"""Funnels: how many users (or sessions) reach each step, drop-off, time to convert.

A funnel is an ordered list of steps; each step is one event name, a list of
event names (any of them), or a ``{label: events}`` mapping. The counting
rules:

- **Entry.** A unit (user, or session with ``grain="session"``) enters at each
  step-1 event whose timestamp lies in ``[start, end)``.
- **Strict order** (default). From an entry, step ``k`` is reached by the
  first step-``k`` event *after* the event that reached step ``k-1`` (after in
  the stable tie-breaker order of :mod:`journeylab.journeys.build`, so identical
  timestamps count in stage-map order, or in step order when no stage map is
  given) and no later than ``window`` after the entry. Later steps may fall
  after ``end``: a unit that entered on the last day keeps its chance to
  convert if the data go on.
- **Any order.** From an entry, step ``k`` is reached when each of steps
  ``2..k`` happens after the entry and within ``window``, in any order.
- **Best attempt.** A unit that enters several times counts once, with the
  entry that got furthest (the earliest such entry on ties), like ClickHouse's
  ``windowFunnel``. Hence each step's count is at most the previous one's.
- **Segments.** ``segment="platform"`` splits the funnel by the value of that
  column on the unit's first entry event (missing values as ``"(missing)"``).
  ``min_users=30`` leaves out segments entered by fewer than 30 distinct
  users (small-group suppression for shared reports) and says how many.
- **Fail closed.** A step event that no row of the log carries is an error
  naming it and the closest event names present, and so is a segment that is
  not a column; a first step nobody entered in the period is an error saying
  when its events do occur. A segment with a single value is counted, and the
  summary says there is nothing to compare.

The steps and the stage map can come from the project file (``project=``,
:class:`journeylab.core.project.Project`: its ``funnel`` and ``stage_map``).

Conversion rates carry Wilson score intervals
(``statsmodels.stats.proportion.proportion_confint(method="wilson")``). Time
to convert is measured between the events that reached consecutive steps
(strict) or from the entry (any order). All counting runs as DuckDB SQL (ASOF
joins from each entry); only the per-step table comes back to pandas.

:func:`funnel` lives here; the counting in :mod:`journeylab.journeys.funnel_counts`,
the result and its figures in :mod:`journeylab.journeys.funnel_results` and
:func:`where_instead` in :mod:`journeylab.journeys.funnel_exits`; every public
name is importable from this module.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from journeylab.core.errors import ParameterError, check_range
from journeylab.journeys.build import fetch_df
from journeylab.journeys.funnel_arrays import small_counts, unit_counts
from journeylab.journeys.funnel_counts import _funnel_units, _open_funnel, _step_frame, _step_table
from journeylab.journeys.funnel_exits import NO_FURTHER_EVENT, WhereInstead, where_instead
from journeylab.journeys.funnel_results import FunnelResult
from journeylab.journeys.rules import Steps, resolve_steps

__all__ = ["FunnelResult", "WhereInstead", "funnel", "where_instead", "NO_FURTHER_EVENT"]


def funnel(
    events: Any,
    steps: Steps | None = None,
    *,
    window: str | pd.Timedelta = "7D",
    order: Literal["strict", "any"] = "strict",
    grain: Literal["user", "session"] = "user",
    segment: str | None = None,
    start: Any = None,
    end: Any = None,
    confidence: float = 0.95,
    stage_map: Any = None,
    min_users: int = 0,
    project: Any = None,
) -> FunnelResult:
    """Count how many units reach each funnel step, with intervals and time to convert.

    Parameters
    ----------
    events : DataFrame, DuckDB relation or Parquet path(s)
        Event log (``user_id``, ``timestamp``, ``event``; ``session_id`` for
        ``grain="session"``; the ``segment`` column when given).
    steps : list or dict
        Event names in funnel order; a step may be a list of names (any of
        them) and a dict gives labels: ``{"product page": "view", ...}``.
        Default: the project's ``funnel``. A name no row carries is an error.
    window : str or Timedelta
        Longest time from entering (step 1) to reaching a later step.
    order : {"strict", "any"}
        Steps in the listed order, or in any order after the entry.
    grain : {"user", "session"}
        Count users or sessions.
    segment : str, optional
        Column to split by (value on the unit's first entry).
    start, end : date-like, optional
        Units enter in ``[start, end)``; events before ``start`` are ignored.
    confidence : float
        Level of the Wilson intervals.
    stage_map : StageMap, optional
        Tie-breaker order of identical timestamps (default: the project's
        stage map, else the order of the steps).
    min_users : int
        Small-group suppression for shared reports: segments whose first
        step was entered by fewer than ``min_users`` distinct users are left
        out of the table and the figures, and the summary says how many.
        0 (the default) shows every segment. Applies with ``segment``.
    project : Project, optional
        The project file: its ``funnel`` stands in for ``steps`` and its
        ``stage_map`` for ``stage_map``.

    Returns
    -------
    FunnelResult

    Raises
    ------
    UnknownNameError
        A step names an event no row carries, or ``segment`` is not a column.
    NotComputableError
        Nobody entered the first step in the period (the message says when it occurs).

    Examples
    --------
    >>> ev = pd.DataFrame({"user_id": ["a", "a", "b"], "event": ["cart", "purchase", "cart"],
    ...     "timestamp": pd.to_datetime(["2026-05-01 10:00", "2026-05-01 10:05",
    ...                                  "2026-05-02 09:00"], utc=True)})
    >>> funnel(ev, ["cart", "purchase"]).to_frame()["entrants"].tolist()
    [2, 1]
    """
    check_range("confidence", confidence, low=0, high=1)
    if not isinstance(min_users, (int, np.integer)) or isinstance(min_users, bool):
        raise ParameterError(
            f"min_users == {min_users!r}, must be a whole number (0 shows every segment)."
        )
    check_range("min_users", min_users, low=0, low_inclusive=True)
    steps, stage_map = resolve_steps(steps, stage_map, project=project)
    options = {
        "window": window,
        "order": order,
        "grain": grain,
        "segment": segment,
        "start": start,
        "end": end,
        "stage_map": stage_map,
    }
    small: list[str] = []
    fast = (
        small_counts(
            events, steps, window=window, order=order, start=start, end=end, stage_map=stage_map
        )
        if grain == "user" and segment is None
        else None
    )
    if fast is not None:
        counts, segments, sizes, settings, parsed = fast
        table = _step_frame(counts, segments, parsed, confidence)
        left_out: dict[str, int] = {}
    elif grain == "user" or not (min_users and segment):
        # Users (not sessions) make a group identifiable: with grain="user" a
        # segment's units are its distinct users.
        with _open_funnel(events, steps, **options) as opened:
            counts, segments, sizes = unit_counts(opened)
        settings, left_out = opened.settings, opened.left_out
        table = _step_frame(counts, segments, opened.parsed, confidence)
        if min_users and segment:
            small = [
                seg for seg in dict.fromkeys(table["segment"]) if sizes.get(seg, 0) < min_users
            ]
    else:
        with _funnel_units(events, steps, **options) as units:
            table = _step_table(units, confidence)
            # Users (not sessions) make a group identifiable: count distinct entrants.
            sizes = fetch_df(
                units.events.con.execute(
                    f"SELECT segment, count(DISTINCT user_id) AS users FROM {units.name} GROUP BY segment"
                )
            )
            known = dict(zip(sizes["segment"], sizes["users"], strict=True))
            small = [
                seg for seg in dict.fromkeys(table["segment"]) if known.get(seg, 0) < min_users
            ]
        settings, left_out = units.settings, units.left_out
    if small:
        table = table[~table["segment"].isin(small)].reset_index(drop=True)
    settings = {**settings, "min_users": int(min_users)}
    notes = []
    values = list(dict.fromkeys(table["segment"]))
    if segment is not None and len(values) == 1 and not small:
        notes.append(f"Only one value of {segment} ({values[0]}): no comparison.")
    return FunnelResult(
        table=table, settings=settings, left_out=left_out, confidence=confidence,
        suppressed_segments=len(small), notes=notes,
    )  # fmt: skip
