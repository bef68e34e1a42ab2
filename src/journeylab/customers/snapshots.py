"""Feature tables at snapshot dates: journey features for conversion, purchase history for churn.

- :func:`propensity_features` turns an event log into one row per user and
  snapshot date (``as_of``): journey features observed strictly before
  ``as_of`` and the label ``converted`` (a first conversion in the
  ``horizon_days`` after ``as_of``). Users who converted before ``as_of`` are
  not at risk and are left out. The grouping runs as DuckDB SQL.
- :func:`churn_features` does the same for customers from a transactions
  table (recency, frequency, tenure, spend) with the label ``churned`` (no
  purchase in the ``horizon_days`` after ``as_of``).

Both tables feed :func:`journeylab.customers.propensity.fit_propensity`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import duckdb
import pandas as pd

from journeylab.core import sql as engine
from journeylab.core.errors import (
    NotComputableError,
    ParameterError,
    check_range,
    require_columns,
    require_names,
)
from journeylab.core.sql import quote_ident
from journeylab.core.timeparse import to_utc_timestamp

__all__ = ["propensity_features", "churn_features"]

#: Columns of the propensity table that are not read off the data's vocabulary.
_FIXED = ("user_id", "as_of", "first_touch", "sessions", "converted")

#: Default cap on ``touches_<channel>`` columns and on ``n_<event>`` columns (each).
MAX_COUNTS = 20

#: Default support: the share of users (before their first conversion and the last
#: snapshot) who must carry an event or channel for it to become a count column.
MIN_SHARE = 0.01


def _as_of_list(as_of: Any) -> list[pd.Timestamp]:
    values = (
        [as_of]
        if isinstance(as_of, (str, pd.Timestamp)) or not isinstance(as_of, Sequence)
        else list(as_of)
    )
    out = [to_utc_timestamp(v, "as_of") for v in values]
    if not out:
        raise ParameterError("as_of is empty; give one date or a list of snapshot dates.")
    return sorted(set(out))


def _end(observed_until: Any, timestamps: pd.Series) -> pd.Timestamp:
    if observed_until is None:
        return timestamps.max()
    return to_utc_timestamp(observed_until, "observed_until")


def _snapshot_frame(dates: list[pd.Timestamp]) -> pd.DataFrame:
    return pd.DataFrame({"as_of": pd.to_datetime(dates, utc=True).astype("datetime64[us, UTC]")})


def _check_horizon(
    dates: list[pd.Timestamp], horizon_days: float, data_end: pd.Timestamp, what: str
) -> None:
    check_range("horizon_days", horizon_days, low=0)
    late = [
        d for d in dates if d + pd.Timedelta(days=horizon_days) > data_end + pd.Timedelta(seconds=1)
    ]
    if late:
        raise ParameterError(
            f"as_of {late[0].date()} + horizon_days ({horizon_days:g}) runs past the end of the {what} "
            f"({data_end}); its labels would be incomplete. Use snapshot dates up to "
            f"{(data_end - pd.Timedelta(days=horizon_days)).date()} or a shorter horizon."
        )


def _fetch(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> pd.DataFrame:
    with warnings.catch_warnings():
        # duckdb's pandas conversion uses a keyword pandas 3.1 deprecates; nothing to act on here.
        warnings.filterwarnings("ignore", message=".*inplace keyword.*")
        return con.execute(sql, params).df()


def _sql_name(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in str(text).lower()).strip("_") or "none"


def _conversion_names(conversion_event: Any, project: Any) -> list[str]:
    """Return the conversion event(s): as given, else the project's (or journey rules')."""
    if conversion_event is None and project is not None:
        conversion_event = getattr(project, "conversion", None) or getattr(
            project, "conversions", None
        )
    if conversion_event is None or (not isinstance(conversion_event, str) and not conversion_event):
        raise ParameterError(
            "Name the conversion: conversion_event='purchase' (the event, or list of events, that "
            "counts as converting), or pass project= (the project file's journey.conversion)."
        )
    if isinstance(conversion_event, str):
        return [conversion_event]
    return list(dict.fromkeys(str(c) for c in conversion_event))


def _unique_names(prefix: str, values: Sequence[str], taken: set[str]) -> dict[str, str]:
    """Name a column per value (``prefix`` + the SQL-safe value); clashes get ``_2``, ``_3``."""
    out = {}
    for value in values:
        base = prefix + _sql_name(value)
        name, i = base, 2
        while name in taken:
            name, i = f"{base}_{i}", i + 1
        taken.add(name)
        out[value] = name
    return out


def _supported(users_with: pd.Series, n_users: int, *, min_share: float, cap: int) -> list[str]:
    """Names carried by at least ``min_share`` of users, the ``cap`` most widespread (ties by name)."""
    if n_users == 0:
        return []
    share = users_with / n_users
    ranked = sorted(
        (str(k) for k, v in share.items() if v >= min_share), key=lambda k: (-share[k], k)
    )
    return ranked[:cap]


def propensity_features(
    events: pd.DataFrame,
    *,
    as_of: Any,
    conversion_event: str | Sequence[str] | None = None,
    project: Any = None,
    horizon_days: float = 30,
    users: pd.DataFrame | None = None,
    touch_events: Sequence[str] | str | None = None,
    channels: Sequence[str] | None = None,
    count_events: Sequence[str] | None = None,
    segments: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
    min_share: float = MIN_SHARE,
    max_counts: int = MAX_COUNTS,
    active_days: float | None = None,
    observed_until: Any = None,
) -> pd.DataFrame:
    """Journey features per user at one or more snapshot dates, with the conversion label.

    The features come from the data's own vocabulary, never from a list of event
    names built into the library:

    - ``touches_<channel>``: the user's *touch events* through each channel. Touch
      events are ``touch_events`` (``"all"``: every event), by default every event
      that carries a channel in some row. A channel gets its own column when at
      least ``min_share`` of the users carry a touch through it (counted before their
      first conversion and before the last snapshot); the ``max_counts`` most
      widespread are kept (ties by name) and the other channels' touches are summed
      in ``touches_other``.
    - ``n_<event>``: the number of times the user did each other event (not a touch
      event, not a conversion), with the same support rule and cap.
    - ``sessions`` (distinct ``session_id``, when the log has them),
      ``days_since_first_touch``, ``days_since_last_touch``.
    - one column per *segment* column named by ``segments`` (or the project's
      ``segments`` found in the data, ``channel`` left out): the user's value in the
      ``users`` table when it has the column, else their last value in the events.
    - ``<column>_max`` and ``has_<column>`` per *numeric* column named by ``columns``
      (or the source columns of the project's banded segments, such as a response
      time): the largest value the user had before ``as_of`` (0 when none) and
      whether they had one.

    Column names are the values made SQL-safe (lower case, other characters ``_``);
    two values that give the same name are told apart by ``_2``, ``_3``.
    ``attrs["vocabulary"]`` records the lists used (``touch_events``, ``channels``,
    ``count_events``, ``segments``, ``columns``): pass them back
    (``propensity_features(later, ..., **table.attrs["vocabulary"])``) to build
    features with the same columns on other dates, as scoring a fitted model needs.

    Parameters
    ----------
    events : pandas.DataFrame
        Canonical event log (``user_id``, ``timestamp``, ``event``; ``channel`` and
        ``session_id`` are used when present).
    as_of : date or list of dates
        Snapshot dates. Features use events strictly before ``as_of``; several
        dates give several rows per user (one per snapshot where the user is at risk).
    conversion_event : str or sequence of str, optional
        The event(s) that count as converting. Required unless ``project`` is given.
    project : Project, optional
        The project file (or journey rules): its conversion(s), segments and the
        numeric columns of its banded segments.
    horizon_days : float
        Label window: ``converted`` is 1 when the user's first conversion falls in
        ``[as_of, as_of + horizon_days)``.
    users : pandas.DataFrame, optional
        One row per user; segment columns it holds replace the event-log values.
    touch_events, channels, count_events : sequence of str, optional
        Override the lists read off the data (see above).
    segments, columns : sequence of str, optional
        Categorical and numeric columns to describe users by (default: the project's,
        else none).
    min_share : float
        Support a channel or event needs to become a column (share of users).
    max_counts : int
        Most ``touches_<channel>`` columns, and most ``n_<event>`` columns.
    active_days : float, optional
        Keep only users with an event in the ``active_days`` before ``as_of``
        (default: every user seen before ``as_of`` who has not converted).
    observed_until : date, optional
        End of the observation period (default: the last event). A snapshot whose
        label window runs past it is refused, since its labels would be incomplete.

    Returns
    -------
    pandas.DataFrame
        ``user_id``, ``as_of``, ``first_touch``, the feature columns above and
        ``converted``. ``attrs["horizon_days"]`` records the label window for
        :func:`~journeylab.customers.propensity.fit_propensity`.

    Examples
    --------
    >>> ev = pd.DataFrame({"user_id": ["a", "a", "a", "b", "b"],
    ...                    "event": ["visit", "cart", "order", "visit", "visit"],
    ...                    "channel": ["email", None, None, "social", "social"],
    ...                    "timestamp": pd.to_datetime(["2026-05-01 09:00", "2026-05-01 10:00", "2026-05-03 09:00",
    ...                                                 "2026-05-01 09:00", "2026-05-01 12:00"], utc=True)})
    >>> feats = propensity_features(ev, as_of="2026-05-02", conversion_event="order",
    ...                             horizon_days=5, observed_until="2026-05-31")
    >>> feats[["user_id", "touches_email", "touches_social", "n_cart", "converted"]].values.tolist()
    [['a', 1, 0, 1, 1], ['b', 0, 2, 0, 0]]
    >>> feats.attrs["vocabulary"]["count_events"]
    ['cart']
    """
    if not isinstance(events, pd.DataFrame):
        raise ParameterError(f"events must be a pandas DataFrame, not {type(events).__name__}.")
    require_columns(events, ["user_id", "timestamp", "event"], what="events")
    conversions = _conversion_names(conversion_event, project)
    check_range("min_share", min_share, low=0, high=1)
    if isinstance(max_counts, bool) or int(max_counts) != max_counts or max_counts < 0:
        raise ParameterError(f"max_counts == {max_counts!r}, must be a whole number >= 0.")
    dates = _as_of_list(as_of)
    present = pd.unique(events["event"].dropna().astype(str))
    require_names(conversions, present, what="conversion event", patterns=False)
    user_columns = [] if users is None else [str(c) for c in users.columns]
    if segments is None:
        segments = [
            s
            for s in getattr(project, "segments", ())
            if s != "channel" and (s in events.columns or s in user_columns)
        ]
    if columns is None:
        columns = [d.column for d in getattr(project, "derived", ()) if d.column in events.columns]
    segments = list(dict.fromkeys(str(s) for s in segments))
    columns = list(dict.fromkeys(str(c) for c in columns))
    require_names(
        segments, [*events.columns, *user_columns], what="segment", column=None, patterns=False,
        absent=f"is not a column of the events{' or the users table' if users is not None else ''}",
    )  # fmt: skip
    require_names(
        columns, events.columns, what="numeric column", column=None, patterns=False,
        absent="is not a column of the events",
    )  # fmt: skip
    reserved = [c for c in [*segments, *columns] if c in _FIXED]
    if reserved:
        raise ParameterError(
            f"{reserved[0]!r} cannot be a feature column: the table uses that name."
        )

    ts = pd.to_datetime(events["timestamp"], utc=True).astype("datetime64[us, UTC]")
    _check_horizon(dates, horizon_days, _end(observed_until, ts), "event log")
    ev = pd.DataFrame(
        {
            "user_id": events["user_id"].astype(str),
            "timestamp": ts,
            "event": events["event"].astype(str),
        },
        index=events.index,
    )
    for name in ("channel", "session_id"):
        values = events[name] if name in events.columns else pd.Series(None, index=events.index)
        ev[name] = values.astype("object").where(values.notna(), None)
    seg_alias = {s: f"seg_{i}" for i, s in enumerate(segments)}
    for s, alias in seg_alias.items():
        if s in events.columns:
            ev[alias] = events[s].astype(str).where(events[s].notna(), None).astype("object")
    num_alias = {c: f"num_{i}" for i, c in enumerate(columns)}
    for c, alias in num_alias.items():
        ev[alias] = pd.to_numeric(events[c], errors="coerce").astype(float)
    ev = ev.reset_index(drop=True)

    # The vocabulary: what users did before their first conversion and the last snapshot.
    first_conv = ev.loc[ev["event"].isin(conversions)].groupby("user_id")["timestamp"].min()
    limit = ev["user_id"].map(first_conv).fillna(max(dates))
    before = ev[(ev["timestamp"] < limit.where(limit < max(dates), max(dates)))]
    n_users = before["user_id"].nunique()
    if touch_events is None:
        touch_events = sorted(before.loc[before["channel"].notna(), "event"].unique())
    elif isinstance(touch_events, str):
        touch_events = sorted(before["event"].unique()) if touch_events == "all" else [touch_events]
    touches = [str(e) for e in dict.fromkeys(touch_events) if str(e) not in conversions]
    is_touch = before["event"].isin(touches) & before["channel"].notna()
    if channels is None:
        reach = before.loc[is_touch].groupby("channel")["user_id"].nunique()
        channels = _supported(reach, n_users, min_share=min_share, cap=int(max_counts))
    channels = [str(c) for c in dict.fromkeys(channels)]
    other_touches = bool(is_touch.any()) and not set(before.loc[is_touch, "channel"]) <= set(
        channels
    )
    if count_events is None:
        rest = before[~before["event"].isin(touches)]
        reach = rest.groupby("event")["user_id"].nunique()
        count_events = _supported(reach, n_users, min_share=min_share, cap=int(max_counts))
    count_events = [str(e) for e in dict.fromkeys(count_events) if str(e) not in conversions]

    taken = set(_FIXED) | {"days_since_first_touch", "days_since_last_touch"} | set(segments)
    taken |= {f"{c}_max" for c in columns} | {f"has_{c}" for c in columns}
    channel_cols = _unique_names("touches_", channels, taken)
    other_col = _unique_names("touches_", ["other"], taken)["other"] if other_touches else None
    event_cols = _unique_names("n_", count_events, taken)
    has_sessions = bool(ev["session_id"].notna().any())
    # Flags computed once, vectorised, rather than a list look-up per row and column in SQL.
    ev["is_conversion"] = ev["event"].isin(conversions)
    ev["is_touch"] = ev["event"].isin(touches) & ev["channel"].notna()
    ev["other_touch"] = ev["is_touch"] & ~ev["channel"].isin(channels)

    params: list[Any] = []
    parts = []
    for c, name in channel_cols.items():
        parts.append(f"count(*) FILTER (WHERE is_touch AND channel = ?) AS {quote_ident(name)}")
        params.append(c)
    if other_col is not None:
        parts.append(f"count(*) FILTER (WHERE other_touch) AS {quote_ident(other_col)}")
    if has_sessions:
        parts.append("count(DISTINCT session_id) AS sessions")
    for e, name in event_cols.items():
        parts.append(f"count(*) FILTER (WHERE event = ?) AS {quote_ident(name)}")
        params.append(e)
    for c, alias in num_alias.items():
        parts.append(f"coalesce(max({alias}), 0) AS {quote_ident(c + '_max')}")
        parts.append(f"CAST(count({alias}) > 0 AS INTEGER) AS {quote_ident('has_' + c)}")
    for s, alias in seg_alias.items():
        if s in events.columns:
            parts.append(
                f"arg_max({alias}, timestamp) FILTER (WHERE {alias} IS NOT NULL) AS {quote_ident(s)}"
            )
    active = None if active_days is None else float(active_days)
    params += [float(horizon_days), active, active]
    selected = "".join(part + ",\n" for part in parts)
    snaps = _snapshot_frame(dates)
    with engine.connect() as con:
        con.register("ev", ev)
        con.register("snaps", snaps)
        sql = f"""
            WITH conv AS (
                SELECT user_id, min(timestamp) AS first_conversion FROM ev
                WHERE is_conversion GROUP BY user_id
            ),
            past AS (
                SELECT s.as_of, e.* FROM ev e JOIN snaps s ON e.timestamp < s.as_of
            ),
            feats AS (
                SELECT as_of, user_id, min(timestamp) AS first_touch,
                    {selected}
                    date_diff('second', min(timestamp), as_of) / 86400.0 AS days_since_first_touch,
                    date_diff('second', max(timestamp), as_of) / 86400.0 AS days_since_last_touch
                FROM past GROUP BY as_of, user_id
            )
            SELECT f.*,
                CASE WHEN c.first_conversion < f.as_of + to_microseconds(CAST(? * 86400e6 AS BIGINT))
                     THEN 1 ELSE 0 END AS converted
            FROM feats f LEFT JOIN conv c USING (user_id)
            WHERE (c.first_conversion IS NULL OR c.first_conversion >= f.as_of)
              AND (? IS NULL OR f.days_since_last_touch <= ?)
            ORDER BY f.as_of, f.user_id
        """
        table = _fetch(con, sql, params)
    if table.empty:
        last = max(dates)
        seen = int((ev.groupby("user_id")["timestamp"].min() < last).sum())
        converted = int((first_conv < last).sum())
        raise NotComputableError(
            f"No user is at risk at the snapshot dates ({min(dates).date()} to {last.date()}): every user "
            f"either has no event before them or had already converted with {', '.join(map(repr, conversions))} "
            f"({seen:,} users seen, {converted:,} already converted). With purchase-only data every "
            "customer converts at their first event, so there is no one left to predict."
        )
    if users is not None:
        require_columns(users, ["user_id"], what="users")
        lookup = (
            users.assign(user_id=users["user_id"].astype(str))
            .drop_duplicates("user_id")
            .set_index("user_id")
        )
        for s in segments:
            if s in lookup.columns:
                table[s] = table["user_id"].map(lookup[s]).astype("object")
    counts = [
        *channel_cols.values(),
        *([other_col] if other_col else []),
        *(["sessions"] if has_sessions else []),
        *event_cols.values(),
        *(f"has_{c}" for c in columns),
        "converted",
    ]
    table[counts] = table[counts].astype("int64")
    table["as_of"] = pd.to_datetime(table["as_of"], utc=True)
    table["first_touch"] = pd.to_datetime(table["first_touch"], utc=True)
    order = [
        "user_id", "as_of", "first_touch", *counts[:-1],
        *(n for c in columns for n in (f"{c}_max",)), "days_since_first_touch",
        "days_since_last_touch", *segments, "converted",
    ]  # fmt: skip
    table = table[order]
    table.attrs["horizon_days"] = float(horizon_days)
    table.attrs["target"] = "converted"
    table.attrs["vocabulary"] = {
        "touch_events": touches,
        "channels": channels,
        "count_events": count_events,
        "segments": segments,
        "columns": columns,
    }
    return table


def churn_features(
    transactions: pd.DataFrame,
    *,
    as_of: Any,
    horizon_days: float = 90,
    observed_until: Any = None,
) -> pd.DataFrame:
    """Purchase-history features per customer at snapshot dates, with the churn label.

    A customer is at risk at ``as_of`` when they bought at least once before it;
    ``churned`` is 1 when they make no purchase in ``[as_of, as_of + horizon_days)``.

    Parameters
    ----------
    transactions : pandas.DataFrame
        ``user_id``, ``timestamp``, ``value`` (one row per purchase).
    as_of : date or list of dates
        Snapshot dates.
    horizon_days : float
        Length of the churn window.
    observed_until : date, optional
        End of the observation period (default: the last purchase).

    Returns
    -------
    pandas.DataFrame
        ``user_id``, ``as_of``, ``first_purchase``, ``purchases``, ``recency_days``,
        ``tenure_days``, ``mean_value``, ``total_value``, ``churned``.

    Examples
    --------
    >>> tx = pd.DataFrame({"user_id": ["a", "a", "b"], "value": [10.0, 20.0, 5.0],
    ...                    "timestamp": pd.to_datetime(["2026-01-01", "2026-03-01", "2026-01-05"], utc=True)})
    >>> feats = churn_features(tx, as_of="2026-02-01", horizon_days=30, observed_until="2026-03-31")
    >>> feats[["user_id", "churned"]].values.tolist()
    [['a', 0], ['b', 1]]
    """
    if not isinstance(transactions, pd.DataFrame):
        raise ParameterError(
            f"transactions must be a pandas DataFrame, not {type(transactions).__name__}."
        )
    require_columns(transactions, ["user_id", "timestamp", "value"], what="transactions")
    dates = _as_of_list(as_of)
    tx = pd.DataFrame(
        {
            "user_id": transactions["user_id"].astype(str),
            "timestamp": pd.to_datetime(transactions["timestamp"], utc=True).astype(
                "datetime64[us, UTC]"
            ),
            "value": pd.to_numeric(transactions["value"], errors="coerce").astype(float),
        }
    )
    _check_horizon(dates, horizon_days, _end(observed_until, tx["timestamp"]), "transactions")
    with engine.connect() as con:
        con.register("tx", tx)
        con.register("snaps", _snapshot_frame(dates))
        table = _fetch(
            con,
            """
            WITH joined AS (SELECT s.as_of, t.* FROM tx t JOIN snaps s ON t.timestamp < s.as_of),
            past AS (
                SELECT as_of, user_id, min(timestamp) AS first_purchase, count(*) AS purchases,
                    date_diff('second', max(timestamp), as_of) / 86400.0 AS recency_days,
                    date_diff('second', min(timestamp), as_of) / 86400.0 AS tenure_days,
                    avg(value) AS mean_value, sum(value) AS total_value
                FROM joined GROUP BY as_of, user_id
            ),
            future AS (
                SELECT s.as_of, t.user_id, count(*) AS n_future FROM tx t JOIN snaps s
                  ON t.timestamp >= s.as_of AND t.timestamp < s.as_of + to_microseconds(CAST(? * 86400e6 AS BIGINT))
                GROUP BY s.as_of, t.user_id
            )
            SELECT p.*, CASE WHEN f.n_future IS NULL THEN 1 ELSE 0 END AS churned
            FROM past p LEFT JOIN future f USING (as_of, user_id)
            ORDER BY p.as_of, p.user_id
            """,
            [float(horizon_days)],
        )
    if table.empty:
        raise NotComputableError("No customer bought anything before the snapshot dates.")
    table["as_of"] = pd.to_datetime(table["as_of"], utc=True)
    table["first_purchase"] = pd.to_datetime(table["first_purchase"], utc=True)
    table[["purchases", "churned"]] = table[["purchases", "churned"]].astype("int64")
    table.attrs["horizon_days"] = float(horizon_days)
    table.attrs["target"] = "churned"
    return table
