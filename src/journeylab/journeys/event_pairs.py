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

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from journeylab.core.sql import quote_list
from journeylab.journeys.arrow_events import epoch_seconds, read_events, sorted_rows
from journeylab.journeys.flow_common import CONVERSION, END, NULL, START
from journeylab.journeys.rules import NO_CHANNEL, NO_STAGE, JourneyRules
from journeylab.journeys.source import _Events, _micros
from journeylab.journeys.tables import _touch_predicate

__all__: list[str] = []

#: A period end past every timestamp (no period end given and an empty log).
_FAR_FUTURE = pd.Timestamp("2262-01-01", tz="UTC")
#: Rows per Arrow batch of the sorted read.
_BATCH = 1_000_000


def event_transitions(
    source: Any,
    rules: JourneyRules,
    *,
    level: str,
    stage_map: Any,
    collapse_repeats: bool,
    include_censored: bool,
    check_names: Callable[[list[str]], None] | None = None,
) -> tuple[pd.DataFrame, dict[str, int], dict[str, Any]]:
    """Count the transitions of the journeys of ``source``.

    ``check_names`` is called with the event names of the log before counting.

    Returns the pairs (``from``, ``to``, ``count``, ``median_secs``, sorted by
    ``from`` then ``to``), the counts of what was left out and the rules used,
    as the journeys' tables give them.
    """
    with _Events(source, stage_map=stage_map) as ev:
        con = ev.con
        conversions = list(rules.conversions)
        conv_sql = f"list_contains({quote_list(conversions)}, event)"
        conv_stage = ev.stage_map.earliest_index(conversions)
        takes_part = f"({conv_sql} OR {_touch_predicate(rules.touch_events, conv_sql, conv_stage)})"
        # One scan: the event and channel keys with their names, the last
        # timestamp, and the rows left out (incomplete, after the period end).
        keys = con.execute(
            f"""
            SELECT event_key, any_value(event), channel_key, any_value(channel),
                   epoch_us(max("timestamp")),
                   count(*) FILTER (WHERE user_id IS NULL OR "timestamp" IS NULL),
                   count(*) FILTER (WHERE {takes_part} AND user_id IS NOT NULL
                                    AND "timestamp" > ?::TIMESTAMPTZ),
                   count(*) FILTER (WHERE {takes_part} AND user_id IS NOT NULL
                                    AND "timestamp" <= ?::TIMESTAMPTZ)
            FROM src GROUP BY event_key, channel_key
            """,
            [rules.period_end if rules.period_end is not None else _FAR_FUTURE] * 2,
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
        events = {r[0]: r[1] for r in keys if r[0] is not None}
        if check_names is not None:
            check_names(list(events.values()))
        channels = {r[2]: r[3] for r in keys if r[2] is not None}
        names, elem_of_event, elem_of_channel = _states(level, events, channels, ev.stage_map)
        is_conversion = np.zeros(max(events, default=-1) + 1, dtype=bool)
        conversion_names = set(conversions)
        is_conversion[[key for key, name in events.items() if name in conversion_names]] = True
        # Rows tied on (user, time, event) are alike for every count here: the
        # channel and value only break such ties (the channel names the state at
        # level="channel", so it stays a key there). (A relation, not a cursor
        # result: Arrow batches of a cursor result may come out of order.)
        reader = con.sql(
            f"""
            SELECT user_id, epoch_us("timestamp") AS t, epoch("timestamp") AS e,
                   event_key::INTEGER AS k, coalesce(channel_key, -1)::INTEGER AS c
            FROM src
            WHERE {takes_part} AND user_id IS NOT NULL AND "timestamp" IS NOT NULL
              AND "timestamp" <= ?::TIMESTAMPTZ
            ORDER BY user_id, "timestamp", event_key{", channel_key NULLS LAST" if level == "channel" else ""}
            """,
            params=[end_param],
        ).to_arrow_reader(_BATCH)
        arrays = _Arrays.read(
            reader,
            sum(r[7] for r in keys),
            is_conversion=is_conversion,
            elem=elem_of_channel if level == "channel" else elem_of_event,
            by_channel=level == "channel",
        )
    start = int(start_us) if rules.start is not None else None
    return _table(
        arrays,
        names,
        rules,
        end,
        end_us=int(end_us),
        start_us=start,
        left_out=left_out,
        collapse_repeats=collapse_repeats,
        include_censored=include_censored,
    )


def small_transitions(
    source: Any,
    rules: JourneyRules,
    *,
    level: str,
    stage_map: Any,
    collapse_repeats: bool,
    include_censored: bool,
    check_names: Callable[[list[str]], None] | None = None,
) -> tuple[pd.DataFrame, dict[str, int], dict[str, Any]] | None:
    """:func:`event_transitions` over a small log read without DuckDB, or None.

    None when the log is not read this way (see
    :mod:`journeylab.journeys.arrow_events`), a time is finer than a
    microsecond, or ``check_names`` fails (the DuckDB path then reports it).
    """
    bounds = [b for b in (rules.period_end, rules.start) if b is not None]
    if any(pd.Timestamp(b).value % 1000 for b in bounds):
        return None
    a = read_events(source, stage_map=stage_map)
    if a is None:
        return None
    conversions = set(rules.conversions)
    n_events = len(a.event_names)
    is_conversion = np.array([name in conversions for name in a.event_names] + [False])
    touch = rules.touch_events
    if touch is None:
        conv_stage = a.stage_map.earliest_index(list(rules.conversions))
        is_touch_event = np.array(
            [conv_stage is None or stage is None or stage < conv_stage for stage in a.stage_index]
            + [False]
        )
        is_touch = is_touch_event[a.event] & (a.channel >= 0)
    else:
        listed = (
            set(a.event_names)
            if isinstance(touch, str) and touch == "all"
            else ({touch} if isinstance(touch, str) else set(touch))
        )
        is_touch = np.array([name in listed for name in a.event_names] + [False])[a.event]
    is_conv = is_conversion[a.event]
    takes_part = (is_conv | (is_touch & ~is_conv)) & (a.user >= 0) & a.has_t
    if rules.period_end is None:
        end = pd.Timestamp(int(a.t[a.has_t].max()), unit="us", tz="UTC") if a.has_t.any() else None
    else:
        end = rules.period_end
    end_us = pd.Timestamp(end if end is not None else _FAR_FUTURE).value // 1000
    left_out = {
        "incomplete_rows": int(np.count_nonzero((a.user < 0) | ~a.has_t)),
        "after_period_end": int(np.count_nonzero(takes_part & (a.t > end_us))),
    }
    events = dict(enumerate(a.event_names))
    if check_names is not None:
        try:
            check_names(list(events.values()))
        except Exception:  # the DuckDB path reports it, in its words
            return None
    channels = dict(enumerate(a.channel_names))
    names, elem_of_event, elem_of_channel = _states(level, events, channels, a.stage_map)
    by_channel = level == "channel"
    keys = [(a.event, n_events)]
    if by_channel:  # channel_key NULLS LAST
        keys.append(
            (np.where(a.channel >= 0, a.channel, len(a.channel_names)), len(a.channel_names) + 1)
        )
    rows = sorted_rows(
        np.flatnonzero(takes_part & (a.t <= end_us)), a.user, a.n_users, a.t, keys=keys
    )
    arrays = _Arrays(0)
    user, k, c = a.user[rows], a.event[rows], a.channel[rows]
    arrays.new_user = np.ones(len(rows), dtype=bool)
    arrays.new_user[1:] = user[1:] != user[:-1]
    arrays.t = a.t[rows]
    arrays.e = epoch_seconds(arrays.t)
    arrays.is_conv = is_conversion[k]
    arrays.no_channel = c == -1
    arrays.elem = (elem_of_channel[c + 1] if by_channel else elem_of_event[k]).astype(np.int32)
    start = pd.Timestamp(rules.start).value // 1000 if rules.start is not None else None
    return _table(
        arrays,
        names,
        rules,
        end,
        end_us=int(end_us),
        start_us=start,
        left_out=left_out,
        collapse_repeats=collapse_repeats,
        include_censored=include_censored,
    )


def _table(
    arrays: _Arrays,
    names: list[str],
    rules: JourneyRules,
    end: Any,
    *,
    end_us: int,
    start_us: int | None,
    left_out: dict[str, int],
    collapse_repeats: bool,
    include_censored: bool,
) -> tuple[pd.DataFrame, dict[str, int], dict[str, Any]]:
    """Count the transitions of the sorted rows; the table, the left-out counts, the settings."""
    counts, pairs = _count(
        arrays,
        elem=arrays.elem,
        n_states=len(names),
        look_us=_micros(rules.lookback),
        end_us=end_us,
        start_us=start_us,
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
    """The sorted rows as arrays: where each user starts, microseconds, epoch seconds, codes."""

    def __init__(self, n: int) -> None:
        self.new_user = np.zeros(n, dtype=bool)
        self.t = np.zeros(n, dtype=np.int64)
        self.e = np.zeros(n, dtype=np.float64)
        self.is_conv = np.zeros(n, dtype=bool)
        self.no_channel = np.zeros(n, dtype=bool)
        self.elem = np.zeros(n, dtype=np.int32)

    @classmethod
    def read(
        cls,
        reader: Any,
        n: int,
        *,
        is_conversion: np.ndarray,
        elem: np.ndarray,
        by_channel: bool,
    ) -> _Arrays:
        """Fill the arrays batch by batch (no copy of the user ids is kept)."""
        out = cls(n)
        pos, last_user = 0, None
        for batch in reader:
            m = batch.num_rows
            if not m:
                continue
            if pos + m > len(out.t):  # more rows than counted: grow
                out._grow(pos + m)
            users = batch.column(0)
            new_user = out.new_user[pos : pos + m]
            new_user[0] = last_user is None or users[0].as_py() != last_user
            if m > 1:
                new_user[1:] = pc.not_equal(users.slice(1), users.slice(0, m - 1)).to_numpy(
                    zero_copy_only=False
                )
            last_user = users[m - 1].as_py()
            out.t[pos : pos + m] = batch.column(1).to_numpy()
            out.e[pos : pos + m] = batch.column(2).to_numpy()
            k = batch.column(3).to_numpy()
            c = batch.column(4).to_numpy()
            out.is_conv[pos : pos + m] = is_conversion[k]
            out.no_channel[pos : pos + m] = c == -1
            out.elem[pos : pos + m] = elem[c + 1] if by_channel else elem[k]
            pos += m
        if pos < len(out.t):
            out._grow(pos)
        return out

    def _grow(self, n: int) -> None:
        for name in ("new_user", "t", "e", "is_conv", "no_channel", "elem"):
            old = getattr(self, name)
            new = np.zeros(n, dtype=old.dtype)
            new[: min(n, len(old))] = old[: min(n, len(old))]
            setattr(self, name, new)


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
) -> tuple[dict[str, int], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Cut the journeys and count the pairs; return the left-out counts and the pairs.

    The pairs are ``(keys, timed_keys, secs)``: ``from * n_states + to`` of
    every pair, and of the pairs between two rows (not from START, nor to
    NULL or END) with the time between the two.
    """
    n = len(a.t)
    names = ("outside_lookback", "truncated_touches", "truncated_journeys", "direct_conversions",
             "censored_journeys", "no_channel_touches", "ended_before_start")  # fmt: skip
    if n == 0:
        none = np.empty(0, dtype=np.int64)
        return dict.fromkeys(names, 0), (none, none, np.empty(0))
    itype = np.int32 if n < 2**31 - 1 else np.int64
    idx = np.arange(n, dtype=itype)
    is_conv, t = a.is_conv, a.t
    touch = ~is_conv
    last_row = np.ones(n, dtype=bool)  # the user's last row
    last_row[:-1] = a.new_user[1:]
    # the journey's end: the first conversion or user's last row at or after the
    # row; a conversion closes the journey, else it is the user's last and ends
    # at that last row, a touch
    end_row = np.minimum.accumulate(np.where(is_conv | last_row, idx, n)[::-1])[::-1]
    closed = is_conv[end_row]
    end = t[end_row]
    censored = ~closed & (end >= end_us - look_us)
    kept = touch & (t >= end - look_us)
    outside = touch & ~kept
    del closed
    before = end < start_us if start_us is not None else None
    del end

    def count(mask: np.ndarray) -> int:
        return int(np.count_nonzero(mask if before is None else mask & ~before))

    counts = dict.fromkeys(names, 0)
    counts["outside_lookback"] = count(outside)
    counts["no_channel_touches"] = count(kept & a.no_channel)  # before the cap
    counts["censored_journeys"] = count(last_row & touch & censored)
    if before is not None:
        counts["ended_before_start"] = int(
            np.count_nonzero((is_conv | (last_row & touch)) & before)
        )
    del outside
    if cap is not None:
        # the kept touches of a journey are its last ones, before its end row
        # (the conversion, or the user's last row, a touch)
        from_end = end_row - idx + np.where(is_conv[end_row], 0, 1)
        over = kept & (from_end > cap)
        counts["truncated_touches"] = count(over)
        counts["truncated_journeys"] = count(over & (from_end == cap + 1))
        kept &= ~over
        del from_end, over
    del end_row
    prev_kept = np.zeros(n, dtype=bool)
    prev_kept[1:] = kept[:-1] & ~a.new_user[1:]
    counts["direct_conversions"] = count(is_conv & ~prev_kept)
    shown = ~censored if not include_censored else np.ones(n, dtype=bool)
    if before is not None:
        shown &= ~before
    counted = (is_conv | kept) & shown
    start_code, conv_code, null_code, end_code = range(n_states - 4, n_states)
    wide = np.int64 if n_states * n_states >= 2**31 else np.int32
    prev_elem = np.empty_like(elem)
    prev_elem[0] = 0
    prev_elem[1:] = elem[:-1]
    if collapse_repeats:
        repeat = kept & prev_kept & (elem == prev_elem)
        counted &= ~repeat
        # each pair starts at the first touch of the run before the row
        src = np.maximum.accumulate(np.where(kept & ~repeat, idx, -1))
        src[1:] = src[:-1]
        src[0] = 0
        rows = np.flatnonzero(counted)
        linked = prev_kept[rows]
        from_code = np.where(linked, elem[src[rows]], start_code).astype(wide)
        to_code = np.where(is_conv[rows], conv_code, elem[rows])
        key = from_code * n_states + to_code
        timed_key = key[linked]
        timed_rows = rows[linked]
        secs = a.e[timed_rows] - a.e[src[timed_rows]]
    else:
        # each pair starts at the row before
        key = np.where(prev_kept, prev_elem, start_code).astype(wide) * n_states + np.where(
            is_conv, conv_code, elem
        )
        timed = counted & prev_kept  # never the first row
        timed_key = key[timed]
        secs = (a.e[1:] - a.e[:-1])[timed[1:]]
        key = key[counted]
    lasts = np.flatnonzero(last_row & touch & shown)
    # a run's state is that of each of its touches
    ends = elem[lasts].astype(wide) * n_states + np.where(censored[lasts], end_code, null_code)
    return counts, (np.concatenate([key, ends]), timed_key, secs)


def _frame(pairs: tuple[np.ndarray, np.ndarray, np.ndarray], names: list[str]) -> pd.DataFrame:
    """Group the pairs: count and ``quantile_cont``-median per (from, to), sorted by name."""
    key, timed_key, secs = pairs
    m = len(names)
    # a touch state named like a framing state (an event called "START") is one state
    first: dict[str, int] = {}
    canonical = np.array(
        [first.setdefault(name, i) for i, name in enumerate(names)], dtype=np.int64
    )
    if len(first) < m:
        key = canonical[key // m] * m + canonical[key % m]
        timed_key = canonical[timed_key // m] * m + canonical[timed_key % m]
    counts = np.bincount(key, minlength=m * m)
    present = np.flatnonzero(counts)
    medians = np.full(m * m, np.nan)
    if len(timed_key):
        order = np.argsort(
            timed_key.astype(np.int16) if m * m < 2**15 else timed_key, kind="stable"
        )
        tk, ts = timed_key[order], secs[order]
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
