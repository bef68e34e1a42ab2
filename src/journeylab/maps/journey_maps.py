"""The journey map: a stage × KPI table for a period, with reach, conversion and time in stage.

:func:`journey_map` reads the canonical event log and a stage map and returns,
for one period (a month or any ``start``/``end`` window),

- every KPI of the stage map (event counts, distinct users or value sums),
- the users who reached each stage,
- the stage-to-stage conversion: among the users who reached stage *k* in the
  period, the share with an event of stage *k + 1* at or after their first
  stage-*k* event (same period), with Wilson intervals,
- the median time in stage: first event of the stage to the first event of
  the next stage, over the users who made the step,

optionally split by a segment (a column of the events such as ``platform``, a
column of a ``users`` table such as ``acquisition_channel``, or a Series of
user → segment such as :func:`journeylab.maps.segments.segment_users` returns) and
compared with the previous period with a two-proportion test per conversion.

The stage map is the company's own (``stage_map=``, or ``project=`` for the
project file's); there is no default. A segment that is not a column is an
error naming the closest columns, a period in which no event belongs to any
stage is an error listing the events present, and a segment with a single
value is mapped with a note that there is nothing to compare.

A user's segment is a user-level attribute: taken from ``users`` when given,
else the value on the user's first event in the period that has one.
``min_users=30`` leaves segments with fewer than 30 users in the period out
of the table and the figure (small-group suppression for shared reports);
the summary says how many.
The heavy grouping (first event per user and stage, first event of the next
stage after it) runs as SQL in an embedded DuckDB; the statistics run on the
small aggregated table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd

from journeylab.core.errors import NotComputableError, ParameterError, did_you_mean
from journeylab.core.stages import StageMap
from journeylab.maps.journey_map_result import JourneyMapResult
from journeylab.maps.periods import (
    ALL_USERS,
    Period,
    in_period,
    label_segments,
    prepare_events,
    resolve_period,
    user_segment,
)
from journeylab.maps.progress import events_matching, stage_progress, two_proportion, wilson

__all__ = [
    "journey_map",
    "JourneyMapResult",
    "Period",
    "resolve_period",
]


# ----------------------------------------------------------------------------
# The journey map
# ----------------------------------------------------------------------------
def stage_table(
    frame: pd.DataFrame, stage_map: StageMap, segments: pd.Series | None
) -> pd.DataFrame:
    """One row per (segment, stage): users, reached next, conversion, Wilson CI, median time."""
    names = stage_map.names
    codes, labels = _segment_codes(frame, segments)
    # distinct users per segment, grouped on integer codes, listed in the labels' order
    per_code = frame["user_id"].groupby(codes).nunique()
    totals = pd.Series(per_code.to_numpy(), index=labels[per_code.index.to_numpy()]).sort_index()
    totals.index.name = "segment"  # as grouping on the labels names it
    progress = stage_progress(frame, stage_map)
    progress["segment"] = label_segments(progress, segments).to_numpy()
    progress["made_step"] = progress["next_ts"].notna()
    progress["hours"] = (progress["next_ts"] - progress["first_ts"]) / pd.Timedelta(hours=1)
    agg = progress.groupby(["segment", "stage_idx"]).agg(
        users=("user_id", "size"),
        reached_next=("made_step", "sum"),
        median_hours_in_stage=("hours", "median"),
    )
    grid = pd.MultiIndex.from_product(
        [totals.index, range(len(names))], names=["segment", "stage_idx"]
    )
    table = agg.reindex(grid).reset_index()
    table[["users", "reached_next"]] = table[["users", "reached_next"]].fillna(0).astype(int)
    table["users_in_period"] = table["segment"].map(totals).astype(int)
    table["stage"] = pd.Categorical(
        [names[i] for i in table["stage_idx"]], categories=names, ordered=True
    )
    last = table["stage_idx"] == len(names) - 1
    table["next_stage"] = [names[i + 1] if i + 1 < len(names) else None for i in table["stage_idx"]]
    table["reach"] = table["users"] / table["users_in_period"]
    with np.errstate(all="ignore"):
        table["conversion"] = np.where(
            last | (table["users"] == 0), np.nan, table["reached_next"] / table["users"]
        )
    lo, hi = wilson(table["reached_next"].to_numpy(), np.where(last, 0, table["users"]))
    table["conversion_ci_low"], table["conversion_ci_high"] = lo, hi
    table.loc[last, "reached_next"] = 0
    table.loc[last, "median_hours_in_stage"] = np.nan
    cols = [
        "segment", "stage", "next_stage", "users_in_period", "users", "reach", "reached_next",
        "conversion", "conversion_ci_low", "conversion_ci_high", "median_hours_in_stage",
    ]  # fmt: skip
    return table[cols].sort_values(["segment", "stage"], kind="stable").reset_index(drop=True)


def _kpi_table(
    frame: pd.DataFrame, stage_map: StageMap, segments: pd.Series | None
) -> pd.DataFrame:
    """One row per (segment, KPI): the KPI's value in the period."""
    kpis = stage_map.kpis()
    codes, labels = _segment_codes(frame, segments)
    segment_names = sorted(labels[np.unique(codes)]) if len(codes) else [ALL_USERS]
    has_value = "value" in frame.columns
    rows = []
    # One vectorised pass per KPI (a handful), never per event; segments as integer codes.
    for kpi in kpis.itertuples(index=False):
        mask = events_matching(frame, kpi.events).to_numpy()
        sub_codes = codes[mask]
        if kpi.measure == "count":
            counts = np.bincount(sub_codes, minlength=len(labels))
            values = pd.Series(counts[counts > 0], index=labels[counts > 0])
        elif kpi.measure == "users":
            values = frame["user_id"][mask].groupby(sub_codes).nunique()
            values.index = labels[values.index.to_numpy()]
        elif has_value:
            values = frame["value"][mask].groupby(sub_codes).sum()
            values.index = labels[values.index.to_numpy()]
        else:
            values = pd.Series(dtype=float)
        for name in segment_names:
            rows.append(
                {"segment": name, "stage": kpi.stage, "kpi": kpi.kpi, "label": kpi.label,
                 "measure": kpi.measure, "value": float(values.get(name, 0.0))}
            )  # fmt: skip
    out = pd.DataFrame(rows, columns=["segment", "stage", "kpi", "label", "measure", "value"])
    out["stage"] = pd.Categorical(out["stage"], categories=stage_map.names, ordered=True)
    return out


