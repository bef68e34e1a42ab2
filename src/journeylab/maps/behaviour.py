"""One row per user: the journey behaviour that segments and personas are built from.

:func:`user_features` turns the event log into one row per user: touches,
sessions, channel mix, whether and how fast the user converted, and the user's
value of each segment column the caller names (``platform``, ``region``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from journeylab.core.errors import NotComputableError, ParameterError, require_names
from journeylab.core.timeparse import parse_duration
from journeylab.maps.periods import in_period, prepare_events, resolve_period
from journeylab.maps.progress import epoch_ns, run_sql

__all__ = ["user_features", "DEFAULT_FEATURES"]

#: Feature groups used for personas: counts, timing, outcome, channel mix (segments are added).
DEFAULT_FEATURES: tuple[str, ...] = (
    "touches",
    "sessions",
    "journey_days",
    "converted",
    "channel_mix",
)
_LOG_SCALED = ("touches", "sessions", "journey_days")


def _conversions(conversion: str | Sequence[str] | None, project: Any) -> list[str]:
    if conversion is None:
        if project is None:
            raise ParameterError(
                "Name the conversion: conversion='purchase' (the event, or list of events, that "
                "counts as one), or pass project=."
            )
        conversion = list(project.conversion)
    return [conversion] if isinstance(conversion, str) else [str(c) for c in conversion]


def user_features(
    events: pd.DataFrame,
    *,
    conversion: str | Sequence[str] | None = None,
    segments: Sequence[str] = (),
    users: pd.DataFrame | None = None,
    month: str | None = None,
    start: Any = None,
    end: Any = None,
    session_gap: str | pd.Timedelta = "30min",
    project: Any = None,
) -> pd.DataFrame:
    """One row per user with journey features (index ``user_id``).

    Columns: ``touches`` (events with a channel before the first conversion),
    ``sessions`` (distinct ``session_id``; without that column, runs of events
    separated by more than ``session_gap``), ``converted`` (0/1),
    ``days_to_convert`` (NaN for non-converters), ``journey_days`` (days to
    convert, or days from first to last event), ``value`` (sum of ``value`` on
    conversions), ``top_channel``, ``share_<channel>`` (share of touches per
    channel), each column of ``segments`` found in the events (the user's first
    value), and the columns of ``users`` when given.

    Parameters
    ----------
    events : pandas.DataFrame
        Canonical event log.
    conversion : str or sequence of str
        The conversion event(s) (default: the project's).
    segments : sequence of str
        Segment columns of the events (or of ``users``) to describe users by.
    users : pandas.DataFrame, optional
        One row per user; its columns are added.
    month, start, end
        Restrict to a period (default all data).
    session_gap : str or Timedelta
        The inactivity that starts a new session, for logs without ``session_id``.
    project : Project, optional
        The project file: its ``conversion`` and ``session_gap``.

    Examples
    --------
    >>> t = pd.Timestamp("2026-10-01", tz="UTC")
    >>> ev = pd.DataFrame({"user_id": ["a", "a", "b"], "event": ["view", "purchase", "view"],
    ...     "timestamp": [t, t + pd.Timedelta("2h"), t], "channel": ["email", None, "social"],
    ...     "platform": ["app", "app", "web"]})
    >>> f = user_features(ev, conversion="purchase", segments=["platform"])
    >>> f[["touches", "sessions", "converted", "platform"]].to_dict("index")
    ... # doctest: +NORMALIZE_WHITESPACE
    {'a': {'touches': 1, 'sessions': 2, 'converted': 1, 'platform': 'app'},
     'b': {'touches': 1, 'sessions': 1, 'converted': 0, 'platform': 'web'}}
    """
    conversions = _conversions(conversion, project)
    if project is not None and session_gap == "30min":
        session_gap = project.session_gap
    gap = parse_duration(session_gap, "session_gap")
    events = prepare_events(events)
    require_names(
        conversions, pd.unique(events["event"].dropna()), what="conversion event", patterns=False
    )
    segments = [str(c) for c in segments]
    require_names(
        segments, [*events.columns, *(users.columns if users is not None else [])], what="segment",
        absent=f"is not a column of the events{' or the users table' if users is not None else ''}",
        column=None, patterns=False,
    )  # fmt: skip
    if month is not None or start is not None or end is not None:
        events = in_period(
            events, resolve_period(events["timestamp"], month=month, start=start, end=end)
        )
    if events.empty:
        raise NotComputableError("No events to describe users with; choose a period with events.")
    out = _features_sql(events, conversions, [c for c in segments if c in events.columns], gap)
    if users is not None:
        extra = users.drop_duplicates("user_id").set_index("user_id")
        extra.index = extra.index.astype(str)
        for column in extra.columns:
            if column not in out:
                out[column] = extra[column].reindex(out.index)
    return out


def _features_sql(
    events: pd.DataFrame, conversions: list[str], segments: list[str], gap: pd.Timedelta
) -> pd.DataFrame:
    """Compute the per-user aggregates of :func:`user_features`, grouped in DuckDB."""
    cols = {
        "user_id": events["user_id"].astype(str),
        "ts": epoch_ns(events["timestamp"]),
        "event": events["event"].astype(str),
    }
    for name in ("channel", "session_id"):
        cols[name] = (
            events[name].astype(object).where(events[name].notna(), None)
            if name in events
            else None
        )
    seg_cols = {f"seg_{i}": name for i, name in enumerate(segments)}
    for alias, name in seg_cols.items():
        cols[alias] = events[name].astype(str).where(events[name].notna(), None)
    cols["value"] = events["value"].astype(float) if "value" in events else np.nan
    ev = pd.DataFrame(cols)
    sessions = (
        "count(DISTINCT session_id)" if "session_id" in events else "sum(new_session::INTEGER)"
    )
    firsts = "".join(
        f", arg_min({alias}, ts) FILTER (WHERE {alias} IS NOT NULL) AS {alias}"
        for alias in seg_cols
    )
    per_user = f"""
        WITH conv AS (SELECT user_id, min(ts) AS conv_ts FROM ev WHERE list_contains($conv, event) GROUP BY user_id),
        g AS (SELECT ev.*, (lag(ts) OVER (PARTITION BY user_id ORDER BY ts) IS NULL
                            OR ts - lag(ts) OVER (PARTITION BY user_id ORDER BY ts) > $gap) AS new_session
              FROM ev),
        e AS (SELECT g.*, conv.conv_ts, (channel IS NOT NULL AND (conv_ts IS NULL OR ts < conv_ts)) AS touch
              FROM g LEFT JOIN conv USING (user_id))
        SELECT user_id, min(ts) AS first_ts, max(ts) AS last_ts, any_value(e.conv_ts) AS conv_ts,
               count(*) FILTER (WHERE touch) AS touches, {sessions} AS sessions,
               coalesce(sum(value) FILTER (WHERE list_contains($conv, event)), 0) AS value{firsts}
        FROM e GROUP BY user_id ORDER BY user_id
    """
    mix_sql = """
        WITH conv AS (SELECT user_id, min(ts) AS conv_ts FROM ev WHERE list_contains($conv, event) GROUP BY user_id)
        SELECT ev.user_id, channel, count(*) AS n FROM ev LEFT JOIN conv USING (user_id)
        WHERE channel IS NOT NULL AND (conv_ts IS NULL OR ts < conv_ts) GROUP BY ALL
    """
    gap_ns = int(gap.value)
    agg = run_sql(per_user, ev, {"conv": conversions, "gap": gap_ns})
    mix = run_sql(mix_sql, ev, {"conv": conversions})
    out = agg.set_index("user_id")
    out.index.name = "user_id"
    day = pd.Timedelta(days=1)
    table = pd.DataFrame(index=out.index)
    table["touches"] = out["touches"].astype(int)
    table["sessions"] = out["sessions"].astype(int)
    table["converted"] = out["conv_ts"].notna().astype(int)
    table["days_to_convert"] = (out["conv_ts"] - out["first_ts"]) / day
    table["journey_days"] = table["days_to_convert"].fillna(
        (out["last_ts"] - out["first_ts"]) / day
    )
    if "value" in events:
        table["value"] = out["value"].astype(float)
    for alias, name in seg_cols.items():
        table[name] = out[alias]
    if len(mix):
        shares = mix.pivot_table(
            index="user_id", columns="channel", values="n", aggfunc="sum", fill_value=0
        )
        shares = shares.div(shares.sum(axis=1), axis=0).reindex(table.index, fill_value=0.0)
        table["top_channel"] = shares.idxmax(axis=1).where(table["touches"] > 0)
        for channel in sorted(shares.columns):
            table[f"share_{channel}"] = shares[channel].to_numpy()
    return table


def _profile(
    features: pd.DataFrame, labels: pd.Series, segments: Sequence[str] = ()
) -> pd.DataFrame:
    grouped = features.groupby(labels, sort=False)
    table = pd.DataFrame(
        {
            "users": grouped.size(),
            "touches": grouped["touches"].mean(),
            "sessions": grouped["sessions"].mean(),
            "conversion": grouped["converted"].mean(),
            "median_days_to_convert": grouped["days_to_convert"].median(),
        }
    )
    table["share"] = table["users"] / table["users"].sum()
    for column in segments:
        if column in features and features[column].notna().any():
            counts = pd.crosstab(labels, features[column], normalize="index")
            table[f"main_{column}"] = counts.idxmax(axis=1)
            table[f"main_{column}_share"] = counts.max(axis=1)
    return table
