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

import fnmatch
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import duckdb
import numpy as np
import pandas as pd
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    test_proportions_2indep,
)

from journeylab.core import sql as engine
from journeylab.core.errors import (
    NotComputableError,
    ParameterError,
    did_you_mean,
    require_columns,
    require_names,
)
from journeylab.core.results import (
    Result,
    fmt_ci,
    fmt_num,
    fmt_p,
    fmt_pct,
    fmt_pp,
    suppression_note,
)
from journeylab.core.safe_text import mpl
from journeylab.core.stages import StageMap
from journeylab.core.timeparse import parse_month, to_utc_series, to_utc_timestamp

__all__ = ["journey_map", "JourneyMapResult", "Period", "resolve_period"]

ALL_USERS = "all users"
UNKNOWN_SEGMENT = "(unknown)"


# ----------------------------------------------------------------------------
# Shared building blocks (also used by pain_points, segments and journey_diff)
# ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Period:
    """A half-open time window ``[start, end)`` in UTC, with a reader-facing label."""

    start: pd.Timestamp
    end: pd.Timestamp
    label: str
    is_month: bool = False

    def previous(self) -> Period:
        """Return the period just before: the previous calendar month, or a window of equal length."""
        if self.is_month:
            month = self.start.tz_convert(None).to_period("M") - 1
            return _month_period(month)
        length = self.end - self.start
        return _window(self.start - length, self.start)

    @property
    def days(self) -> float:
        """Length of the period in days."""
        return (self.end - self.start) / pd.Timedelta(days=1)


def _month_period(month: pd.Period) -> Period:
    start = month.start_time.tz_localize("UTC")
    end = (month + 1).start_time.tz_localize("UTC")
    return Period(start, end, str(month), is_month=True)


def _window(start: pd.Timestamp, end: pd.Timestamp) -> Period:
    # A window that is exactly one calendar month reads, and compares, as that month.
    if start == start.normalize() and start.day == 1:
        month = start.tz_convert(None).to_period("M")
        if end == (month + 1).start_time.tz_localize("UTC"):
            return _month_period(month)
    last = end - pd.Timedelta(days=1) if end == end.normalize() else end
    label = f"{start:%Y-%m-%d} to {last:%Y-%m-%d}"
    return Period(start, end, label)


def resolve_period(
    timestamps: pd.Series | None = None,
    *,
    month: str | pd.Period | None = None,
    start: Any = None,
    end: Any = None,
) -> Period:
    """Turn ``month=`` or ``start=``/``end=`` into a :class:`Period` (end exclusive).

    With neither, the period covers the whole of ``timestamps`` (whole days).

    Examples
    --------
    >>> resolve_period(month="2026-10").label
    '2026-10'
    """
    if month is not None and (start is not None or end is not None):
        raise ParameterError("Give either month= or start=/end=, not both.")
    if month is not None:
        return _month_period(pd.Period(parse_month(month), freq="M"))
    have = timestamps is not None and len(timestamps) > 0
    if start is None:
        if not have:
            raise ParameterError("start= is needed when the events are empty.")
        start = timestamps.min().floor("D")
    if end is None:
        if not have:
            raise ParameterError("end= is needed when the events are empty.")
        end = timestamps.max().floor("D") + pd.Timedelta(days=1)
    start, end = to_utc_timestamp(start, "start"), to_utc_timestamp(end, "end")
    if end <= start:
        raise ParameterError(
            f"end == {end:%Y-%m-%d %H:%M}, must be after start ({start:%Y-%m-%d %H:%M})."
        )
    return _window(start, end)