def _segment_codes(frame: pd.DataFrame, segments: pd.Series | None) -> tuple[np.ndarray, pd.Index]:
    """Each row's segment (see :func:`label_segments`) as a code into the labels it returns.

    The labels have the type :func:`label_segments` gives them, so tables indexed by
    them are as if grouped on the labels themselves.
    """
    if segments is None:
        return np.zeros(len(frame), dtype=np.intp), pd.Index([ALL_USERS], dtype=object)
    labelled = label_segments(frame, segments)
    codes, labels = pd.factorize(labelled)
    return codes, pd.Index(labels, dtype=labelled.dtype)


def journey_map(
    events: pd.DataFrame,
    stage_map: StageMap | Mapping | str | None = None,
    *,
    month: str | None = None,
    start: Any = None,
    end: Any = None,
    segment: str | pd.Series | None = None,
    compare: Literal["previous"] | None = "previous",
    users: pd.DataFrame | None = None,
    alpha: float = 0.05,
    min_users: int = 0,
    project: Any = None,
) -> JourneyMapResult:
    """Map the journey for a period: KPIs, reach, conversion and time in stage per stage.

    Parameters
    ----------
    events : pandas.DataFrame
        Canonical event log (``user_id``, ``timestamp``, ``event``; ``value``
        for value KPIs).
    stage_map : StageMap, dict or YAML path
        The stages and their KPIs (required, unless ``project`` gives them).
    month : str, optional
        ``"YYYY-MM"``; the period is that calendar month.
    start, end : date-like, optional
        A window ``[start, end)`` instead of ``month``; with neither, all the data.
    segment : str or pandas.Series, optional
        Split by a column of the events (``"platform"``), of ``users``
        (``"acquisition_channel"``, ``"persona"``) or a Series user → segment.
    compare : {"previous", None}
        Compare with the previous period (the previous calendar month for
        ``month=``, else the window of equal length just before).
    users : pandas.DataFrame, optional
        One row per user (``user_id`` plus attributes) for ``segment``.
    alpha : float
        1 − confidence level of the intervals.
    min_users : int
        Small-group suppression for shared reports: segments with fewer than
        ``min_users`` users in the period are left out of the tables and the
        figure, and the summary says how many. 0 (the default) shows every
        segment. Applies with ``segment``.
    project : Project, optional
        The project file, whose ``stage_map`` is used when ``stage_map`` is None.

    Returns
    -------
    JourneyMapResult

    Raises
    ------
    UnknownNameError
        ``segment`` is not a column of the events or of ``users``.
    NotComputableError
        No event in the period, or none that belongs to a stage of the map.

    Examples
    --------
    >>> stages = StageMap.from_dict({"stages": [
    ...     {"name": "consideration", "events": ["visit", "view"]},
    ...     {"name": "purchase", "events": ["cart", "purchase"],
    ...      "kpis": [{"name": "orders", "events": ["purchase"]}]}]})
    >>> ev = pd.DataFrame({"user_id": ["a", "a", "b"], "event": ["visit", "purchase", "view"],
    ...     "timestamp": pd.to_datetime(["2026-10-01", "2026-10-02", "2026-10-03"], utc=True),
    ...     "platform": ["web", "web", "app"]})
    >>> jm = journey_map(ev, stages, month="2026-10", compare=None)
    >>> jm.to_frame()[["stage", "users", "reached_next"]].values.tolist()
    [['consideration', 2, 1], ['purchase', 1, 0]]
    """
    if compare not in ("previous", None):
        raise ParameterError(f"compare == {compare!r}, must be one of ['previous', None].")
    if not isinstance(min_users, (int, np.integer)) or isinstance(min_users, bool) or min_users < 0:
        raise ParameterError(
            f"min_users == {min_users!r}, must be a whole number >= 0 (0 shows every segment)."
        )
    events = prepare_events(events)
    if stage_map is None and project is not None:
        stage_map = project.stage_map
    stage_map = StageMap.coerce(stage_map)
    period = resolve_period(events["timestamp"], month=month, start=start, end=end)
    # The tables read these columns only: the periods are copied without the others.
    read = [
        "user_id",
        "timestamp",
        "event",
        "value",
        *([segment] if isinstance(segment, str) else []),
    ]
    frame = in_period(events, period, read)
    if frame.empty:
        span = (
            f"the data cover {events['timestamp'].min():%Y-%m-%d} to {events['timestamp'].max():%Y-%m-%d}"
            if len(events)
            else "the event log is empty"
        )
        raise NotComputableError(
            f"No events in the period {period.label}; {span}. Choose a period with events."
        )
    require_staged(frame, stage_map, period.label)
    if isinstance(segment, str) and segment not in events.columns:
        if users is None or segment not in users.columns:
            user_segment(events.iloc[0:0], segment, users)  # no table has it: the error lists all
    segments = user_segment(frame, segment, users) if segment is not None else None
    stages = stage_table(frame, stage_map, segments)
    kpis = _kpi_table(frame, stage_map, segments)
    del frame  # the previous period is copied after this one is let go
    previous = None
    if compare == "previous":
        previous = period.previous()
        before = in_period(events, previous, read)
        prev_segments = (
            user_segment(before, segment, users) if segment is not None and len(before) else None
        )
        if len(before):
            prev_stages = stage_table(before, stage_map, prev_segments)
            prev_kpis = _kpi_table(before, stage_map, prev_segments)
        else:
            prev_stages = stages.iloc[0:0]
            prev_kpis = kpis.iloc[0:0]
        stages = _compare_stages(stages, prev_stages, alpha)
        kpis = _compare_kpis(kpis, prev_kpis)
    suppressed = 0
    if min_users and segments is not None:
        sizes = stages.groupby("segment", observed=True)["users_in_period"].first()
        small = set(sizes.index[sizes < min_users])
        suppressed = len(small)
        stages = _drop_segments(stages, small)
        kpis = _drop_segments(kpis, small)
    name = (
        None
        if segment is None
        else (segment if isinstance(segment, str) else (segment.name or "segment"))
    )
    notes = []
    values = list(dict.fromkeys(stages["segment"].astype(str)))
    if segments is not None and len(values) == 1 and not suppressed:
        notes.append(f"Only one value of {name} ({values[0]}) in {period.label}: no comparison.")
    return JourneyMapResult(
        stages=stages,
        kpis=kpis,
        period=period,
        previous=previous,
        segment=name,
        stage_map=stage_map,
        alpha=alpha,
        min_users=int(min_users),
        suppressed_segments=suppressed,
        events=events,
        notes=notes,
    )


