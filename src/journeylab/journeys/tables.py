"""The journey rules as SQL: temporary tables of touches and journeys in an event cursor.

:func:`_build_tables` applies the rules of :mod:`journeylab.journeys.build`
(which rows take part, order, conversions, lookback, cap, censoring) to the
``src`` view of a :class:`~journeylab.journeys.source._Events` cursor.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import duckdb
import pandas as pd

from journeylab.core.sql import quote_list, quote_literal
from journeylab.core.stages import StageMap
from journeylab.journeys.rules import NO_CHANNEL, NO_STAGE, JourneyRules
from journeylab.journeys.source import _Events, _micros


def _touch_predicate(
    touch_events: Sequence[str] | str | None, conv_sql: str, conv_stage: int | None
) -> str:
    if touch_events is None:
        # Events of the conversion's stage or later (on-site jobs, repeat bookings,
        # reviews) are what follows a conversion, not touches leading to one.
        before = (
            f" AND (stage_index IS NULL OR stage_index < {conv_stage})"
            if conv_stage is not None
            else ""
        )
        return f"(channel IS NOT NULL AND NOT {conv_sql}{before})"
    if isinstance(touch_events, str):
        if touch_events == "all":
            return f"(NOT {conv_sql})"
        touch_events = [touch_events]
    return f"(list_contains({quote_list(list(touch_events))}, event) AND NOT {conv_sql})"


def _build_tables(
    ev: _Events, rules: JourneyRules
) -> tuple[str, str, dict[str, int], dict[str, Any]]:
    """Create temp tables of touches and journeys in ``ev.con``; return their names, counts, settings.

    (The path table from events takes a faster route: :mod:`journeylab.journeys.path_scan`.)
    """
    conversions = list(rules.conversions)
    first, end = rules.start, rules.period_end
    if end is None:
        end = ev.last_timestamp()
    conv_sql = f"list_contains({quote_list(conversions)}, event)"
    conv_stage = ev.stage_map.earliest_index(conversions)
    touch_sql = _touch_predicate(rules.touch_events, conv_sql, conv_stage)
    t = ev.tag
    base, rows, agg, touches, journeys = (
        f"jl_{n}_{t}" for n in ("base", "rows", "agg", "touches", "journeys")
    )
    end_param = end if end is not None else pd.Timestamp("2262-01-01", tz="UTC")
    look_us = _micros(rules.lookback)
    cap = rules.max_touches
    con = ev.con
    left_out = _full_tables(
        ev,
        base=base,
        rows=rows,
        agg=agg,
        touches=touches,
        journeys=journeys,
        conv_sql=conv_sql,
        touch_sql=touch_sql,
        end_param=end_param,
        look_us=look_us,
        cap=cap,
    )
    before_start = 0
    if first is not None:
        # A journey belongs to the period its end (conversion or last touch) falls
        # in; those that ended earlier go, with their touches.
        before_start = int(
            con.execute(
                f'SELECT count(*) FROM {journeys} WHERE "end" < ?::TIMESTAMPTZ', [first]
            ).fetchone()[0]
        )
        con.execute(f'DELETE FROM {journeys} WHERE "end" < ?::TIMESTAMPTZ', [first])
        con.execute(
            f"DELETE FROM {touches} WHERE journey_id NOT IN (SELECT journey_id FROM {journeys})"
        )
    totals = con.execute(
        f"""
        SELECT coalesce(sum(outside_lookback), 0), coalesce(sum(truncated_touches), 0),
               count(*) FILTER (WHERE truncated_touches > 0),
               count(*) FILTER (WHERE converted AND n_touches = 0),
               count(*) FILTER (WHERE censored),
               coalesce(sum(no_channel), 0)
        FROM {journeys}
        """
    ).fetchone()
    left_out.update(
        {
            "outside_lookback": int(totals[0]),
            "truncated_touches": int(totals[1]),
            "truncated_journeys": int(totals[2]),
            "direct_conversions": int(totals[3]),
            "censored_journeys": int(totals[4]),
            "no_channel_touches": int(totals[5]),
            "ended_before_start": before_start,
        }
    )
    settings = rules.settings(end)
    return touches, journeys, left_out, settings


def _full_tables(
    ev: _Events,
    *,
    base: str,
    rows: str,
    agg: str,
    touches: str,
    journeys: str,
    conv_sql: str,
    touch_sql: str,
    end_param: pd.Timestamp,
    look_us: int,
    cap: int | None,
) -> dict[str, int]:
    """Create the touches and journeys tables (with journey ids); return the counts of rows left out."""
    con = ev.con
    # One scan of the source: the rows that take part, plus the incomplete ones (to count them).
    con.execute(
        f"""
        CREATE TEMP TABLE {base} AS
        SELECT user_id, "timestamp", event, channel, value, event_key, channel_key, {conv_sql} AS is_conv
        FROM src
        WHERE ({conv_sql} OR {touch_sql}) OR user_id IS NULL OR "timestamp" IS NULL
        """
    )
    counts = con.execute(
        f"""
        SELECT count(*) FILTER (WHERE user_id IS NULL OR "timestamp" IS NULL),
               count(*) FILTER (WHERE user_id IS NOT NULL AND "timestamp" > ?::TIMESTAMPTZ)
        FROM {base}
        """,
        [end_param],
    ).fetchone()
    left_out = {"incomplete_rows": int(counts[0]), "after_period_end": int(counts[1])}
    # Order within a user by the tie-breaker (one sort serves every window
    # below). The journey index is the number of conversions strictly before
    # the row, so a conversion belongs to the journey it closes and the next
    # touch starts a new one. A row's journey ends at the next conversion at or
    # after it ("closing"), or, with none, at the user's last touch; touches
    # more than the lookback before that end are "outside".
    con.execute(
        f"""
        CREATE TEMP TABLE {rows} AS
        WITH w1 AS (
          SELECT user_id, "timestamp", event, channel, value, is_conv,
                 row_number() OVER w AS seq,
                 coalesce(sum(is_conv::INTEGER) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS jidx,
                 min(CASE WHEN is_conv THEN "timestamp" END)
                     OVER (w ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING) AS closing,
                 max(CASE WHEN NOT is_conv THEN "timestamp" END)
                     OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS user_last
          FROM {base} b
          WHERE user_id IS NOT NULL AND "timestamp" IS NOT NULL AND "timestamp" <= ?::TIMESTAMPTZ
          WINDOW w AS (PARTITION BY user_id ORDER BY {ev.ORDER})
        )
        SELECT * EXCLUDE (closing, user_last),
               (NOT is_conv AND "timestamp"
                  < coalesce(closing, user_last) - to_microseconds({look_us}::BIGINT)) AS outside
        FROM w1
        """,
        [end_param],
    )
    kept = "NOT is_conv AND NOT outside"
    n_touches = f"least(n_kept, {cap})" if cap is not None else "n_kept"
    con.execute(
        f"""
        CREATE TEMP TABLE {agg} AS
        SELECT row_number() OVER (ORDER BY user_id, jidx) AS journey_id, *,
               {n_touches} AS n_touches
        FROM (
          SELECT user_id, jidx,
                 bool_or(is_conv) AS converted,
                 max("timestamp") FILTER (WHERE is_conv) AS conversion_time,
                 coalesce(sum(coalesce(value, 0)) FILTER (WHERE is_conv), 0)::DOUBLE AS value,
                 max("timestamp") FILTER (WHERE NOT is_conv) AS last_touch,
                 count(*) FILTER (WHERE outside) AS outside_lookback,
                 count(*) FILTER (WHERE {kept}) AS n_kept,
                 count(*) FILTER (WHERE {kept} AND channel IS NULL) AS no_channel
          FROM {rows} GROUP BY user_id, jidx
        )
        """
    )
    # The cap keeps the last n_touches of the kept touches.
    con.execute(
        f"""
        CREATE TEMP TABLE {touches} AS
        SELECT * FROM (
          SELECT a.journey_id, r.user_id,
                 (row_number() OVER (PARTITION BY a.journey_id ORDER BY r.seq)
                  - (a.n_kept - a.n_touches))::BIGINT AS position,
                 r."timestamp", coalesce(r.channel, {quote_literal(NO_CHANNEL)}) AS channel, r.event
          FROM {rows} r JOIN {agg} a USING (user_id, jidx)
          WHERE NOT r.is_conv AND NOT r.outside
        ) WHERE position >= 1
        """
    )
    first_join = (
        'LEFT JOIN (SELECT journey_id, min("timestamp") AS first_touch '
        f"FROM {touches} GROUP BY journey_id) f USING (journey_id)"
    )
    con.execute(
        f"""
        CREATE TEMP TABLE {journeys} AS
        SELECT a.journey_id, a.user_id, a.jidx,
               coalesce(f.first_touch, a.conversion_time) AS start,
               coalesce(a.conversion_time, a.last_touch) AS "end",
               a.n_touches, a.converted, a.value, a.conversion_time,
               (NOT a.converted AND a.last_touch >= ?::TIMESTAMPTZ - to_microseconds({look_us}::BIGINT)) AS censored,
               a.n_kept - a.n_touches AS truncated_touches,
               a.outside_lookback, a.no_channel
        FROM {agg} a {first_join}
        """,
        [end_param],
    )
    return left_out


def _register_stages(con: duckdb.DuckDBPyConnection, stage_map: StageMap, events_sql: str) -> str:
    """Register a small (event, stage) table for the distinct events ``events_sql`` returns."""
    events = [r[0] for r in con.execute(events_sql).fetchall() if r[0] is not None]
    mapping = stage_map.event_to_stage(events)
    frame = pd.DataFrame(
        {
            "event": list(mapping),
            "stage": [s if s is not None else NO_STAGE for s in mapping.values()],
        },
        dtype="object",
    )
    name = f"jl_stage_{uuid.uuid4().hex[:8]}"
    con.register(name, frame)
    return name
