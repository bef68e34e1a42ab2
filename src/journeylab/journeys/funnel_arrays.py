"""Funnel counting over the step events only: one sorted read, then array arithmetic.

The rules are those of :mod:`journeylab.journeys.funnels`. DuckDB reads the
events that belong to some step (after ``start``), sorted by unit and the
stable tie-breaker, as integer codes; NumPy then finds, for each entry, the
first step-``k`` event after the event that reached step ``k - 1`` (strict
order) or after the entry (any order) and keeps it when it lies within the
window of the entry, exactly as the ASOF joins of
:func:`journeylab.journeys.funnel_counts._funnel_units` over every event do:
only the relative order of step events matters there. Times are DuckDB's
``epoch(later) - epoch(earlier)`` and quartiles follow ``quantile_cont``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from journeylab.core.errors import NotComputableError, check_in
from journeylab.core.sql import quote_list
from journeylab.core.timeparse import parse_duration
from journeylab.journeys.arrow_events import epoch_seconds, read_events, sorted_rows
from journeylab.journeys.funnel_counts import _fmt_duration, _no_entrants, _Opened
from journeylab.journeys.rules import Steps, entry_window, parse_steps, step_order_map

__all__: list[str] = []


def unit_counts(f: _Opened) -> tuple[dict[str, Any], list[str], dict[str, int]]:
    """Count the units reaching each step, per segment.

    Returns the counts per (segment, step) with the quartiles of the time to
    convert (as :func:`journeylab.journeys.funnel_counts._step_frame` reads
    them), the sorted segments, and the units per segment.
    """
    ev, parsed = f.ev, f.parsed
    all_events = sorted({e for _, names in parsed for e in names})
    entry_sql = f.end_sql.replace('b."timestamp"', '"timestamp"')
    # (a relation, not a cursor result: Arrow batches of a cursor result may come out of order)
    rows = ev.con.sql(
        f"""
        SELECT {f.unit_sql} AS unit, epoch_us("timestamp") AS t, epoch("timestamp") AS e,
               event_key::INTEGER AS k, {entry_sql} AS may_enter, {f.seg_sql} AS segment
        FROM src
        WHERE {f.unit_sql} IS NOT NULL AND user_id IS NOT NULL AND "timestamp" IS NOT NULL
          AND {f.start_sql} AND list_contains({quote_list(all_events)}, event)
        ORDER BY {f.unit_sql}, {ev.ORDER}
        """
    ).to_arrow_table()
    units = rows.column("unit")
    n = rows.num_rows
    new_unit = np.ones(n, dtype=bool)
    if n > 1:
        new_unit[1:] = pc.not_equal(units.slice(1), units.slice(0, n - 1)).to_numpy()
    segment_codes = pc.dictionary_encode(rows.column("segment").combine_chunks())
    out = count_units(
        unit=np.cumsum(new_unit) - 1,
        t=rows.column("t").to_numpy(),
        e=rows.column("e").to_numpy(),
        k=rows.column("k").to_numpy(),
        may_enter=rows.column("may_enter").to_numpy(zero_copy_only=False),
        segment=segment_codes.indices.to_numpy(),
        segment_values=segment_codes.dictionary.to_pylist(),
        parsed=parsed,
        event_keys=f.event_keys,
        strict=f.order == "strict",
        win_us=f.win_us,
    )
    if out is None:
        raise NotComputableError(_no_entrants(ev, parsed[0], grain=f.grain, t0=f.t0, t1=f.t1))
    return out


def count_units(
    *,
    unit: np.ndarray,
    t: np.ndarray,
    e: np.ndarray,
    k: np.ndarray,
    may_enter: np.ndarray,
    segment: np.ndarray,
    segment_values: list[str],
    parsed: list[tuple[str, list[str]]],
    event_keys: dict[str, int],
    strict: bool,
    win_us: int,
) -> tuple[dict[str, Any], list[str], dict[str, int]] | None:
    """Count over the step events sorted by unit and tie-breaker, as :func:`unit_counts` returns.

    ``unit`` numbers the units 0, 1, ... in row order, ``t`` is in
    microseconds, ``e`` DuckDB's ``epoch`` seconds, ``k`` the event keys,
    ``may_enter`` says which rows lie before the period end and ``segment``
    codes the segment of each row (values in ``segment_values``). None when
    nobody entered.
    """
    n = len(unit)
    members = [
        np.isin(k, np.array([event_keys[name] for name in names], dtype=np.int64))
        for _, names in parsed
    ]
    entries = np.flatnonzero(members[0] & may_enter)
    if len(entries) == 0:
        return None
    idx = np.arange(n, dtype=np.int64)
    reached = [entries]  # the row that reached each step (n: not reached)
    for member in members[1:]:
        # the first row of the step strictly after each row
        after = np.full(n + 1, n, dtype=np.int64)
        after[:n] = np.minimum.accumulate(np.where(member, idx, n)[::-1])[::-1]
        prev = reached[-1] if strict else entries
        cand = after[np.minimum(prev + 1, n)]
        ok = (prev < n) & (cand < n)
        ok[ok] = (unit[cand[ok]] == unit[entries[ok]]) & (t[cand[ok]] <= t[entries[ok]] + win_us)
        reached.append(np.where(ok, cand, n))
    level = np.ones(len(entries), dtype=np.int64)
    run = np.ones(len(entries), dtype=bool)
    for r in reached[1:]:
        run &= r < n
        level += run
    # each unit's best attempt: the furthest step, the earliest entry on ties;
    # its segment is that of its first entry
    entry_unit = unit[entries]
    starts = np.flatnonzero(np.r_[True, entry_unit[1:] != entry_unit[:-1]])
    best_level = np.maximum.reduceat(level, starts)
    best = np.flatnonzero(level == np.repeat(best_level, np.diff(np.r_[starts, len(entries)])))
    best = best[np.r_[True, entry_unit[best[1:]] != entry_unit[best[:-1]]]]
    seg_of_unit = segment[entries[starts]]
    level = level[best]
    segments = sorted(set(segment_values[c] for c in np.unique(seg_of_unit)))
    counts = []
    for seg in segments:
        in_seg = seg_of_unit == segment_values.index(seg)
        for i in range(1, len(parsed) + 1):
            chosen = in_seg & (level >= i)
            entrants = int(np.count_nonzero(chosen))
            if not entrants:
                continue
            if i == 1:
                quartiles = (np.nan, np.nan, np.nan)
            else:
                ref = reached[i - 2] if strict else entries
                rows_i = best[chosen]
                delta = e[reached[i - 1][rows_i]] - e[ref[rows_i]]
                quartiles = tuple(_quantile(delta, q) for q in (0.25, 0.5, 0.75))
            counts.append((seg, i, entrants, *quartiles))
    table = {
        "segment": [str(row[0]) for row in counts],
        "step": np.array([row[1] for row in counts], dtype=np.int64),
        "entrants": np.array([row[2] for row in counts], dtype=np.int64),
        **{
            q: np.array([row[3 + i] for row in counts], dtype=float)
            for i, q in enumerate(("q25", "q50", "q75"))
        },
    }
    sizes = {
        seg: int(np.count_nonzero(seg_of_unit == segment_values.index(seg))) for seg in segments
    }
    return table, segments, sizes


def small_counts(
    events: Any,
    steps: Steps,
    *,
    window: str | pd.Timedelta,
    order: str,
    start: Any,
    end: Any,
    stage_map: Any,
) -> tuple[dict[str, Any], list[str], dict[str, int], dict[str, Any], list] | None:
    """Count a per-user funnel without segments over a small log read without DuckDB.

    Returns what :func:`unit_counts` does, the settings and the parsed steps, or None when the
    log is not read this way (see :mod:`journeylab.journeys.arrow_events`) or
    the DuckDB path has an error to report (an unknown step, nobody entered).
    The arguments are checked as :func:`journeylab.journeys.funnel_counts._open_funnel` does.
    """
    check_in("order", order, ["strict", "any"])
    parsed = parse_steps(steps)
    win = parse_duration(window, "window")
    t0, t1 = entry_window(start, end)
    if any(b is not None and b.value % 1000 for b in (t0, t1)):
        return None
    a = read_events(
        events,
        stage_map=stage_map if stage_map is not None else step_order_map(parsed),
        channels=False,
    )
    if a is None:
        return None
    event_keys = {name: i for i, name in enumerate(a.event_names)}
    wanted = sorted({e for _, names in parsed for e in names})
    if any(name not in event_keys for name in wanted):
        return None
    step = np.zeros(len(a.event_names) + 1, dtype=bool)
    step[[event_keys[name] for name in wanted]] = True
    keep = (a.user >= 0) & a.has_t & step[a.event]
    if t0 is not None:
        keep &= a.t >= t0.value // 1000
    # rows equal on (user, time, event) are alike here: no segment tells them apart
    rows = sorted_rows(
        np.flatnonzero(keep), a.user, a.n_users, a.t, keys=[(a.event, len(a.event_names))]
    )
    user, t, k = a.user[rows], a.t[rows], a.event[rows]
    new_unit = np.ones(len(rows), dtype=bool)
    new_unit[1:] = user[1:] != user[:-1]
    out = count_units(
        unit=np.cumsum(new_unit) - 1,
        t=t,
        e=epoch_seconds(t),
        k=k,
        may_enter=t < t1.value // 1000 if t1 is not None else np.ones(len(rows), dtype=bool),
        segment=np.zeros(len(rows), dtype=np.int64),
        segment_values=["all"],
        parsed=parsed,
        event_keys=event_keys,
        strict=order == "strict",
        win_us=int(win.value // 1000),
    )
    if out is None:
        return None
    settings = {
        "steps": [label for label, _ in parsed],
        "window": _fmt_duration(win),
        "order": order,
        "grain": "user",
        "segment": None,
        "start": t0,
        "end": t1,
    }
    return (*out, settings, parsed)


def _quantile(values: np.ndarray, q: float) -> float:
    """DuckDB's ``quantile_cont(x, q)``: ``lo + (hi - lo) * (RN - FRN)`` at ``RN = (n - 1) * q``."""
    rn = (len(values) - 1) * q
    lo_i, hi_i = int(np.floor(rn)), int(np.ceil(rn))
    part = np.partition(values, sorted({lo_i, hi_i}))
    lo, hi = part[lo_i], part[hi_i]
    if lo_i == hi_i:
        return float(lo)
    return float(lo + (hi - lo) * (rn - lo_i))
