"""Transitions counted straight from an event log: one sorted read, then array arithmetic.

:func:`journeylab.journeys.flows.transitions` on events needs no touches table.
DuckDB reads the rows that take part (touches and conversions, by the journey
rules of :mod:`journeylab.journeys.build`) sorted by user and the stable
tie-breaker, as integer codes (event and channel keys, microseconds); the
journeys are then cut with NumPy over those arrays:

- a row's journey ends at the next conversion at or after it, or, with none,
  at the user's last touch (that journey is the user's last, and is censored
  when that touch lies within the lookback of the period end);
- a touch older than the lookback before that end is outside; the kept
  touches of a journey are therefore its last ones, and with ``max_touches``
  only its last ``max_touches`` of those;
- each kept touch and each conversion counts the pair that leads into it,
  from the previous kept touch of its journey (from ``START`` when there is
  none: a conversion with no kept touch is ``START → CONVERSION``), and the
  user's last row, when it is a touch, the pair to the outcome (``NULL``, or
  ``END`` when still open); with ``collapse_repeats`` a touch repeating the
  state before it counts nothing and later pairs start at the first touch of
  its run.

Times are DuckDB's ``epoch(later) - epoch(earlier)`` and medians follow
``quantile_cont(·, 0.5)`` (the middle value, or ``lo + (hi - lo) * 0.5``), so
the table is the one the SQL over the journeys' tables gives.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from journeylab.core.sql import quote_list
from journeylab.journeys.build import _Events, _micros, _touch_predicate
from journeylab.journeys.flow_common import CONVERSION, END, NULL, START
from journeylab.journeys.rules import NO_CHANNEL, NO_STAGE, JourneyRules

__all__: list[str] = []

#: A period end past every timestamp (no period end given and an empty log).
_FAR_FUTURE = pd.Timestamp("2262-01-01", tz="UTC")


def event_transitions(
    source: Any,
    rules: JourneyRules,
    *,
    level: str,
    stage_map: Any,
    collapse_repeats: bool,
    include_censored: bool,
) -> tuple[pd.DataFrame, dict[str, int], dict[str, Any]]:
    """Count the transitions of the journeys of ``source``.

    Returns the pairs (``from``, ``to``, ``count``, ``median_secs``, sorted by
    ``from`` then ``to``), the counts of what was left out and the rules used,
    as the journeys' tables give them.
    """
    with _Events(source, stage_map=stage_map) as ev:
        con = ev.con
        conversions = list(rules.conversions)
        conv_sql = f"list_contains({quote_list(conversions)}, event)"
        conv_stages = [ev.stage_map.stage_of(c) for c in conversions]
        conv_stage = min((ev.stage_map.index(st) for st in conv_stages if st), default=None)
        takes_part = f"({conv_sql} OR {_touch_predicate(rules.touch_events, conv_sql, conv_stage)})"
        # One scan: the event and channel keys with their names, the last
        # timestamp, and the rows left out (incomplete, after the period end).
        keys = con.execute(
            f"""
            SELECT event_key, any_value(event), channel_key, any_value(channel),
                   epoch_us(max("timestamp")),
                   count(*) FILTER (WHERE user_id IS NULL OR "timestamp" IS NULL),
                   count(*) FILTER (WHERE {takes_part} AND user_id IS NOT NULL
                                    AND "timestamp" > ?::TIMESTAMPTZ)
            FROM src GROUP BY event_key, channel_key
            """,
            [rules.period_end if rules.period_end is not None else _FAR_FUTURE],
        ).fetchall()
        if rules.period_end is None:
            last = [r[4] for r in keys if r[4] is not None]
            end = pd.Timestamp(int(max(last)), unit="us", tz="UTC") if last else None
        else:
            end = rules.period_end
        end_param = end if end is not None else _FAR_FUTURE
        left_out = {
            "incomplete_rows": int(sum(r[5] for r in keys)),
            "after_period_end": int(sum(r[6] for r in keys)),
        }
        ((end_us, start_us),) = con.execute(
            "SELECT epoch_us(?::TIMESTAMPTZ), epoch_us(?::TIMESTAMPTZ)",
            [end_param, rules.start if rules.start is not None else end_param],
        ).fetchall()
        # (a relation, not a cursor result: Arrow batches of a cursor result may come out of order)
        rows = con.sql(
            f"""
            SELECT user_id, epoch_us("timestamp") AS t, epoch("timestamp") AS e,
                   event_key::INTEGER AS k, coalesce(channel_key, -1)::INTEGER AS c
            FROM src
            WHERE {takes_part} AND user_id IS NOT NULL AND "timestamp" IS NOT NULL
              AND "timestamp" <= ?::TIMESTAMPTZ
            ORDER BY user_id, {ev.ORDER}
            """,
            params=[end_param],
        ).to_arrow_table()
        events = {r[0]: r[1] for r in keys if r[0] is not None}
        channels = {r[2]: r[3] for r in keys if r[2] is not None}
        sm = ev.stage_map
    names, elem_of_event, elem_of_channel = _states(level, events, channels, sm)
    conv_keys = np.array(
        [key for key, name in events.items() if name in set(conversions)], dtype=np.int64
    )
    arrays = _Arrays.read(rows, conv_keys)
    del rows
    counts, pairs = _count(
        arrays,
        elem=elem_of_channel[arrays.c + 1] if level == "channel" else elem_of_event[arrays.k],
        n_states=len(names),
        look_us=_micros(rules.lookback),
        end_us=int(end_us),
        start_us=int(start_us) if rules.start is not None else None,
        cap=rules.max_touches,
        collapse_repeats=collapse_repeats,
        include_censored=include_censored,
    )
    left_out.update(counts)
    return _frame(pairs, names), left_out, rules.settings(end)


def _states(
    level: str, events: dict[int, str], channels: dict[int, str], stage_map: Any
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """State names (touch states, then START, CONVERSION, NULL, END) and the code of each key."""
    size = max(events, default=-1) + 1
    elem_of_event = np.full(size, -1, dtype=np.int64)
    elem_of_channel = np.full(max(channels, default=-1) + 2, -1, dtype=np.int64)  # -1: no channel
    names: list[str] = []
    index: dict[str, int] = {}

    def code(name: str) -> int:
        if name not in index:
            index[name] = len(names)
            names.append(name)
        return index[name]

    if level == "channel":
        elem_of_channel[0] = code(NO_CHANNEL)
        for key, name in channels.items():
            elem_of_channel[key + 1] = code(name)
    else:
        stages = stage_map.event_to_stage(list(events.values())) if level == "stage" else {}
        for key, name in events.items():
            if level == "event":
                elem_of_event[key] = code(name)
            else:
                stage = stages.get(name)
                elem_of_event[key] = code(stage if stage is not None else NO_STAGE)
    for special in (START, CONVERSION, NULL, END):
        names.append(special)  # may repeat a touch state's name: codes stay distinct
    return names, elem_of_event, elem_of_channel


class _Arrays:
    """The sorted rows as arrays: user boundaries, microseconds, epoch seconds, keys."""

    def __init__(self, new_user: np.ndarray, t: np.ndarray, e: np.ndarray, k: np.ndarray,
                 c: np.ndarray, is_conv: np.ndarray) -> None:  # fmt: skip
        self.new_user, self.t, self.e, self.k, self.c, self.is_conv = new_user, t, e, k, c, is_conv

    @classmethod
    def read(cls, rows: Any, conv_keys: np.ndarray) -> _Arrays:
        n = rows.num_rows
        users = rows.column("user_id")
        new_user = np.ones(n, dtype=bool)
        if n > 1:
            new_user[1:] = pc.not_equal(users.slice(1), users.slice(0, n - 1)).to_numpy()
        k = rows.column("k").to_numpy()
        return cls(
            new_user,
            rows.column("t").to_numpy(),
            rows.column("e").to_numpy(),
            k,
            rows.column("c").to_numpy(),
            np.isin(k, conv_keys),
        )


def _count(
    a: _Arrays,
    *,
    elem: np.ndarray,
    n_states: int,
    look_us: int,
    end_us: int,
    start_us: int | None,
    cap: int | None,
    collapse_repeats: bool,
    include_censored: bool,
) -> tuple[dict[str, int], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Cut the journeys and count the pairs; return the left-out counts and the pairs."""
    n = len(a.t)
    if n == 0:
        zero = ("outside_lookback", "truncated_touches", "truncated_journeys", "direct_conversions",
                "censored_journeys", "no_channel_touches", "ended_before_start")  # fmt: skip
        none = np.empty(0, dtype=np.int64)
        return dict.fromkeys(zero, 0), (none, none, np.empty(0), none)
    idx = np.arange(n, dtype=np.int64)
    is_conv, t = a.is_conv, a.t
    touch = ~is_conv
    user = np.cumsum(a.new_user) - 1
    starts = np.flatnonzero(a.new_user)
    last_row = np.ones(n, dtype=bool)  # the user's last row
    last_row[:-1] = a.new_user[1:]
    # the journey's conversion: the next conversion at or after the row, in the same user
    nxt = np.minimum.accumulate(np.where(is_conv, idx, n)[::-1])[::-1]
    closed = nxt < n
    closed[closed] = user[nxt[closed]] == user[closed]
    # the user's last touch (rows are in time order within a user)
    user_last = np.maximum.reduceat(np.where(touch, t, np.iinfo(np.int64).min), starts)[user]
    end = np.where(closed, t[np.minimum(nxt, n - 1)], user_last)
    censored = ~closed & (user_last >= end_us - look_us)
    kept = touch & ~(t < end - look_us)
    outside = touch & ~kept
    before = end < start_us if start_us is not None else np.zeros(n, dtype=bool)
    # touches without a channel among the kept ones, before the cap
    no_channel = int(np.count_nonzero(kept & (a.c == -1) & ~before))
    truncated = 0
    truncated_journeys = 0
    if cap is not None:
        # the kept touches of a journey are its last ones: the journey's last touch
        # is the row before its conversion, or the user's last row
        user_end = np.minimum.accumulate(np.where(last_row, idx, n)[::-1])[::-1]
        last_touch_idx = np.where(closed, nxt - 1, user_end)
        from_end = last_touch_idx - idx + 1
        over = kept & (from_end > cap)
        truncated = int(np.count_nonzero(over & ~before))
        truncated_journeys = int(np.count_nonzero(over & (from_end == cap + 1) & ~before))
        kept = kept & ~over
    prev_kept = np.zeros(n, dtype=bool)
    prev_kept[1:] = kept[:-1] & ~a.new_user[1:]
    counts = {
        "outside_lookback": int(np.count_nonzero(outside & ~before)),
        "truncated_touches": truncated,
        "truncated_journeys": truncated_journeys,
        "direct_conversions": int(np.count_nonzero(is_conv & ~prev_kept & ~before)),
        "censored_journeys": int(np.count_nonzero(last_row & touch & censored & ~before)),
        "no_channel_touches": no_channel,
        "ended_before_start": int(np.count_nonzero((is_conv | (last_row & touch)) & before)),
    }
    shown = ~before if include_censored else ~before & ~censored
    # the row each pair starts from: the previous kept touch, or with repeats
    # collapsed the first touch of its run
    src = idx - 1
    counted = (is_conv | kept) & shown
    if collapse_repeats:
        prev_elem = np.empty_like(elem)
        prev_elem[1:] = elem[:-1]
        repeat = kept & prev_kept & (elem == prev_elem)
        run_start = kept & ~repeat
        src = np.maximum.accumulate(np.where(run_start, idx, -1))
        src[1:] = src[:-1]  # the run start before the row
        counted &= ~repeat
    src = np.maximum(src, 0)
    start_code, conv_code, null_code, end_code = (
        n_states - 4,
        n_states - 3,
        n_states - 2,
        n_states - 1,
    )
    rows = np.flatnonzero(counted)
    linked = prev_kept[rows]
    from_code = np.where(linked, elem[src[rows]], start_code)
    to_code = np.where(is_conv[rows], conv_code, elem[rows])
    secs = np.where(linked, a.e[rows] - a.e[src[rows]], np.nan)
    ends = np.flatnonzero(last_row & touch & shown)
    end_from = elem[ends]  # a run's state is that of each of its touches
    end_to = np.where(censored[ends], end_code, null_code)
    pairs = (
        np.concatenate([from_code, end_from]),
        np.concatenate([to_code, end_to]),
        np.concatenate([secs, np.full(len(ends), np.nan)]),
        np.empty(0),
    )
    return counts, pairs


