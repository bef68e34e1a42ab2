"""Events → path table in one ordered pass: DuckDB sorts, NumPy cuts the journeys.

The rules are those of :mod:`journeylab.journeys.build` (and of the SQL in
:mod:`journeylab.journeys.tables`), applied to the rows that take part in the
stable tie-breaker order ``(user_id, timestamp, event_key, channel_key,
value)``. In that order a user's journeys are contiguous runs of rows (a
conversion is the last row of its journey), so every rule is a vectorised
step over the sorted rows, and the journeys come out in the order
``(user_id, journey index)``: each path's value is summed in that order, as
the SQL does.

DuckDB's sort spills to disk past its memory limit; the sorted rows are read
in batches (a user's rows never straddle two batches), so memory follows the
batch, not the log. A large log is sorted in ranges of user ids, one after
the other: the ranges follow each other in user order, so the rows come out
exactly as from one sort, and each range's sort fits in memory instead of
spilling. A path is grouped by its element codes packed as bytes (one Arrow
binary value per journey); only the distinct paths are turned into tuples of
names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from journeylab.core.sql import quote_list, quote_literal
from journeylab.journeys.coded_paths import PathTable
from journeylab.journeys.rules import DIRECT, NO_CHANNEL, NO_STAGE, JourneyRules
from journeylab.journeys.source import _Events, _micros

#: Rows per batch read from the sorted result.
BATCH_ROWS = 1 << 21
#: Sources with more rows than this are sorted in ranges of user ids (below it one
#: sort is as fast, and cutting the ranges costs a pass over the user ids).
SPLIT_ROWS = 1 << 25
#: Rows of the source per range.
RANGE_ROWS = 1 << 24
#: The user-id quantiles the ranges are cut from.
_QUANTILES = 64
#: The SQL type of the event and channel keys the sort carries (a narrower key sorts
#: faster), and the channel key of a touch without a channel: after every channel,
#: as NULLS LAST sorts. Vocabularies too long for the first use the second.
KEY_TYPES = (("SMALLINT", 2**15 - 1), ("INTEGER", 2**31 - 1))


class _PathSums:
    """Per-path counts and values, accumulated batch after batch in journey order.

    The journeys of several batches are held and folded in at once (one hash
    pass over their keys), so the Python work per fold is one step per distinct
    path rather than per batch.
    """

    #: Journeys held before they are folded into the sums (their path keys are
    #: held meanwhile: tens of MiB for paths of a few touches).
    FOLD = 1 << 20

    def __init__(self, direct: bytes | None) -> None:
        #: an element named like the direct path stands for it, as in SQL's GROUP BY
        self.direct = direct
        self.ids: dict[bytes, int] = {}
        self.conversions = np.zeros(0, dtype=np.int64)
        self.non_conversions = np.zeros(0, dtype=np.int64)
        self.value = np.zeros(0, dtype=np.float64)
        self._held: list[tuple[pa.Array, np.ndarray, np.ndarray]] = []
        self._n_held = 0

    def add(self, keys: pa.Array, converted: np.ndarray, value: np.ndarray) -> None:
        if len(keys) == 0:
            return
        self._held.append((keys, converted, value))
        self._n_held += len(keys)
        if self._n_held >= self.FOLD:
            self.fold()

    def fold(self) -> None:
        """Add the held journeys to the sums (in the order they came)."""
        if not self._held:
            return
        keys = pa.concat_arrays([k for k, _, _ in self._held])
        converted = np.concatenate([c for _, c, _ in self._held])
        value = np.concatenate([v for _, _, v in self._held])
        self._held, self._n_held = [], 0
        encoded = pc.dictionary_encode(keys)
        local = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        gmap = np.empty(len(encoded.dictionary), dtype=np.int64)
        for i, key in enumerate(encoded.dictionary.to_pylist()):
            if not key and self.direct is not None:
                key = self.direct
            gmap[i] = self.ids.setdefault(key, len(self.ids))
        size = len(self.ids)
        if size > len(self.value):
            grow = size - len(self.value)
            self.conversions = np.concatenate([self.conversions, np.zeros(grow, np.int64)])
            self.non_conversions = np.concatenate([self.non_conversions, np.zeros(grow, np.int64)])
            self.value = np.concatenate([self.value, np.zeros(grow, np.float64)])
        gid = gmap[local]
        self.conversions += np.bincount(gid[converted], minlength=size)
        self.non_conversions += np.bincount(gid[~converted], minlength=size)
        # unbuffered and in index order: the same sequential sum as SQL's sum(... ORDER BY ...)
        np.add.at(self.value, gid, value)


class _Scan:
    """The journeys of sorted rows, batch by batch; counts what the rules leave out."""

    def __init__(
        self,
        *,
        element: np.ndarray,
        element_by: str,
        no_channel_key: int,
        is_conversion: np.ndarray,
        dtype: Any,
        direct: bytes | None,
        look_us: int,
        cap: int | None,
        start_us: int | None,
        censor_us: int,
        collapse: bool,
        include_censored: bool,
    ) -> None:
        self.element, self.element_by, self.dtype = element, element_by, dtype
        self.no_channel_key = no_channel_key
        self.is_conversion = is_conversion
        self.look_us, self.cap, self.start_us = look_us, cap, start_us
        self.censor_us, self.collapse, self.include_censored = censor_us, collapse, include_censored
        self.sums = _PathSums(direct)
        self.totals = dict.fromkeys(
            (
                "outside_lookback",
                "truncated_touches",
                "truncated_journeys",
                "direct_conversions",
                "censored_journeys",
                "no_channel_touches",
                "ended_before_start",
            ),
            0,
        )

    def rows(self, users: pa.Array, cols: dict[str, np.ndarray]) -> None:
        """Fold rows that hold whole users (sorted) into the path sums."""
        n = len(users)
        if n == 0:
            return
        t, ek, ck = cols["t"], cols["ek"], cols["ck"]
        conv = self.is_conversion[ek]
        # a missing channel reads "(none)", the last
        ck = np.where(ck == self.no_channel_key, -1, ck)
        new_user = np.ones(n, dtype=bool)
        if n > 1:
            new_user[1:] = pc.not_equal(users[1:], users[:-1]).to_numpy(zero_copy_only=False)
        begins = new_user.copy()
        begins[1:] |= conv[:-1]  # the row after a conversion starts a new journey
        starts = np.flatnonzero(begins)
        jn = np.cumsum(begins) - 1
        n_j = len(starts)
        last = np.empty(n_j, dtype=np.int64)
        last[:-1] = starts[1:] - 1
        last[-1] = n - 1
        converted = conv[last]
        end = t[last]  # the conversion, or the journey's (= the user's) last touch
        value = np.where(converted, cols["v"][last], 0.0)
        touch = ~conv
        kept = touch & (t >= end[jn] - self.look_us)
        n_all = np.bincount(jn[touch], minlength=n_j)
        n_kept = np.bincount(jn[kept], minlength=n_j)
        n_touches = np.minimum(n_kept, self.cap) if self.cap is not None else n_kept
        no_channel = np.bincount(jn[kept & (ck < 0)], minlength=n_j)
        final = kept
        if self.cap is not None:
            # kept touches end at the journey's last touch: keep the last n_touches of them
            last_touch = last - converted
            final = kept & (last_touch[jn] - np.arange(n) < n_touches[jn])
        fe = self.element[ek[final] if self.element_by == "event" else ck[final]]
        fj = jn[final]
        if self.collapse and len(fe) > 1:
            keep = np.ones(len(fe), dtype=bool)
            keep[1:] = (fj[1:] != fj[:-1]) | (fe[1:] != fe[:-1])
            fe, fj = fe[keep], fj[keep]
        width = np.dtype(self.dtype).itemsize
        offsets = np.zeros(n_j + 1, dtype=np.int64)
        np.cumsum(np.bincount(fj, minlength=n_j) * width, out=offsets[1:])
        keys = pa.Array.from_buffers(
            pa.large_binary(),
            n_j,
            [None, pa.py_buffer(offsets), pa.py_buffer(fe.astype(self.dtype).tobytes())],
        )
        censored = ~converted & (end >= self.censor_us)
        inside = np.ones(n_j, dtype=bool)
        if self.start_us is not None:
            inside = end >= self.start_us
            self.totals["ended_before_start"] += int(n_j - inside.sum())
        totals = self.totals
        truncated = n_kept - n_touches
        totals["outside_lookback"] += int((n_all - n_kept)[inside].sum())
        totals["truncated_touches"] += int(truncated[inside].sum())
        totals["truncated_journeys"] += int(((truncated > 0) & inside).sum())
        totals["direct_conversions"] += int((converted & (n_touches == 0) & inside).sum())
        totals["censored_journeys"] += int((censored & inside).sum())
        totals["no_channel_touches"] += int(no_channel[inside].sum())
        chosen = inside if self.include_censored else inside & ~censored
        idx = np.flatnonzero(chosen)
        self.sums.add(keys.take(pa.array(idx)), converted[idx], value[idx])


def _key_sql(ev: _Events, column: str) -> tuple[str, str]:
    """Return the SQL of an event's ``event_key`` or a channel's ``channel_key`` and its join.

    A short vocabulary is searched in a list literal; a long one is joined.
    """
    names = ev.event_names if column == "event" else ev.channel_names
    if not names:
        return "NULL::BIGINT", ""
    if len(names) <= 64:
        return f"(list_position({quote_list(names)}, b.{column}) - 1)::BIGINT", ""
    table, key, alias = (
        (f"jl_rank_{ev.tag}", "event_key", "k")
        if column == "event"
        else (f"jl_chan_{ev.tag}", "channel_key", "c")
    )
    return (
        f"{alias}.{key}::BIGINT",
        f"LEFT JOIN (SELECT {column} AS {alias}_name, {key} FROM {table}) {alias} ON {alias}.{alias}_name = b.{column}",
    )


def _candidate_events(ev: _Events, rules: JourneyRules, conv_stage: int | None) -> list[str] | None:
    """Return the events that may be conversions or touches (None: any event may be a touch)."""
    conversions = list(rules.conversions)
    touch_events = rules.touch_events
    if isinstance(touch_events, str):
        if touch_events == "all":
            return None
        touch_events = [touch_events]
    if touch_events is not None:
        candidates = list(touch_events)
    else:
        sm = ev.stage_map
        stages = sm.event_to_stage(ev.event_names)
        candidates = [
            e
            for e in ev.event_names
            if conv_stage is None or not stages.get(e) or sm.index(stages[e]) < conv_stage
        ]
    return list(dict.fromkeys(e for e in [*conversions, *candidates] if e in ev.event_names))


def _element_codes(ev: _Events, level: str) -> tuple[np.ndarray, list[str], str]:
    """Map each event_key (level event/stage) or channel_key (channel) to a path-element code.

    Returns the lookup (indexed by key; a missing channel, key -1, reads the
    last entry, ``(none)``), the element names by code, and which key it reads.
    """
    if level == "channel":
        names = [*ev.channel_names, NO_CHANNEL]
        by = "channel"
    elif level == "event":
        names = list(ev.event_names)
        by = "event"
    else:
        stages = ev.stage_map.event_to_stage(ev.event_names)
        names = [stages.get(e) or NO_STAGE for e in ev.event_names]
        by = "event"
    distinct: dict[str, int] = {}
    lookup = np.array([distinct.setdefault(name, len(distinct)) for name in names], dtype=np.int64)
    return lookup, list(distinct), by


def path_sums(
    ev: _Events,
    rules: JourneyRules,
    *,
    level: str,
    collapse_repeats: bool,
    include_censored: bool,
    coded: bool = False,
) -> tuple[pd.DataFrame | PathTable, dict[str, int], dict[str, Any]]:
    """Return the path table of the events in ``ev``, the counts left out and the settings.

    With ``coded`` the table is the canonical :class:`PathTable`, built from the
    touches' codes without writing any path out as names.
    """
    con = ev.con
    conversions = list(rules.conversions)
    conv_sql = f"list_contains({quote_list(conversions)}, event)"
    conv_stage = ev.stage_map.earliest_index(conversions)
    # The rows that take part, read straight from the source: the touch
    # events' stages are settled here, by name, so no row needs a join.
    events = _candidate_events(ev, rules, conv_stage)
    if events is None:
        rows_sql = "event IS NOT NULL"
    elif not events:
        rows_sql = "FALSE"
    else:
        rows_sql = f"event IN ({', '.join(quote_literal(e) for e in events)})"
    if rules.touch_events is None:
        rows_sql += f" AND ({conv_sql} OR channel IS NOT NULL)"
    rows_sql += ' AND user_id IS NOT NULL AND "timestamp" IS NOT NULL'
    end = rules.period_end
    left_out = {"incomplete_rows": ev.incomplete_rows(), "after_period_end": 0}
    if end is None:
        end = ev.last_timestamp()  # no row lies after it
    else:
        left_out["after_period_end"] = int(
            ev.scalar(
                f'SELECT count(*) FROM ({ev.rows_sql}) WHERE {rows_sql} AND "timestamp" > ?::TIMESTAMPTZ',
                [end],
            )
        )
    end_param = end if end is not None else pd.Timestamp("2262-01-01", tz="UTC")
    look_us = _micros(rules.lookback)
    end_us, start_us = con.execute(
        "SELECT epoch_us(?::TIMESTAMPTZ), epoch_us(?::TIMESTAMPTZ)",
        [end_param, rules.start if rules.start is not None else end_param],
    ).fetchone()
    lookup, names, by = _element_codes(ev, level)
    dtype = np.uint16 if len(names) < 1 << 16 else np.uint32
    direct = np.array([names.index(DIRECT)], dtype=dtype).tobytes() if DIRECT in names else None
    longest = max(len(ev.event_names), len(ev.channel_names))
    key_type, no_channel_key = next((t, k) for t, k in KEY_TYPES if longest < k)
    scan = _Scan(
        element=lookup,
        no_channel_key=no_channel_key,
        is_conversion=np.isin(np.array(ev.event_names, dtype=object), conversions),
        element_by=by,
        dtype=dtype,
        direct=direct,
        look_us=look_us,
        cap=rules.max_touches,
        start_us=int(start_us) if rules.start is not None else None,
        censor_us=int(end_us) - look_us,
        collapse=collapse_repeats,
        include_censored=include_censored,
    )
    event_key, event_join = _key_sql(ev, "event")
    channel_key, channel_join = _key_sql(ev, "channel")
    conv_b = conv_sql.replace(", event)", ", b.event)")
    # Batches of a sorted result arrive in order only while insertion order is kept.
    con.execute("SET SESSION preserve_insertion_order = true")
    taking_part = (
        f'SELECT * FROM ({ev.rows_sql}) WHERE {rows_sql} AND "timestamp" <= ?::TIMESTAMPTZ'
    )

    def sorted_rows(users_sql: str, params: list[Any]) -> pa.RecordBatchReader:
        return con.sql(
            f"""
            SELECT b.user_id, epoch_us(b."timestamp") AS t, {event_key}::{key_type} AS ek,
                   coalesce({channel_key}, {no_channel_key})::{key_type} AS ck,
                   CASE WHEN {conv_b} THEN coalesce(b.value, 0) ELSE 0 END::DOUBLE AS v
            FROM ({taking_part}{users_sql}) b
            {event_join} {channel_join}
            ORDER BY b.user_id, t, ek, ck, b.value NULLS LAST
            """,
            params=[end_param, *params],
        ).to_arrow_reader(BATCH_ROWS)

    carry_users: pa.Array | None = None
    carry: dict[str, np.ndarray] = {}
    batches = (batch for users in _user_ranges(ev) for batch in sorted_rows(*users))
    for batch in batches:
        users = batch.column(0)
        cols = {
            name: batch.column(i + 1).to_numpy(zero_copy_only=False)
            for i, name in enumerate(("t", "ek", "ck", "v"))
        }
        if carry_users is not None:
            users = pa.concat_arrays([carry_users, users])
            cols = {k: np.concatenate([carry[k], v]) for k, v in cols.items()}
        n = len(users)
        if n == 0:
            continue
        # hold back the last user's rows: they may go on in the next batch
        changes = pc.not_equal(users[1:], users[:-1]).to_numpy(zero_copy_only=False)
        hits = np.flatnonzero(changes)
        cut = int(hits[-1]) + 1 if len(hits) else 0
        scan.rows(users[:cut], {k: v[:cut] for k, v in cols.items()})
        carry_users = users[cut:]
        carry = {k: v[cut:] for k, v in cols.items()}
    if carry_users is not None:
        scan.rows(carry_users, carry)
    left_out.update(scan.totals)
    table = (
        _coded_table(scan.sums, names, dtype, collapse_repeats=collapse_repeats)
        if coded
        else _table(scan.sums, names, dtype)
    )
    return table, left_out, rules.settings(end)


def _user_ranges(ev: _Events) -> list[tuple[str, list[Any]]]:
    """Cut the users of a large log into ranges of about ``RANGE_ROWS`` rows each.

    Returns each range's filter on ``user_id`` (SQL to append to the rows that
    take part) and its parameters, in user order; one range without a filter
    when the log is small. The cuts are quantiles of the user ids of every row
    of a fixed sample of users (by hash), so the ranges hold about as many rows.
    """
    total = ev.total_rows()
    if total <= SPLIT_ROWS:
        return [("", [])]
    every = max(1, total // (1 << 20))  # about a million rows
    quantiles = [i / _QUANTILES for i in range(1, _QUANTILES)]
    user = 'CAST("user_id" AS VARCHAR)'
    cuts = ev.con.execute(
        f"SELECT quantile_disc({user}, {quantiles}) FROM {ev.raw} WHERE hash({user}) % {every} = 0"
    ).fetchall()[0][0]
    if not cuts:
        return [("", [])]
    n_ranges = min(_QUANTILES, -(-total // RANGE_ROWS))
    chosen = sorted({cuts[round(i * _QUANTILES / n_ranges) - 1] for i in range(1, n_ranges)})
    bounds = [None, *chosen, None]
    ranges = []
    for low, high in zip(bounds[:-1], bounds[1:], strict=True):
        sql = [
            " AND user_id >= ?" if low is not None else "",
            " AND user_id < ?" if high is not None else "",
        ]
        ranges.append(("".join(sql), [b for b in (low, high) if b is not None]))
    return ranges


#: Largest (paths × longest path) matrix of name ranks sorted in one go; past it the
#: paths are sorted as tuples of names.
_SORT_CELLS = 1 << 24


def _path_codes(
    sums: _PathSums, names: Sequence[str], dtype: Any
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Return the element names, every touch's code and each path's length, path by path."""
    sums.fold()
    keys = list(sums.ids)
    n = len(keys)
    width = np.dtype(dtype).itemsize
    lengths = np.fromiter(map(len, keys), dtype=np.int64, count=n) // width
    # The direct path (an empty key) is the one element DIRECT, coded after the names.
    element_names = [*names, DIRECT]
    direct_key = np.array([len(names)], dtype=dtype).tobytes()
    codes = (
        np.frombuffer(b"".join(k or direct_key for k in keys), dtype=dtype).astype(np.int64)
        if n
        else np.zeros(0, dtype=np.int64)
    )
    return element_names, codes, np.maximum(lengths, 1)


