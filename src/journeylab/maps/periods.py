"""Periods and segments shared by the maps: the time window of a map and each user's segment in it.

Used by :func:`journeylab.maps.journey_maps.journey_map` and by pain points,
segments, journey comparisons and the canvas.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from journeylab.core.errors import ParameterError, require_columns, require_names
from journeylab.core.timeparse import parse_month, to_utc_series, to_utc_timestamp
from journeylab.maps.progress import user_numbers

__all__ = [
    "Period",
    "resolve_period",
    "ALL_USERS",
    "UNKNOWN_SEGMENT",
    "prepare_events",
    "in_period",
    "user_segment",
    "label_segments",
]


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


def in_period(
    events: pd.DataFrame, period: Period, columns: Iterable[str] | None = None
) -> pd.DataFrame:
    """Rows of ``events`` whose timestamp lies in ``period``.

    ``columns``: copy only these columns (those of them ``events`` has, in its
    order); a month of a wide log is then copied once, narrowly.
    """
    ts = events["timestamp"]
    inside = (ts >= period.start) & (ts < period.end)
    if columns is not None:
        wanted = set(columns)
        events = events[[c for c in events.columns if c in wanted]]
    return events.loc[inside]


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
        return first_values(events, [segment])[segment]
    candidates = list(events.columns) + (list(users.columns) if users is not None else [])
    require_names(
        [segment], candidates, what="segment",
        absent=f"is not a column of the events{' or the users table' if users is not None else ''}",
        column=None, patterns=False,
        hint="name a column of the events (e.g. 'platform'), pass users= with the column, "
        "or pass a Series mapping user_id to segment.",
    )  # fmt: skip
    raise AssertionError("require_names raises for a name no column has")  # pragma: no cover


def first_values(events: pd.DataFrame, columns: Iterable[str]) -> dict[str, pd.Series]:
    """Each user's first non-missing value of each of ``columns`` (by time, ties in row order).

    For each column, the same as sorting the rows that have a value by time
    (stable, missing times last) and taking ``groupby("user_id",
    sort=False)[column].first()``: users come in the order of their first such
    row. The users are numbered and the rows ordered by time once for every
    column, on integer codes and row positions, so no text column is copied or
    sorted.
    """
    columns = list(columns)
    ts = events["timestamp"]
    ids = events["user_id"]
    if not isinstance(ts.array, pd.arrays.DatetimeArray) or ids.dtype == object:
        # other time storage (Arrow, text) or Python-object ids, whose grouped index
        # pandas infers anew: the definition itself
        out = {}
        for column in columns:
            have = events.loc[events[column].notna(), ["user_id", "timestamp", column]]
            have = have.sort_values("timestamp", kind="stable")
            out[column] = have.groupby("user_id", sort=False)[column].first().rename(column)
        return out
    codes = user_numbers(ids)  # the month's numbering, when the search has made it
    rows = np.flatnonzero(codes >= 0)
    ns = ts.array.asi8[rows]
    missing = ts.isna().to_numpy()[rows]
    if missing.any():
        ns = np.where(missing, np.iinfo(np.int64).max, ns)  # missing times sort last
    by_time = rows[np.argsort(ns, kind="stable")]
    slots = np.full(int(codes.max(initial=-1)) + 1, -1, dtype=np.int64)
    users = ids.array
    out = {}
    for column in columns:
        values = events[column]
        # the rows with a value, still in time order (a subset of a stable order is one)
        order = by_time[values.notna().to_numpy()[by_time]]
        ranked = codes[order]
        first = slots.copy()
        first[ranked[::-1]] = np.arange(len(ranked) - 1, -1, -1)  # the smallest position wins
        chosen = order[np.sort(first[first >= 0])]
        index = pd.Index(users.take(chosen), name="user_id", dtype=ids.dtype)
        out[column] = pd.Series(
            values.array.take(chosen), index=index, name=column, dtype=values.dtype
        )
    return out


def label_segments(frame: pd.DataFrame, segments: pd.Series | None) -> pd.Series:
    """Return the segment label of each row of ``frame`` (``ALL_USERS`` without segments)."""
    if segments is None:
        return pd.Series(ALL_USERS, index=frame.index, dtype=object)
    mapped = frame["user_id"].map(segments)
    return mapped.astype(object).where(mapped.notna(), UNKNOWN_SEGMENT).astype(str)