def prepare_events(events: pd.DataFrame, *, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """Check the required event columns and return the log with UTC timestamps."""
    if not isinstance(events, pd.DataFrame):
        raise ParameterError(f"events must be a pandas DataFrame, not {type(events).__name__}.")
    require_columns(events, ("user_id", "timestamp", "event", *extra), what="events")
    if not isinstance(events["timestamp"].dtype, pd.DatetimeTZDtype):
        events = events.assign(
            timestamp=to_utc_series(events["timestamp"], "timestamp", source="events")
        )
    if not (
        pd.api.types.is_string_dtype(events["user_id"])
        and not pd.api.types.is_object_dtype(events["user_id"])
    ):
        # User ids are text in the data contract; numbers would not match a users table read as text.
        events = events.assign(user_id=events["user_id"].astype(str))
    return events


def in_period(events: pd.DataFrame, period: Period) -> pd.DataFrame:
    """Rows of ``events`` whose timestamp lies in ``period``."""
    ts = events["timestamp"]
    return events.loc[(ts >= period.start) & (ts < period.end)]


def user_segment(
    events: pd.DataFrame,
    segment: str | pd.Series,
    users: pd.DataFrame | None = None,
) -> pd.Series:
    """One segment label per user (index ``user_id``).

    ``segment`` is a column of ``users`` (preferred when present), a column of
    ``events`` (the value on the user's first event that has one) or a Series
    indexed by ``user_id``.
    """
    if isinstance(segment, pd.Series):
        out = segment.copy()
        out.index = out.index.astype(str) if out.index.dtype == object else out.index
        return out.rename(segment.name or "segment")
    if not isinstance(segment, str):
        raise ParameterError(
            f"segment must be a column name or a Series of user → segment, not {type(segment).__name__}."
        )
    if users is not None and segment in users.columns:
        require_columns(users, ("user_id",), what="users")
        table = users.drop_duplicates("user_id").set_index("user_id")[segment]
        table.index = table.index.astype(str)
        return table.rename(segment)
    if segment in events.columns:
        have = events.loc[events[segment].notna(), ["user_id", "timestamp", segment]]
        have = have.sort_values("timestamp", kind="stable")
        return have.groupby("user_id", sort=False)[segment].first().rename(segment)
    candidates = list(events.columns) + (list(users.columns) if users is not None else [])
    require_names(
        [segment], candidates, what="segment",
        absent=f"is not a column of the events{' or the users table' if users is not None else ''}",
        column=None, patterns=False,
        hint="name a column of the events (e.g. 'platform'), pass users= with the column, "
        "or pass a Series mapping user_id to segment.",
    )  # fmt: skip
    raise AssertionError("require_names raises for a name no column has")  # pragma: no cover


def label_segments(frame: pd.DataFrame, segments: pd.Series | None) -> pd.Series:
    """Return the segment label of each row of ``frame`` (``ALL_USERS`` without segments)."""
    if segments is None:
        return pd.Series(ALL_USERS, index=frame.index, dtype=object)
    mapped = frame["user_id"].map(segments)
    return mapped.astype(object).where(mapped.notna(), UNKNOWN_SEGMENT).astype(str)


def stage_index(frame: pd.DataFrame, stage_map: StageMap) -> pd.Series:
    """Position of each row's stage (0-based, -1 when unmapped)."""
    return pd.Series(stage_map.assign(frame).cat.codes.to_numpy(), index=frame.index)


_DATABASE: duckdb.DuckDBPyConnection | None = None


def epoch_ns(timestamps: pd.Series) -> np.ndarray:
    """UTC timestamps as int64 nanoseconds since the epoch (how they travel to DuckDB)."""
    naive = timestamps.dt.tz_convert("UTC").dt.tz_convert(None)
    return naive.to_numpy(dtype="datetime64[ns]").view("int64")


def run_sql(sql: str, ev: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
    """Run ``sql`` over the frame registered as ``ev`` in an embedded DuckDB.

    One in-memory database per process, a fresh cursor per call. Columns
    named ``*_ts`` hold int64 nanoseconds and come back as UTC timestamps
    (NaT for NULL); other NULLs come back as NaN / None.
    """
    global _DATABASE
    if _DATABASE is None:
        _DATABASE = engine.connect()
    with _DATABASE.cursor() as cursor:
        cursor.register("ev", ev)
        raw = cursor.execute(sql, params or {}).fetchnumpy()
    out = {}
    for name, column in raw.items():
        mask = np.ma.getmaskarray(column)
        data = np.ma.getdata(column)
        if name.endswith("_ts"):
            ns = np.where(mask, np.iinfo(np.int64).min, data.astype("int64"))
            out[name] = pd.to_datetime(ns, utc=True)
        elif mask.any():
            out[name] = (
                np.where(mask, np.nan, data.astype(float))
                if data.dtype.kind in "iuf"
                else np.where(mask, None, data)
            )
        else:
            out[name] = data
    return pd.DataFrame(out)


def stage_progress(frame: pd.DataFrame, stage_map: StageMap) -> pd.DataFrame:
    """Per user and stage reached: first event time and first next-stage event at or after it.

    Returns columns ``user_id``, ``stage_idx``, ``first_ts``, ``next_ts`` (NaT
    when the user did not reach the next stage afterwards).
    """
    ev = pd.DataFrame(
        {
            "user_id": frame["user_id"].astype(str),
            "ts": epoch_ns(frame["timestamp"]),
            "stage_idx": stage_index(frame, stage_map),
        }
    )
    ev = ev.loc[ev["stage_idx"] >= 0]
    sql = """
        WITH firsts AS (
            SELECT user_id, stage_idx, min(ts) AS first_ts FROM ev GROUP BY user_id, stage_idx
        )
        SELECT f.user_id, f.stage_idx, f.first_ts, min(e.ts) AS next_ts
        FROM firsts f
        LEFT JOIN ev e
          ON e.user_id = f.user_id AND e.stage_idx = f.stage_idx + 1 AND e.ts >= f.first_ts
        GROUP BY f.user_id, f.stage_idx, f.first_ts
    """
    out = run_sql(sql, ev)
    out["stage_idx"] = out["stage_idx"].astype(int)
    return out


def step_progress(frame: pd.DataFrame, from_mask: pd.Series, to_mask: pd.Series) -> pd.DataFrame:
    """Per user with a "from" event: its first time and the first "to" event at or after it.

    Returns columns ``user_id``, ``first_ts``, ``next_ts`` (NaT when no "to"
    event follows in ``frame``).
    """
    ev = pd.DataFrame(
        {
            "user_id": frame["user_id"].astype(str),
            "ts": epoch_ns(frame["timestamp"]),
            "is_from": np.asarray(from_mask, dtype=bool),
            "is_to": np.asarray(to_mask, dtype=bool),
        }
    )
    ev = ev.loc[ev["is_from"] | ev["is_to"]]
    sql = """
        WITH firsts AS (SELECT user_id, min(ts) AS first_ts FROM ev WHERE is_from GROUP BY user_id)
        SELECT f.user_id, f.first_ts, min(e.ts) AS next_ts
        FROM firsts f
        LEFT JOIN ev e ON e.user_id = f.user_id AND e.is_to AND e.ts >= f.first_ts
        GROUP BY f.user_id, f.first_ts
    """
    return run_sql(sql, ev)


def events_matching(frame: pd.DataFrame, patterns: Iterable[str]) -> pd.Series:
    """Boolean mask of the rows whose event matches one of ``patterns`` (names or shell patterns)."""
    patterns = list(patterns)
    distinct = pd.unique(frame["event"].dropna())
    members = [e for e in distinct if any(fnmatch.fnmatchcase(str(e), p) for p in patterns)]
    return frame["event"].isin(members)


def wilson(
    successes: np.ndarray, trials: np.ndarray, alpha: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval (statsmodels ``proportion_confint(method="wilson")``), NaN where no trials."""
    successes = np.asarray(successes, dtype=float)
    trials = np.asarray(trials, dtype=float)
    lo = np.full(trials.shape, np.nan)
    hi = np.full(trials.shape, np.nan)
    ok = trials > 0
    if ok.any():
        lo[ok], hi[ok] = proportion_confint(successes[ok], trials[ok], alpha=alpha, method="wilson")
    return lo, hi


def two_proportion(
    count_a: np.ndarray, n_a: np.ndarray, count_b: np.ndarray, n_b: np.ndarray, alpha: float = 0.05
) -> pd.DataFrame:
    """Difference ``a − b`` of two proportions: Newcombe interval and pooled z-test p-value.

    The test is statsmodels ``test_proportions_2indep(method="score",
    correction=False)``, the same as ``proportions_ztest`` (R ``prop.test(...,
    correct=FALSE)``). Rows without trials on either side get NaN.
    """
    ca, na, cb, nb = (np.asarray(x, dtype=float) for x in (count_a, n_a, count_b, n_b))
    n_rows = ca.shape[0]
    out = pd.DataFrame(
        {
            "diff": np.full(n_rows, np.nan),
            "diff_ci_low": np.nan,
            "diff_ci_high": np.nan,
            "p_value": np.nan,
        }
    )
    ok = (na > 0) & (nb > 0)
    if ok.any():
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = confint_proportions_2indep(
                ca[ok], na[ok], cb[ok], nb[ok], method="newcombe", alpha=alpha
            )
            test = test_proportions_2indep(
                ca[ok], na[ok], cb[ok], nb[ok], method="score", correction=False
            )
        out.loc[ok, "diff"] = ca[ok] / na[ok] - cb[ok] / nb[ok]
        out.loc[ok, "diff_ci_low"] = np.atleast_1d(lo)
        out.loc[ok, "diff_ci_high"] = np.atleast_1d(hi)
        p = np.atleast_1d(np.asarray(test.pvalue, dtype=float))
        # Identical proportions of 0 or 1 on both sides: nothing to test, no difference.
        same = np.isnan(p) & (ca[ok] / na[ok] == cb[ok] / nb[ok])
        out.loc[ok, "p_value"] = np.where(same, 1.0, p)
    return out


def fmt_count(x: float | None) -> str:
    """Format a count of users or events as a whole number with separators."""
    if x is None or not np.isfinite(x):
        return "–"
    return f"{float(x):,.0f}"


def fmt_duration(hours: float | None) -> str:
    """Format a duration in hours as minutes, hours or days."""
    if hours is None or not np.isfinite(hours):
        return "–"
    if hours < 1:
        return f"{fmt_num(hours * 60)} min"
    if hours < 48:
        return f"{fmt_num(hours)} h"
    return f"{fmt_num(hours / 24)} days"


# ----------------------------------------------------------------------------
# The journey map
# ----------------------------------------------------------------------------
def stage_table(
    frame: pd.DataFrame, stage_map: StageMap, segments: pd.Series | None
) -> pd.DataFrame:
    """One row per (segment, stage): users, reached next, conversion, Wilson CI, median time."""
    names = stage_map.names
    seg_of_row = label_segments(frame, segments)
    totals = frame.assign(segment=seg_of_row).groupby("segment")["user_id"].nunique()
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
    seg = label_segments(frame, segments)
    segment_names = sorted(seg.unique()) if len(seg) else [ALL_USERS]
    distinct = pd.unique(frame["event"].dropna())
    has_value = "value" in frame.columns
    rows = []
    # One vectorised pass per KPI (a handful), never per event.
    for kpi in kpis.itertuples(index=False):
        members = [e for e in distinct if any(fnmatch.fnmatchcase(e, p) for p in kpi.events)]
        mask = frame["event"].isin(members)
        sub = frame.loc[mask]
        sub_seg = seg.loc[mask]
        if kpi.measure == "count":
            values = sub_seg.value_counts()
        elif kpi.measure == "users":
            values = sub["user_id"].groupby(sub_seg).nunique()
        else:
            values = sub["value"].groupby(sub_seg).sum() if has_value else pd.Series(dtype=float)
        for name in segment_names:
            rows.append(
                {"segment": name, "stage": kpi.stage, "kpi": kpi.kpi, "label": kpi.label,
                 "measure": kpi.measure, "value": float(values.get(name, 0.0))}
            )  # fmt: skip
    out = pd.DataFrame(rows, columns=["segment", "stage", "kpi", "label", "measure", "value"])
    out["stage"] = pd.Categorical(out["stage"], categories=stage_map.names, ordered=True)
    return out


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
    frame = in_period(events, period)
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
    segments = user_segment(frame, segment, users) if segment is not None else None
    stages = stage_table(frame, stage_map, segments)
    kpis = _kpi_table(frame, stage_map, segments)
    previous = None
    if compare == "previous":
        previous = period.previous()
        before = in_period(events, previous)
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
    raise NotComputableError(
        f"No event in {where} belongs to a stage of the stage map{f' ({stage_map.source})' if stage_map.source else ''}: "
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


class JourneyMapResult(Result):
    """Stage × KPI journey map for one period, optionally by segment and against the previous period.

    Attributes
    ----------
    stages : pandas.DataFrame
        One row per (segment, stage): ``users_in_period``, ``users``,
        ``reach``, ``reached_next``, ``conversion`` with Wilson
        ``conversion_ci_low``/``_high``, ``median_hours_in_stage``; with a
        comparison also ``users_previous``, ``conversion_previous``,
        ``conversion_change`` (Newcombe interval) and ``p_value``.
    kpis : pandas.DataFrame
        One row per (segment, KPI): ``value`` (and ``previous``, ``change``).
    period, previous : Period
        The period mapped and the one it is compared with.
    notes : list of str
        What the data did not allow (a segment with one value: no comparison).
    """

    title = "Journey map"

    def __init__(
        self,
        *,
        stages,
        kpis,
        period,
        previous,
        segment,
        stage_map,
        alpha,
        min_users=0,
        suppressed_segments=0,
        events=None,
        notes=(),
    ) -> None:
        self.stages = stages
        self.kpis = kpis
        self.period = period
        self.previous = previous
        self.segment = segment
        self.stage_map = stage_map
        self.alpha = alpha
        self.min_users = min_users
        self.suppressed_segments = suppressed_segments
        self._events = events  # the mapped log, kept for canvas(); not copied
        self.notes = list(notes)

    def to_frame(self) -> pd.DataFrame:
        """One row per (segment, stage) with users, conversion, intervals and comparison."""
        return self.stages.copy()

    def kpi_frame(self, wide: bool = False) -> pd.DataFrame:
        """Return the KPIs: tidy, or ``wide=True`` for stage·KPI rows × segment columns."""
        if not wide:
            return self.kpis.copy()
        table = self.kpis.pivot_table(
            index=["stage", "label"], columns="segment", values="value", observed=True, sort=False
        )
        return table.sort_index(level=0, sort_remaining=False)

    def display_frame(self) -> pd.DataFrame:
        """Return the stage table formatted for readers."""
        s = self.stages
        out = pd.DataFrame(
            {
                "segment": s["segment"],
                "stage": s["stage"].astype(str),
                "users": s["users"].map(fmt_count),
                "reach": s["reach"].map(fmt_pct),
                "to next stage": [
                    "–" if pd.isna(c) else f"{fmt_pct(c)} {fmt_ci(lo, hi, fmt_pct)}"
                    for c, lo, hi in zip(
                        s["conversion"],
                        s["conversion_ci_low"],
                        s["conversion_ci_high"],
                        strict=True,
                    )
                ],
                "median time in stage": s["median_hours_in_stage"].map(fmt_duration),
            }
        )
        if "conversion_change" in s:
            out["vs previous"] = [
                "–" if pd.isna(d) else f"{fmt_pp(d)} (p {fmt_p(p)})"
                for d, p in zip(s["conversion_change"], s["p_value"], strict=True)
            ]
        if self.segment is None:
            out = out.drop(columns="segment")
        return out

    def summary(self) -> str:
        """Reach and conversion per stage in words, with the notable changes."""
        s = self.stages
        lines = [
            f"Journey map, {self.period.label}"
            + (f", by {self.segment}" if self.segment else "")
            + "."
        ]
        for name, group in s.groupby("segment", sort=True, observed=True):
            prefix = "" if self.segment is None else f"{name}: "
            n = int(group["users_in_period"].iloc[0])
            parts = []
            for row in group.itertuples(index=False):
                if pd.isna(row.conversion):
                    continue
                parts.append(
                    f"{row.stage} → {row.next_stage} {fmt_pct(row.conversion)} "
                    f"{fmt_ci(row.conversion_ci_low, row.conversion_ci_high, fmt_pct)}"
                )
            lines.append(f"{prefix}{fmt_count(n)} users; " + "; ".join(parts) + ".")
        if "p_value" in s and self.previous is not None:
            if int(s["users_previous"].sum()) == 0:
                lines.append(
                    f"No events in the previous period ({self.previous.label}): no comparison."
                )
            else:
                notable = s.loc[s["p_value"] < self.alpha].sort_values("p_value")
                if notable.empty:
                    lines.append(
                        f"No stage conversion changed significantly against {self.previous.label} (α = {self.alpha})."
                    )
                for row in notable.head(5).itertuples(index=False):
                    who = "" if self.segment is None else f"{row.segment}: "
                    lines.append(
                        f"{who}{row.stage} → {row.next_stage} {fmt_pp(row.conversion_change)} "
                        f"{fmt_ci(row.conversion_change_ci_low, row.conversion_change_ci_high, fmt_pp)} "
                        f"against {self.previous.label} (p {fmt_p(row.p_value)})."
                    )
        if self.suppressed_segments:
            lines.append(suppression_note(self.suppressed_segments, self.min_users))
        lines += self.notes
        return "\n".join(lines)

    def plot(self, ax=None, kind: Literal["kpis", "conversion"] = "kpis"):
        """Heatmap: KPIs (rows) × segments or periods (``kind="kpis"``), or stage conversion × segments.

        Colours are scaled within each row (KPIs differ in units); the
        annotations are the values themselves.
        """
        import seaborn as sns

        from journeylab.core.viz import SEQUENTIAL, new_axes

        if kind not in ("kpis", "conversion"):
            raise ParameterError(f"kind == {kind!r}, must be one of ['kpis', 'conversion'].")
        if self.stages.empty:
            ax = new_axes(ax, figsize=(6, 2.5))
            ax.set_axis_off()
            ax.set_title(
                f"No segment has {self.min_users:,} users or more in {self.period.label}: nothing to show"
            )
            return ax
        if kind == "conversion":
            s = self.stages.loc[self.stages["next_stage"].notna()]
            if self.segment is None and "conversion_previous" in s:
                names = [f"previous ({self.previous.label})", self.period.label]
                index = s["stage"].astype(str)
                values = pd.DataFrame(
                    dict(
                        zip(
                            names,
                            [s["conversion_previous"].to_numpy(), s["conversion"].to_numpy()],
                            strict=True,
                        )
                    ),
                    index=index,
                )
                trials = pd.DataFrame(
                    dict(
                        zip(
                            names,
                            [s["users_previous"].to_numpy(), s["users"].to_numpy()],
                            strict=True,
                        )
                    ),
                    index=index,
                )
            else:
                table = s.assign(stage=s["stage"].astype(str))
                values = table.pivot(index="stage", columns="segment", values="conversion")
                trials = table.pivot(index="stage", columns="segment", values="users")
                order = list(dict.fromkeys(table["stage"]))
                values, trials = values.loc[order], trials.loc[order]
            following = dict(zip(s["stage"].astype(str), s["next_stage"], strict=False))
            values.index = trials.index = [f"{a} → {following[str(a)]}" for a in values.index]
            colour = values.fillna(0.0)
            # Show the base of each rate: a 50% from 2 users is not a 50% from 2,000.
            annot = pd.DataFrame(
                [
                    [
                        f"{fmt_pct(v)}\nn={fmt_count(n)}" if pd.notna(v) else "–"
                        for v, n in zip(vrow, nrow, strict=True)
                    ]
                    for vrow, nrow in zip(values.to_numpy(), trials.to_numpy(), strict=True)
                ],
                index=values.index,
                columns=values.columns,
            )
            title = "Stage-to-stage conversion"
        else:
            values = self.kpi_frame(wide=True)
            values.index = [f"{stage}: {label}" for stage, label in values.index]
            if self.segment is None and "previous" in self.kpis:
                k = self.kpis
                values = pd.DataFrame(
                    {
                        f"previous ({self.previous.label})": k["previous"].to_numpy(),
                        self.period.label: k["value"].to_numpy(),
                    },
                    index=[f"{s}: {lab}" for s, lab in zip(k["stage"], k["label"], strict=True)],
                )
            row_max = values.abs().max(axis=1).replace(0, np.nan)
            colour = values.div(row_max, axis=0).fillna(0.0)
            measure = {
                f"{a}: {b}": m
                for a, b, m in zip(
                    self.kpis["stage"], self.kpis["label"], self.kpis["measure"], strict=True
                )
            }
            is_count = [measure[name] in ("count", "users") for name in values.index]
            annot = pd.DataFrame(
                [[fmt_count(v) if c else fmt_num(v) for v in row] for row, c in zip(values.to_numpy(), is_count, strict=True)],
                index=values.index, columns=values.columns,
            )  # fmt: skip
            title = "Journey map: KPIs"
        row_height = 0.75 if kind == "conversion" else 0.45
        ax = new_axes(
            ax, figsize=(max(5.0, 1.6 * values.shape[1] + 3.5), row_height * values.shape[0] + 1.6)
        )
        # Stage, KPI and segment names come from data or the project file: never mathtext.
        colour = colour.set_axis([mpl(i) for i in colour.index], axis=0)
        colour = colour.set_axis([mpl(c) for c in colour.columns], axis=1)
        sns.heatmap(
            colour.astype(float), annot=annot.to_numpy(), fmt="", cmap=SEQUENTIAL, cbar=False,
            linewidths=0.5, linecolor="white", ax=ax, vmin=0, vmax=1, annot_kws={"fontsize": 9},
        )  # fmt: skip
        ax.grid(False)
        ax.set_title(mpl(f"{title}, {self.period.label}"))
        ax.set_xlabel(mpl(self.segment or ""))
        ax.set_ylabel("")
        ax.tick_params(axis="x", rotation=0)
        ax.tick_params(axis="y", rotation=0)
        return ax