def _coded_table(
    sums: _PathSums, names: Sequence[str], dtype: Any, *, collapse_repeats: bool
) -> PathTable:
    """Build the canonical :class:`PathTable` straight from the paths' codes.

    Repeats are collapsed again once the names are normalised: two raw names
    that are one channel (``"Email"``, ``"Email "``) may follow each other.
    """
    element_names, codes, lengths = _path_codes(sums, names, dtype)
    return PathTable.from_codes(
        element_names,
        codes,
        lengths,
        sums.conversions,
        sums.value,
        sums.non_conversions,
        collapse_repeats=collapse_repeats,
        empty_paths="direct",
    )


def _table(sums: _PathSums, names: Sequence[str], dtype: Any) -> pd.DataFrame:
    """Build the path table, ordered by conversions, then non-conversions (descending), then path."""
    element_names, codes, lengths = _path_codes(sums, names, dtype)
    n = len(lengths)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    flat = np.asarray(element_names, dtype=object)[codes].tolist()
    paths = [tuple(flat[a:b]) for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
    longest = int(lengths.max()) if n else 0
    if n * longest <= _SORT_CELLS:
        # Paths compare as tuples of names: rank the names, pad with 0 (shorter first).
        ranked = {name: i + 1 for i, name in enumerate(sorted(set(element_names)))}
        rank = np.array([ranked[e] for e in element_names], dtype=np.int64)
        matrix = np.zeros((n, longest), dtype=np.int64)
        row = np.repeat(np.arange(n), lengths)
        matrix[row, np.arange(len(codes)) - starts[row]] = rank[codes]
        order = np.lexsort((*matrix.T[::-1], -sums.non_conversions, -sums.conversions))
    else:
        conversions, non_conversions = sums.conversions.tolist(), sums.non_conversions.tolist()
        order = np.array(
            sorted(range(n), key=lambda i: (-conversions[i], -non_conversions[i], paths[i])),
            dtype=np.int64,
        )
    return pd.DataFrame(
        {
            "path": pd.Series([paths[i] for i in order.tolist()], dtype="object"),
            "conversions": sums.conversions[order].astype("int64"),
            "value": sums.value[order].astype("float64"),
            "non_conversions": sums.non_conversions[order].astype("int64"),
        }
    )
