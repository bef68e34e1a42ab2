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

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from journeylab.core.errors import NotComputableError
from journeylab.core.sql import quote_list
from journeylab.journeys.funnel_counts import _no_entrants, _Opened

__all__: list[str] = []


def unit_counts(f: _Opened) -> tuple[pd.DataFrame, list[str], dict[str, int]]:
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
    n = rows.num_rows
    members = [
        np.isin(
            rows.column("k").to_numpy(),
            np.array([f.event_keys[e] for e in names], dtype=np.int64),
        )
        for _, names in parsed
    ]
    entries = np.flatnonzero(members[0] & rows.column("may_enter").to_numpy(zero_copy_only=False))
    if len(entries) == 0:
        raise NotComputableError(_no_entrants(ev, parsed[0], grain=f.grain, t0=f.t0, t1=f.t1))
    units = rows.column("unit")
    new_unit = np.ones(n, dtype=bool)
    if n > 1:
        new_unit[1:] = pc.not_equal(units.slice(1), units.slice(0, n - 1)).to_numpy()
    unit = np.cumsum(new_unit) - 1
    t = rows.column("t").to_numpy()
    e = rows.column("e").to_numpy()
    idx = np.arange(n, dtype=np.int64)
    reached = [entries]  # the row that reached each step (n: not reached)
    for member in members[1:]:
        # the first row of the step strictly after each row
        after = np.full(n + 1, n, dtype=np.int64)
        after[:n] = np.minimum.accumulate(np.where(member, idx, n)[::-1])[::-1]
        prev = reached[-1] if f.order == "strict" else entries
        cand = after[np.minimum(prev + 1, n)]
        ok = (prev < n) & (cand < n)
        ok[ok] = (unit[cand[ok]] == unit[entries[ok]]) & (t[cand[ok]] <= t[entries[ok]] + f.win_us)
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
    segment_codes = pc.dictionary_encode(rows.column("segment").combine_chunks())
    seg_values = segment_codes.dictionary.to_pylist()
    seg_of_unit = segment_codes.indices.to_numpy()[entries[starts]]
    level = level[best]
    segments = sorted(set(seg_values[c] for c in np.unique(seg_of_unit)))
    counts = []
    for seg in segments:
        in_seg = seg_of_unit == seg_values.index(seg)
        for i in range(1, len(parsed) + 1):
            chosen = in_seg & (level >= i)
            entrants = int(np.count_nonzero(chosen))
            if not entrants:
                continue
            if i == 1:
                quartiles = (np.nan, np.nan, np.nan)
            else:
                ref = reached[i - 2] if f.order == "strict" else entries
                rows_i = best[chosen]
                delta = e[reached[i - 1][rows_i]] - e[ref[rows_i]]
                quartiles = tuple(_quantile(delta, q) for q in (0.25, 0.5, 0.75))
            counts.append((seg, i, entrants, *quartiles))
    frame = pd.DataFrame(counts, columns=["segment", "step", "entrants", "q25", "q50", "q75"])
    frame["segment"] = frame["segment"].astype("str")
    sizes = {seg: int(np.count_nonzero(seg_of_unit == seg_values.index(seg))) for seg in segments}
    return frame, segments, sizes


def _quantile(values: np.ndarray, q: float) -> float:
    """DuckDB's ``quantile_cont(x, q)``: ``lo + (hi - lo) * (RN - FRN)`` at ``RN = (n - 1) * q``."""
    rn = (len(values) - 1) * q
    lo_i, hi_i = int(np.floor(rn)), int(np.ceil(rn))
    part = np.partition(values, sorted({lo_i, hi_i}))
    lo, hi = part[lo_i], part[hi_i]
    if lo_i == hi_i:
        return float(lo)
    return float(lo + (hi - lo) * (rn - lo_i))
