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
import numpy as np
import pandas as pd

from journeylab.core import sql as engine
from journeylab.core.errors import (
    NotComputableError,
    ParameterError,
    check_range,
    require_columns,
)
from journeylab.core.sql import quote_ident, quote_list, quote_literal
from journeylab.core.timeparse import to_utc_timestamp

__all__ = ["propensity_features", "churn_features"]

_TOUCH_EVENTS = ("ad_impression", "site_visit", "phone_call")
_COUNTED_EVENTS = {
    "service_page_view": "service_page_views",
    "quote_request": "quote_requests",
    "phone_call": "phone_calls",
    "booking_started": "booking_starts",
}


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


def propensity_features(
    events: pd.DataFrame,
    *,
    as_of: Any,
    horizon_days: float = 30,
    users: pd.DataFrame | None = None,
    conversion_event: str = "booking_completed",
    touch_events: Sequence[str] = _TOUCH_EVENTS,
    slow_minutes: float = 60,
    active_days: float | None = None,
    observed_until: Any = None,
) -> pd.DataFrame:
    """Journey features per user at one or more snapshot dates, with the conversion label.

    Parameters
    ----------
    events : pandas.DataFrame
        Canonical event log (``user_id``, ``timestamp``, ``event``; ``channel``,
        ``session_id``, ``device``, ``response_minutes`` are used when present).
    as_of : date or list of dates
        Snapshot dates. Features use events strictly before ``as_of``; several
        dates give several rows per user (one per snapshot where the user is at risk).
    horizon_days : float
        Label window: ``converted`` is 1 when the user's first ``conversion_event``
        falls in ``[as_of, as_of + horizon_days)``.
    users : pandas.DataFrame, optional
        One row per user; its ``device`` (and ``region``) replace the event-log values.
    conversion_event : str
        The event that counts as converting.
    touch_events : sequence of str
        Marketing touches counted per channel (``touches_<channel>``).
    slow_minutes : float
        A call-back slower than this marks ``slow_callback``.
    active_days : float, optional
        Keep only users with an event in the ``active_days`` before ``as_of``
        (default: every user seen before ``as_of`` who has not converted).
    observed_until : date, optional
        End of the observation period (default: the last event). A snapshot whose
        label window runs past it is refused, since its labels would be incomplete.

    Returns
    -------
    pandas.DataFrame
        ``user_id``, ``as_of``, ``first_touch``, ``touches_<channel>``…, ``sessions``,
        ``service_page_views``, ``quote_requests``, ``phone_calls``, ``booking_starts``,
        ``had_callback``, ``slow_callback``, ``days_since_first_touch``,
        ``days_since_last_touch``, ``device``, ``converted``. ``attrs["horizon_days"]``
        records the label window for :func:`fit_propensity`.

    Examples
    --------
    >>> ev = pd.DataFrame({"user_id": ["a", "a", "b"], "event": ["site_visit", "booking_completed", "site_visit"],
    ...                    "channel": ["email", None, "social"],
    ...                    "timestamp": pd.to_datetime(["2026-05-01", "2026-05-03", "2026-05-01"], utc=True)})
    >>> feats = propensity_features(ev, as_of="2026-05-02", horizon_days=5, observed_until="2026-05-31")
    >>> feats[["user_id", "converted"]].values.tolist()
    [['a', 1], ['b', 0]]
    """
    if not isinstance(events, pd.DataFrame):
        raise ParameterError(f"events must be a pandas DataFrame, not {type(events).__name__}.")
    require_columns(events, ["user_id", "timestamp", "event"], what="events")
    dates = _as_of_list(as_of)
    ev = events.copy()
    ev["timestamp"] = pd.to_datetime(ev["timestamp"], utc=True)
    _check_horizon(dates, horizon_days, _end(observed_until, ev["timestamp"]), "event log")
    for col, default in [
        ("channel", None),
        ("session_id", None),
        ("device", None),
        ("response_minutes", np.nan),
    ]:
        if col not in ev.columns:
            ev[col] = default
    ev = ev[
        ["user_id", "timestamp", "event", "channel", "session_id", "device", "response_minutes"]
    ]
    ev = ev.assign(
        user_id=ev["user_id"].astype(str),
        event=ev["event"].astype(str),
        channel=ev["channel"].astype("object"),
        session_id=ev["session_id"].astype("object"),
        device=ev["device"].astype("object"),
        response_minutes=pd.to_numeric(ev["response_minutes"], errors="coerce").astype(float),
        timestamp=ev["timestamp"].astype("datetime64[us, UTC]"),
    )
    touches = list(dict.fromkeys(touch_events))
    channels = sorted(
        str(c) for c in ev.loc[ev["event"].isin(touches), "channel"].dropna().unique()
    )
    touch_list = quote_list(touches)
    per_channel = ",\n".join(
        f"count(*) FILTER (WHERE list_contains({touch_list}, event) AND channel = ?) "
        f"AS {quote_ident('touches_' + _sql_name(c))}"
        for c in channels
    )
    # Events already counted as touches per channel (phone calls) are not counted twice.
    counted_events = {e: name for e, name in _COUNTED_EVENTS.items() if e not in touches}
    counted = ",\n".join(
        f"count(*) FILTER (WHERE event = {quote_literal(e)}) AS {quote_ident(name)}"
        for e, name in counted_events.items()
    )
    snaps = _snapshot_frame(dates)
    with engine.connect() as con:
        con.register("ev", ev)
        con.register("snaps", snaps)
        sql = f"""
            WITH conv AS (
                SELECT user_id, min(timestamp) AS first_conversion FROM ev WHERE event = ? GROUP BY user_id
            ),
            past AS (
                SELECT s.as_of, e.* FROM ev e JOIN snaps s ON e.timestamp < s.as_of
            ),
            feats AS (
                SELECT as_of, user_id, min(timestamp) AS first_touch,
                    {per_channel + "," if per_channel else ""}
                    count(DISTINCT session_id) AS sessions,
                    {counted + "," if counted else ""}
                    max(CASE WHEN event = 'callback' THEN 1 ELSE 0 END) AS had_callback,
                    max(CASE WHEN event = 'callback' AND response_minutes > ? THEN 1 ELSE 0 END) AS slow_callback,
                    date_diff('second', min(timestamp), as_of) / 86400.0 AS days_since_first_touch,
                    date_diff('second', max(timestamp), as_of) / 86400.0 AS days_since_last_touch,
                    arg_max(device, timestamp) AS device
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
        active = None if active_days is None else float(active_days)
        params = [
            conversion_event,
            *channels,
            float(slow_minutes),
            float(horizon_days),
            active,
            active,
        ]
        table = _fetch(con, sql, params)
    if table.empty:
        last = max(dates)
        seen = int((ev.groupby("user_id")["timestamp"].min() < last).sum())
        converted = int(
            (
                ev.loc[ev["event"] == conversion_event].groupby("user_id")["timestamp"].min() < last
            ).sum()
        )
        raise NotComputableError(
            f"No user is at risk at the snapshot dates ({min(dates).date()} to {last.date()}): every user "
            f"either has no event before them or had already made a '{conversion_event}' "
            f"({seen:,} users seen, {converted:,} already converted). With purchase-only data every "
            "customer converts at their first event, so there is no one left to predict."
        )
    if users is not None:
        require_columns(users, ["user_id"], what="users")
        extra = [c for c in ("device", "region") if c in users.columns]
        lookup = (
            users.assign(user_id=users["user_id"].astype(str))
            .drop_duplicates("user_id")
            .set_index("user_id")
        )
        for col in extra:
            table[col] = table["user_id"].map(lookup[col]).astype("object")
    count_cols = [c for c in table.columns if c.startswith("touches_")] + [
        "sessions",
        *counted_events.values(),
        "had_callback",
        "slow_callback",
        "converted",
    ]
    table[count_cols] = table[count_cols].astype("int64")
    table["as_of"] = pd.to_datetime(table["as_of"], utc=True)
    table["first_touch"] = pd.to_datetime(table["first_touch"], utc=True)
    if table["device"].isna().all():
        table = table.drop(columns="device")
    table.attrs["horizon_days"] = float(horizon_days)
    table.attrs["target"] = "converted"
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
