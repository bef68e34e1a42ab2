"""Funnel counting: each unit's furthest step, and the per-step table, in DuckDB.

The rules are those of :mod:`journeylab.journeys.funnels` (entry, strict or
any order, window, best attempt, segments); :func:`journeylab.journeys.funnels.funnel`
and :func:`journeylab.journeys.funnels.where_instead` read what this module counts.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from journeylab.core.errors import NotComputableError, SchemaError, check_in, require_names
from journeylab.core.sql import quote_ident, quote_list, quote_literal
from journeylab.core.timeparse import parse_duration
from journeylab.journeys.build import _Events, fetch_df
from journeylab.journeys.rules import (
    MISSING_SEGMENT,
    Steps,
    entry_window,
    parse_steps,
    step_order_map,
)


def _columns_of(source: Any) -> list[str] | None:
    """Return the columns of a DataFrame or DuckDB relation (None for files: checked when opened)."""
    if isinstance(source, pd.DataFrame):
        return [str(c) for c in source.columns]
    columns = getattr(source, "columns", None)
    return [str(c) for c in columns] if isinstance(columns, (list, tuple)) else None


@dataclass
class _Units:
    """Per-unit funnel outcome, kept in a DuckDB connection (table ``name``)."""

    events: _Events
    name: str
    steps: list[tuple[str, list[str]]]
    unit: str
    settings: dict[str, Any]
    left_out: dict[str, int]


@dataclass
class _Opened:
    """A funnel's event log opened in DuckDB (view ``src``), with the checked steps and rules."""

    ev: _Events
    parsed: list[tuple[str, list[str]]]
    event_keys: dict[str, int]
    order: str
    grain: str
    win_us: int
    t0: Any
    t1: Any
    unit_sql: str
    seg_sql: str
    start_sql: str
    end_sql: str
    settings: dict[str, Any]
    left_out: dict[str, int]