def require_staged(frame: pd.DataFrame, stage_map: StageMap, where: str) -> None:
    """Raise :class:`NotComputableError` when no event of ``frame`` belongs to a stage of the map.

    A map written for another vocabulary would otherwise give a journey map of
    zeros; the message lists the events present and the map's names.
    """
    present = [str(e) for e in pd.unique(frame["event"].dropna())]
    if any(stage_map.stage_of(e) is not None for e in present):
        return
    listed = stage_map.event_names()
    close = [f"{n!r}{did_you_mean(n, present)}" for n in listed[:6]]
    shown = ", ".join(repr(e) for e in sorted(present)[:12]) + (" ..." if len(present) > 12 else "")
    source = f" ({stage_map.source})" if stage_map.source else ""
    raise NotComputableError(
        f"No event in {where} belongs to a stage of the stage map{source}: "
        f"the map lists {', '.join(close)}{' ...' if len(listed) > 6 else ''}; the events are {shown}. "
        "Use the stage map written for these events (the project file's stages)."
    )


def _drop_segments(table: pd.DataFrame, segments: set) -> pd.DataFrame:
    """Rows of ``table`` whose segment is not in ``segments`` (unused categories dropped)."""
    out = table.loc[~table["segment"].isin(segments)].reset_index(drop=True)
    if isinstance(out["segment"].dtype, pd.CategoricalDtype):
        out["segment"] = out["segment"].cat.remove_unused_categories()
    return out