def _frame(pairs: tuple[np.ndarray, ...], names: list[str]) -> pd.DataFrame:
    """Group the pairs: count and ``quantile_cont``-median per (from, to), sorted by name."""
    from_code, to_code, secs, _ = pairs
    m = len(names)
    # a touch state named like a framing state (an event called "START") is one state
    first = {}
    canonical = np.array(
        [first.setdefault(name, i) for i, name in enumerate(names)], dtype=np.int64
    )
    key = canonical[from_code] * m + canonical[to_code]
    counts = np.bincount(key, minlength=m * m) if len(key) else np.zeros(m * m, dtype=np.int64)
    present = np.flatnonzero(counts)
    medians = np.full(m * m, np.nan)
    timed = ~np.isnan(secs)
    if timed.any():
        tk, ts = key[timed], secs[timed]
        order = np.argsort(tk.astype(np.int16) if m * m < 2**15 else tk, kind="stable")
        tk, ts = tk[order], ts[order]
        bounds = np.flatnonzero(np.diff(tk)) + 1
        for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(tk)], strict=True):
            medians[tk[lo]] = _median(ts[lo:hi])
    rows = sorted(
        ((names[k // m], names[k % m], int(counts[k]), medians[k]) for k in present),
        key=lambda r: (r[0], r[1]),
    )
    return pd.DataFrame(
        {
            "from": pd.Series([r[0] for r in rows], dtype="str"),
            "to": pd.Series([r[1] for r in rows], dtype="str"),
            "count": np.array([r[2] for r in rows], dtype=np.int64),
            "median_secs": np.array([r[3] for r in rows], dtype=np.float64),
        }
    )


def _median(values: np.ndarray) -> float:
    """DuckDB's ``quantile_cont(x, 0.5)``: the middle value, or ``lo + (hi - lo) * 0.5``."""
    n = len(values)
    if n % 2:
        return float(np.partition(values, n // 2)[n // 2])
    part = np.partition(values, [n // 2 - 1, n // 2])
    lo, hi = part[n // 2 - 1], part[n // 2]
    return float(lo + (hi - lo) * 0.5)