@contextmanager
def _open_funnel(
    events: Any,
    steps: Steps,
    *,
    window: str | pd.Timedelta,
    order: str,
    grain: str,
    segment: str | None,
    start: Any,
    end: Any,
    stage_map: Any,
) -> Iterator[_Opened]:
    """Check the funnel's arguments against the events, open them; closed on exit."""
    check_in("order", order, ["strict", "any"])
    check_in("grain", grain, ["user", "session"])
    parsed = parse_steps(steps)
    win = parse_duration(window, "window")
    t0, t1 = entry_window(start, end)
    columns = _columns_of(events)
    if segment is not None and columns is not None:
        require_names(
            [segment], columns, what="segment column", absent="is not a column of the events",
            column=None, patterns=False,
            hint="name a column of the events, or merge a user attribute onto them first.",
        )  # fmt: skip
    with _Events(
        events,
        stage_map=stage_map if stage_map is not None else step_order_map(parsed),
        keep=[segment] if segment else [],
    ) as ev:
        event_keys = dict(
            ev.con.execute(
                "SELECT DISTINCT event, event_key FROM src WHERE event IS NOT NULL"
            ).fetchall()
        )
        present = list(event_keys)
        require_names(
            [e for _, names in parsed for e in names], present, what="funnel step", source=ev.source_name,
            hint="correct the step (event names are case-sensitive), or load the events the funnel needs.",
        )  # fmt: skip
        if grain == "session" and "session_id" not in ev.columns:
            raise SchemaError(
                "grain='session' needs a session_id column, which the events lack.",
                source=ev.source_name,
                column="session_id",
                missing_columns=["session_id"],
                hint="add sessions with journeylab.journeys.build.sessionize(events) or use grain='user'.",
            )
        unit_sql = "user_id" if grain == "user" else "session_id"
        seg_sql = (
            f"coalesce(CAST({quote_ident(segment)} AS VARCHAR), {quote_literal(MISSING_SEGMENT)})"
            if segment
            else "'all'"
        )
        start_sql = (
            f'"timestamp" >= {quote_literal(t0.isoformat())}::TIMESTAMPTZ'
            if t0 is not None
            else "TRUE"
        )
        end_sql = (
            f'b."timestamp" < {quote_literal(t1.isoformat())}::TIMESTAMPTZ'
            if t1 is not None
            else "TRUE"
        )
        all_events = sorted({e for _, names in parsed for e in names})
        left_out = {}
        if grain == "session":
            # (fetched whole: a later relation needs no unfinished result on the cursor)
            ((without,),) = ev.con.execute(
                f"SELECT count(*) FROM src WHERE session_id IS NULL AND list_contains({quote_list(all_events)}, event)"
            ).fetchall()
            left_out["events_without_session"] = int(without)
        settings = {
            "steps": [label for label, _ in parsed],
            "window": _fmt_duration(win),
            "order": order,
            "grain": grain,
            "segment": segment,
            "start": t0,
            "end": t1,
        }
        yield _Opened(
            ev, parsed, event_keys, order, grain, int(win.value // 1000), t0, t1, unit_sql,
            seg_sql, start_sql, end_sql, settings, left_out,
        )  # fmt: skip


@contextmanager
def _funnel_units(
    events: Any,
    steps: Steps,
    *,
    window: str | pd.Timedelta,
    order: str,
    grain: str,
    segment: str | None,
    start: Any,
    end: Any,
    stage_map: Any,
) -> Iterator[_Units]:
    """Count each unit's furthest step in a DuckDB cursor; yield it as table ``name``, closed on exit."""
    opened = _open_funnel(
        events,
        steps,
        window=window,
        order=order,
        grain=grain,
        segment=segment,
        start=start,
        end=end,
        stage_map=stage_map,
    )
    with opened as f:
        ev, parsed, t0, t1 = f.ev, f.parsed, f.t0, f.t1
        con, tag = ev.con, ev.tag
        unit_sql, seg_sql, start_sql, end_sql = f.unit_sql, f.seg_sql, f.start_sql, f.end_sql
        base = f"jl_fbase_{tag}"
        # Every event of the unit gets a sequence number (for where_instead, which
        # looks at what came next); step tables keep that number.
        con.execute(
            f"""
            CREATE TEMP TABLE {base} AS
            SELECT {unit_sql} AS unit, user_id, "timestamp", event, channel, {seg_sql} AS segment,
                   row_number() OVER (PARTITION BY {unit_sql} ORDER BY {ev.ORDER}) AS seq
            FROM src
            WHERE {unit_sql} IS NOT NULL AND user_id IS NOT NULL AND "timestamp" IS NOT NULL AND {start_sql}
            """
        )
        win_us = f.win_us
        k = len(parsed)
        ctes = []
        for i, (_, names) in enumerate(parsed, start=1):
            ctes.append(
                f's{i} AS (SELECT unit, seq, "timestamp" AS t FROM {base} '
                f"WHERE list_contains({quote_list(names)}, event))"
            )
        ctes.append(
            f'a1 AS (SELECT b.unit, b.user_id, b.segment, b.seq AS seq1, b."timestamp" AS t1 FROM {base} b '
            f"WHERE list_contains({quote_list(parsed[0][1])}, b.event) AND {end_sql})"
        )
        deadline = f"t1 + to_microseconds({win_us}::BIGINT)"
        for i in range(2, k + 1):
            prev = f"seq{i - 1}" if order == "strict" else "seq1"
            cols = ", ".join(f"a.seq{j}, a.t{j}" for j in range(2, i))
            cols = (", " + cols) if cols else ""
            ctes.append(
                f"j{i} AS (SELECT a.unit, a.user_id, a.segment, a.seq1, a.t1{cols}, s.seq AS raw_seq, s.t AS raw_t "
                f"FROM a{i - 1} a ASOF LEFT JOIN s{i} s ON a.unit = s.unit AND a.{prev} < s.seq)"
            )
            ctes.append(
                f"a{i} AS (SELECT * EXCLUDE (raw_seq, raw_t), "
                f"CASE WHEN raw_t <= {deadline} THEN raw_seq END AS seq{i}, "
                f"CASE WHEN raw_t <= {deadline} THEN raw_t END AS t{i} FROM j{i})"
            )
        # level = the last step reached in order (a step counts only if all before it did)
        level_terms, run = [], "TRUE"
        for i in range(2, k + 1):
            run = f"{run} AND seq{i} IS NOT NULL"
            level_terms.append(f"({run})::INTEGER")
        level_sql = "1 + " + " + ".join(level_terms)
        units = f"jl_funits_{tag}"
        con.execute(
            f"""
            CREATE TEMP TABLE {units} AS
            WITH {", ".join(ctes)},
            scored AS (SELECT *, {level_sql} AS level FROM a{k}),
            ranked AS (
              SELECT *, row_number() OVER (PARTITION BY unit ORDER BY level DESC, seq1) AS best,
                     first(segment ORDER BY seq1) OVER (PARTITION BY unit) AS entry_segment
              FROM scored
            )
            SELECT * EXCLUDE (best, segment) RENAME (entry_segment AS segment) FROM ranked WHERE best = 1
            """
        )
        if not ev.scalar(f"SELECT count(*) FROM {units}"):
            raise NotComputableError(_no_entrants(ev, parsed[0], grain=grain, t0=t0, t1=t1))
        yield _Units(ev, units, parsed, grain, f.settings, f.left_out)


def _no_entrants(ev: _Events, first: tuple[str, list[str]], *, grain: str, t0: Any, t1: Any) -> str:
    """Why nobody entered the funnel: when the first step's events do occur."""
    label, names = first
    unit = "user" if grain == "user" else "session"
    when = (
        f" between {_day(t0)} and {_day(t1)}" if t0 is not None and t1 is not None
        else f" from {_day(t0)} on" if t0 is not None
        else f" before {_day(t1)}" if t1 is not None
        else ""
    )  # fmt: skip
    n, with_session, lo, hi = ev.con.execute(
        f'SELECT count(*), count(session_id), min("timestamp"), max("timestamp") FROM src '
        f'WHERE list_contains({quote_list(names)}, event) AND user_id IS NOT NULL AND "timestamp" IS NOT NULL'
    ).fetchone()
    if n and grain == "session" and not with_session:
        why = f"none of its {n:,} events has a session id"
    elif n:
        why = f"its {n:,} events occur from {_day(lo)} to {_day(hi)}"
    else:
        why = "its events have no user id or timestamp"
    return (
        f"No {unit} entered the funnel at its first step {label!r}{when}: {why}. "
        "Choose a period (start/end) in which the first step occurs."
    )


def _day(ts: Any) -> str:
    return pd.Timestamp(ts).strftime("%Y-%m-%d %H:%M").removesuffix(" 00:00")


def _step_table(u: _Units, confidence: float) -> pd.DataFrame:
    k = len(u.steps)
    order = u.settings["order"]
    parts = []
    for i in range(1, k + 1):
        if i == 1:
            delta = "NULL::DOUBLE"
        else:
            ref = f"t{i - 1}" if order == "strict" else "t1"
            delta = f"epoch(t{i}) - epoch({ref})"
        parts.append(
            f"SELECT segment, {i} AS step, count(*) AS entrants, "
            f"quantile_cont({delta}, 0.25) AS q25, quantile_cont({delta}, 0.5) AS q50, "
            f"quantile_cont({delta}, 0.75) AS q75 FROM {u.name} WHERE level >= {i} GROUP BY segment"
        )
    counts = fetch_df(u.events.con.execute(" UNION ALL ".join(parts)))
    segments = sorted(
        fetch_df(u.events.con.execute(f"SELECT DISTINCT segment FROM {u.name}"))["segment"].tolist()
    )
    return _step_frame(counts, segments, u.steps, confidence)


def _step_frame(
    counts: pd.DataFrame | Mapping[str, Any],
    segments: list[str],
    steps: list[tuple[str, list[str]]],
    confidence: float,
) -> pd.DataFrame:
    """Build the per-step table from the counts per (segment, step) and the sorted segments.

    ``counts`` (a frame, or a mapping of columns) has ``segment``, ``step``,
    ``entrants`` and the quartiles ``q25``/``q50``/``q75`` of the time to
    convert (seconds), one row per (segment, step) that some unit reached.
    """
    k = len(steps)
    segments = segments or ["all"]  # nobody entered: still one row per step, with zeros
    n_rows = len(segments) * k  # one row per (segment, step), segments first
    entrants = np.zeros(n_rows, dtype=np.int64)
    quartiles = {q: np.full(n_rows, np.nan) for q in ("q25", "q50", "q75")}
    position = {seg: i for i, seg in enumerate(segments)}
    at = [
        (position[seg] * k + int(step) - 1, i)
        for i, (seg, step) in enumerate(
            zip(list(counts["segment"]), list(counts["step"]), strict=True)
        )
        if seg in position and 1 <= step <= k
    ]
    if at:
        rows, found = (np.array(x, dtype=np.int64) for x in zip(*at, strict=True))
        entrants[rows] = np.asarray(counts["entrants"])[found]
        for q, values in quartiles.items():
            values[rows] = np.asarray(counts[q], dtype=float)[found]
    grid = entrants.reshape(len(segments), k)
    first = np.repeat(grid[:, 0], k)
    shifted = grid.copy()
    shifted[:, 1:] = grid[:, :-1]
    previous = shifted.ravel()
    step_of = np.tile(np.arange(1, k + 1, dtype=np.int64), len(segments))
    alpha = 1 - confidence
    columns: dict[str, Any] = {
        "segment": pd.Series(np.repeat(np.array(segments, dtype=object), k)).astype("string"),
        "step": step_of,
        "label": pd.Series([steps[s - 1][0] for s in step_of]),
        "entrants": entrants,
    }
    count = entrants.astype(float)
    for name, base in (("from_previous", previous), ("from_first", first)):
        nobs = base.astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(nobs > 0, count / np.where(nobs > 0, nobs, 1), np.nan)
            low, high = proportion_confint(
                count, np.where(nobs > 0, nobs, 1), alpha=alpha, method="wilson"
            )
        columns[f"conversion_{name}"] = rate
        columns[f"{name}_ci_low"] = np.where(nobs > 0, low, np.nan)
        columns[f"{name}_ci_high"] = np.where(nobs > 0, high, np.nan)
    columns["drop_off"] = (previous - entrants).astype("int64")
    for q, label in (("q25", "time_q25"), ("q50", "time_median"), ("q75", "time_q75")):
        # (in the dtype of the counts: pandas picks the resolution from it)
        columns[label] = pd.to_timedelta(
            pd.Series(quartiles[q], dtype=np.asarray(counts[q]).dtype), unit="s"
        )
    return pd.DataFrame(columns)  # (the columns in the table's order)


def _time_unit(seconds: float) -> tuple[float, str]:
    if seconds >= 2 * 86400:
        return 86400.0, "days"
    if seconds >= 2 * 3600:
        return 3600.0, "hours"
    if seconds >= 120:
        return 60.0, "minutes"
    return 1.0, "seconds"


def _fmt_duration(td: Any) -> str:
    if td is None or pd.isna(td):
        return "–"
    scale, unit = _time_unit(td.total_seconds())
    return f"{td.total_seconds() / scale:.3g} {unit}"