def _compare_stages(stages: pd.DataFrame, prev: pd.DataFrame, alpha: float) -> pd.DataFrame:
    keep = prev[["segment", "stage", "users", "reached_next", "conversion"]].rename(
        columns={
            "users": "users_previous",
            "reached_next": "reached_next_previous",
            "conversion": "conversion_previous",
        }
    )
    keep = keep.assign(stage=keep["stage"].astype(str))
    out = stages.assign(stage=stages["stage"].astype(str)).merge(
        keep, on=["segment", "stage"], how="left"
    )
    out["stage"] = pd.Categorical(
        out["stage"], categories=stages["stage"].cat.categories, ordered=True
    )
    out["users_previous"] = out["users_previous"].fillna(0).astype(int)
    out["reached_next_previous"] = out["reached_next_previous"].fillna(0).astype(int)
    out["users_change"] = np.where(
        out["users_previous"] > 0,
        out["users"] / out["users_previous"].where(out["users_previous"] > 0) - 1,
        np.nan,
    )
    trials_now = np.where(out["next_stage"].isna(), 0, out["users"])
    trials_before = np.where(out["next_stage"].isna(), 0, out["users_previous"])
    test = two_proportion(
        out["reached_next"], trials_now, out["reached_next_previous"], trials_before, alpha
    )
    out["conversion_change"] = test["diff"].to_numpy()
    out["conversion_change_ci_low"] = test["diff_ci_low"].to_numpy()
    out["conversion_change_ci_high"] = test["diff_ci_high"].to_numpy()
    out["p_value"] = test["p_value"].to_numpy()
    return out


def _compare_kpis(kpis: pd.DataFrame, prev: pd.DataFrame) -> pd.DataFrame:
    keep = prev[["segment", "kpi", "value"]].rename(columns={"value": "previous"})
    out = kpis.merge(keep, on=["segment", "kpi"], how="left")
    out["previous"] = out["previous"].fillna(0.0)
    with np.errstate(all="ignore"):
        out["change"] = np.where(out["previous"] > 0, out["value"] / out["previous"] - 1, np.nan)
    return out
