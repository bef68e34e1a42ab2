"""Loaders that lose nothing: CSV, Parquet, DuckDB and DataFrames → canonical tables.

Every loader takes a ``source`` (a ``.csv``/``.csv.gz`` file, a ``.parquet``
file, a ``.duckdb`` database with ``table=`` or ``query=``, ``query=`` alone
over DuckDB's file readers, or a pandas DataFrame) and a mapping
``columns={source_name: canonical_name}``, and returns a :class:`LoadedTable`:
``.frame`` holds the canonical columns (see :mod:`journeylab.core.errors`) followed
by every other source column, kept as a property; ``.quality`` is the
:class:`~journeylab.io.quality.QualityReport` that counts, with the reason and
the first source rows, every row dropped, de-duplicated or repaired.

How values are read
-------------------
- CSV files are read with every column as text, then the canonical columns
  are cast explicitly. A cell that cannot be cast raises
  :class:`~journeylab.core.errors.DataError` naming the file, the column, the first
  offending file lines and what to do; bad lines are never skipped.
- Ids (``user_id``, ``session_id``, ``order_id``) are text: ``00123`` and
  ``123`` stay different, ``9007199254740993`` keeps every digit. Blank ids
  are counted and dropped (``missing user_id``).
- Timestamps are stored as ``datetime64[ns, UTC]``. Text with a UTC offset
  (``+01:00``, ``Z``) is converted exactly; naive times are local times in
  ``tz`` (UTC when ``tz`` is None, which the report notes). Local times that
  do not exist (spring DST gap) follow ``nonexistent`` and local times that
  occur twice (autumn) follow ``ambiguous``; repaired rows are counted.
- Extra columns keep their source type; text columns become numbers or
  booleans only when every value is written exactly so (``dtypes=`` makes it
  explicit).

Large files: ``start``/``end`` are pushed down to DuckDB, and
:func:`events_relation` returns a DuckDB relation with canonical columns for
out-of-core aggregation.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from journeylab.core.errors import (
    EVENT_COLUMNS,
    require_columns,
)
from journeylab.core.memory import release_free_memory
from journeylab.core.stages import EventNames, StageMap
from journeylab.core.timeparse import to_utc_timestamp
from journeylab.io.casting_time import Ambiguous, Nonexistent
from journeylab.io.frames import drop_unused_categories
from journeylab.io.identities import load_identities
from journeylab.io.pipeline import (
    ID_COLUMNS,
    Pipeline,
    duplicated_rows,
    sort_codes,
    stable_order,
)
from journeylab.io.pipeline import dedupe_window as dedupe_window_of
from journeylab.io.quality import LoadedTable, QualityReport, QualityStep
from journeylab.io.sources import ROW, canonical_event_relation
from journeylab.io.tables import (
    SCORE_SCALES,
    load_assignments,
    load_feedback,
    load_spend,
    load_transactions,
    timed_pipeline,
)

__all__ = [
    "LoadedTable",
    "QualityReport",
    "QualityStep",
    "load_events",
    "load_assignments",
    "load_feedback",
    "load_spend",
    "load_transactions",
    "load_identities",
    "sort_events",
    "event_rank",
    "events_relation",
    "NEAR_DUPLICATE_KEY",
    "SCORE_SCALES",
]

Source = str | Path | pd.DataFrame | None
Columns = Mapping[str, str] | None
TimeLike = str | pd.Timestamp | None

# -- events -----------------------------------------------------------------------


def load_events(
    source: Source = None,
    columns: Columns = None,
    *,
    table: str | None = None,
    query: str | None = None,
    tz: str | None = None,
    nonexistent: Nonexistent = "shift_forward",
    ambiguous: Ambiguous = "earliest",
    timestamp_format: str | None = None,
    start: TimeLike = None,
    end: TimeLike = None,
    dedupe: bool = True,
    dedupe_window: str | pd.Timedelta | None = "1s",
    stage_map: Any = None,
    dtypes: Mapping[str, str] | None = None,
    csv_options: Mapping[str, Any] | None = None,
    pseudonymize: bool = False,
) -> LoadedTable:
    """Load an event log into canonical columns, counting every row it drops or repairs.

    Parameters
    ----------
    source : path, DataFrame or None
        ``.csv``/``.csv.gz``, ``.parquet``, a ``.duckdb`` database (with
        ``table=`` or ``query=``), a DataFrame, or None with ``query=``
        (e.g. ``"SELECT * FROM read_parquet('events/*.parquet')"``).
    columns : dict, optional
        ``{source_name: canonical_name}``; canonical names are ``user_id``,
        ``timestamp``, ``event`` (required), ``channel``, ``value``,
        ``session_id``. Unmapped columns are kept as properties.
    table, query : str, optional
        DuckDB table name or SQL query.
    tz : str, optional
        IANA time zone of naive timestamps (``"America/New_York"``); None
        reads them as UTC (noted in the report). Ignored for times that carry
        an offset.
    nonexistent : {"shift_forward", "shift_backward", "raise"}
        Local times skipped by the spring DST change (02:30 on 2024-03-10 in
        New York): move to the first valid instant after (03:00 local) or
        before, or raise. Moved rows are counted.
    ambiguous : {"earliest", "latest", "raise"}
        Local times that occur twice (01:30 on 2024-11-03 in New York): the
        first occurrence (summer time), the second, or raise. Counted.
    timestamp_format : str, optional
        strftime format for non-ISO text, e.g. ``"%d/%m/%Y %H:%M"``.
    start, end : str or Timestamp, optional
        Keep events with ``start <= timestamp < end`` (UTC when naive); the
        filter is pushed down to DuckDB so large files are not read whole.
    dedupe : bool
        Remove exact duplicates (identical in every column) and near
        duplicates: same ``user_id``, ``event``, ``channel`` and ``value``,
        following the previous such event by at most ``dedupe_window`` (a
        burst of repeated clicks collapses to its first). Both are counted.
    dedupe_window : str or Timedelta or None
        Near-duplicate window (default one second); None keeps near duplicates.
    stage_map : StageMap, dict or path
        Orders events with identical timestamps (see :func:`sort_events`);
        there is no default map (the project file's ``stages`` give one).
    dtypes : dict, optional
        Explicit types for extra columns: ``{"region": "str", "score": "float"}``.
    csv_options : dict, optional
        DuckDB ``read_csv`` options such as ``{"delim": ";"}``. Options that
        would guess types or skip bad lines are refused.
    pseudonymize : bool
        Replace ``user_id`` by keyed HMAC pseudonyms (see
        :func:`journeylab.io.privacy.pseudonymize`).

    Returns
    -------
    LoadedTable
        ``frame`` sorted by :func:`sort_events`; ``quality`` the report. Ids are
        ``str``; ``event``, ``channel`` and the text properties whose values
        repeat (at most half as many distinct values as rows, unless typed by
        ``dtypes``) are pandas categoricals of the names the rows carry, sorted,
        a byte or two a row instead of a string each.

    Examples
    --------
    >>> raw = pd.DataFrame({
    ...     "customer": ["u1", "u1", "u1", " u2", None],
    ...     "time": ["2026-03-08 01:30", "2026-03-08 02:30", "2026-03-08 02:30",
    ...              "2026-03-09 10:00", "2026-03-09 11:00"],
    ...     "event": ["view", "cart", "cart", "view", "view"]})
    >>> loaded = load_events(raw, {"customer": "user_id", "time": "timestamp"},
    ...                      tz="America/New_York")
    >>> print(loaded.quality.summary())  # doctest: +NORMALIZE_WHITESPACE
    events from DataFrame: 5 rows read, 3 kept, 2 dropped.
      nonexistent local time: 2 rows repaired (first rows 2, 3) — DST: local time moved by policy 'shift_forward'
      user_id whitespace: 1 row repaired (first rows 4) — spaces around the id were removed
      missing user_id: 1 row dropped (first rows 5) — no id; the row cannot be used
      exact duplicate: 1 row deduplicated (first rows 3) — identical to an earlier row in every column;
        the first is kept
      note: timestamp: local times in America/New_York converted to UTC.
    >>> loaded.frame[["user_id", "timestamp", "event"]]
      user_id                 timestamp event
    0      u1 2026-03-08 06:30:00+00:00  view
    1      u1 2026-03-08 07:00:00+00:00  cart
    2      u2 2026-03-09 14:00:00+00:00  view
    """
    window = dedupe_window_of(dedupe_window)
    pipe = timed_pipeline(
        source,
        columns,
        "events",
        EVENT_COLUMNS["required"],
        table=table,
        query=query,
        csv_options=csv_options,
        tz=tz,
        nonexistent=nonexistent,
        ambiguous=ambiguous,
        timestamp_format=timestamp_format,
        start=start,
        end=end,
        # repeated text (names, channels, properties) is read as categories, never as strings
        categories_except=(*ID_COLUMNS, "timestamp", "value", *(dtypes or {})),
    )
    pipe.clean_text("event", drop=True)
    pipe.canonical_channels("channel")
    pipe.cast_numbers("value")
    pipe.cast_ids("session_id", drop=False)
    canonical = [*EVENT_COLUMNS["required"], *EVENT_COLUMNS["optional"]]
    pipe.properties(canonical, dtypes)
    pipe.categorical_text(("event", "channel"), dtypes)
    release_free_memory()  # the text the categoricals replaced: the sort starts from the codes
    # The sort keys are computed once, and the rows sorted once before de-duplication: the
    # order of the rows kept is that order without the rows dropped (the sort is stable).
    codes = _order_keys(pipe.frame, stage_map)
    order = _key_order(pipe.frame, codes)
    keep = np.ones(len(pipe.frame), dtype=bool)
    if dedupe:
        # rows identical in every column are neighbours in user_id, timestamp and event
        maybe = _repeats_in_order(order, [codes[c] for c in ("user_id", "timestamp", "event")])
        visible = [c for c in pipe.frame.columns if c != ROW]
        exact = duplicated_rows(pipe.frame, visible, maybe=maybe)
        _count_duplicates(pipe, exact, "exact duplicate", None, reason=_EXACT_REASON)
        keep &= ~exact
        if window is not None:
            bursts = _in_bursts(order, codes, window)
            near = _near_duplicates(pipe.frame, codes, keep & bursts, window)
            del bursts
            seconds = window.total_seconds()
            reason = (
                f"same user_id, event, channel and value within {seconds:g} s of the previous one"
            )
            _count_duplicates(pipe, near, "near duplicate", "timestamp", reason=reason)
            keep &= ~near
    if pseudonymize:  # new ids sort differently
        pipe.frame = pipe.frame.loc[keep].reset_index(drop=True)
        pipe.pseudonymize(pseudonymize)
        codes = {c: key[keep] for c, key in codes.items()}
        codes["user_id"] = sort_codes(pipe.frame["user_id"])
        order = _key_order(pipe.frame, codes)
    elif not keep.all():
        order = order[keep[order]]
    order = _break_ties(pipe.frame, codes, order)
    del codes  # the keys go before the rows are copied
    _take_rows(pipe, order)  # the one copy of the rows
    loaded = LoadedTable(pipe.finish(canonical), pipe.report, pipe.label)
    release_free_memory()  # what reading, sorting and de-duplicating held and freed
    return loaded


def _take_rows(pipe: Pipeline, order: np.ndarray) -> None:
    """``pipe.frame.take(order)`` with a fresh index, one column at a time, less the row numbers.

    Each source column is released once copied, so the rows are held about once, not twice.
    """
    frame = pipe.frame
    pipe.frame = pd.DataFrame()  # no view of the rows may keep them alive
    columns = {}
    for name in list(frame.columns):
        if name == ROW:  # source row numbers name rows in messages; none follow the copy
            del frame[name]
            continue
        column = frame[name].take(order).reset_index(drop=True)
        if isinstance(column.dtype, pd.CategoricalDtype):  # names only dropped rows carried
            column = drop_unused_categories(column)
        columns[name] = column
        del frame[name]
    pipe.frame = pd.DataFrame(columns, copy=False)


_EXACT_REASON = "identical to an earlier row in every column; the first is kept"


def _count_duplicates(
    pipe: Pipeline, mask: np.ndarray, step: str, column: str | None, *, reason: str
) -> None:
    """Count de-duplicated rows as :meth:`Pipeline.drop` does; the caller removes them."""
    if mask.any():
        pipe.record(mask, step, "deduplicated", column, reason)


#: Columns that must agree for two events to be near duplicates.
NEAR_DUPLICATE_KEY = ("user_id", "event", "channel", "value")


def _order_keys(frame: pd.DataFrame, stage_map: Any) -> dict[str, np.ndarray]:
    """Sort keys (see :func:`sort_codes`) of the columns that order events, and the event rank."""
    names = ["user_id", "timestamp", "channel", "value"]
    keys = {c: sort_codes(frame[c]) for c in names if c in frame}
    # the event's sort codes and its rank in the stage map, both computed once per name
    cat = pd.Categorical(frame["event"], ordered=True)
    codes = cat.codes.astype(np.int64)
    keys["event"] = np.where(codes == -1, len(cat.categories), codes)
    if stage_map is None:
        keys["rank"] = np.zeros(len(frame), dtype=np.int64)
    else:
        names_and_missing = pd.Series([*cat.categories, None], dtype=frame["event"].dtype)
        keys["rank"] = event_rank(names_and_missing, stage_map).to_numpy()[keys["event"]]
    for name in ("user_id", "event", "channel", "rank"):  # codes, half the memory
        if name in keys and keys[name].dtype.kind == "i" and len(keys[name]):
            if keys[name].max() < np.iinfo(np.int32).max:
                keys[name] = keys[name].astype(np.int32)
    return keys


def _in_bursts(order: np.ndarray, codes: dict[str, np.ndarray], window: pd.Timedelta) -> np.ndarray:
    """Rows within ``window`` of the user's event before or after them (rows by position).

    A near duplicate and the event it repeats are both such rows: every event of the
    user between them lies within the window too. Looking for near duplicates among
    these rows only gives the same rows while sorting a handful instead of the log.
    """
    users = codes["user_id"][order]
    ns = codes["timestamp"][order]
    close = users[1:] == users[:-1]
    del users
    close &= np.diff(ns) <= window.value
    del ns
    return _pairs_in_order(order, close)


def _pairs_in_order(order: np.ndarray, pair: np.ndarray) -> np.ndarray:
    """Rows (by position) on either side of a neighbour pair in ``order`` where ``pair`` holds.

    ``pair[i]`` tells about ``order[i]`` and ``order[i + 1]``.
    """
    either = np.zeros(len(order), dtype=bool)
    either[1:] |= pair
    either[:-1] |= pair
    out = np.zeros(len(order), dtype=bool)
    out[order[either]] = True
    return out


def _near_duplicates(
    frame: pd.DataFrame, codes: dict[str, np.ndarray], keep: np.ndarray, window: pd.Timedelta
) -> np.ndarray:
    """Rows (among ``keep``) that follow an event with the same key by at most ``window``."""
    key = [c for c in NEAR_DUPLICATE_KEY if c in frame]
    mask = np.zeros(len(frame), dtype=bool)
    rows = np.flatnonzero(keep)
    if not len(rows):
        return mask
    if frame["timestamp"].isna().any():  # the general path: missing times sort last
        part = frame.take(rows)
        order = part.sort_values([*key, "timestamp", ROW], kind="stable", na_position="last").index
        ordered = part.loc[order]
        group = ordered.groupby(key, dropna=False, sort=False).ngroup().to_numpy()
        same_key = np.r_[False, group[1:] == group[:-1]]
        gap = ordered["timestamp"].diff().to_numpy()
        close = same_key & (gap <= np.timedelta64(window.value, "ns"))
        mask[order.to_numpy()[close]] = True  # labels of part are positions in frame
        return mask
    # Only which rows share a key matters, not the order of the keys: the sort keys of the
    # text columns are codes equal where the values are; numbers count 0.0 and -0.0 (and
    # missing values) as equal, as grouping does. Each group is ordered by time, then
    # source row.
    every = len(rows) == len(frame)

    def kept(values: np.ndarray) -> np.ndarray:
        return values if every else values[keep]

    groups = _fused([kept(codes[c]) for c in key if c != "value"])
    if "value" in key:
        groups.append(kept(codes["value"]) + 0.0)
    ns = kept(codes["timestamp"])
    order = stable_order([*groups, ns, kept(frame[ROW].to_numpy())])
    same_key = np.ones(len(order), dtype=bool)
    same_key[0:1] = False
    for column in groups:
        ranked = column[order]
        same = ranked[1:] == ranked[:-1]
        if ranked.dtype.kind == "f":
            same |= np.isnan(ranked[1:]) & np.isnan(ranked[:-1])
        same_key[1:] &= same
    close = same_key & (np.r_[0, np.diff(ns[order])] <= window.value)
    mask[rows[order[close]]] = True
    return mask


def _fused(codes: list[np.ndarray]) -> list[np.ndarray]:
    """Fewer integer keys, equal on two rows exactly where all of ``codes`` are equal.

    ``codes`` are non-negative integers (sort codes); neighbours are packed into one
    64-bit key while their product of ranges fits.
    """
    out: list[np.ndarray] = []
    span = 0
    for code in codes:
        size = int(code.max(initial=0)) + 1
        if out and span * size < 2**62:
            out[-1] = out[-1] * size + code
            span *= size
        else:
            out.append(np.asarray(code, dtype=np.int64))
            span = size
    return out


def sort_events(frame: pd.DataFrame, stage_map: Any = None) -> pd.DataFrame:
    """Sort events into one deterministic order, whatever the input row order.

    The order is ``user_id``, ``timestamp``, then — for events at the same
    instant — the event's position in the stage map (the stages in journey
    order, and within a stage the order its events are listed, so ``cart``
    comes before ``purchase`` when listed so; events no stage lists come
    after all listed ones), then the event name, ``channel`` and
    ``value`` (missing last). Rows still tied are ordered by their remaining
    columns, so shuffling the input never changes the output.

    Parameters
    ----------
    frame : pandas.DataFrame
        Canonical events (``user_id``, ``timestamp``, ``event``; ``channel``
        and ``value`` used when present).
    stage_map : StageMap, dict or path
        The company's stage map (there is no default one).

    Returns
    -------
    pandas.DataFrame
        A sorted copy with a fresh RangeIndex.

    Examples
    --------
    >>> from journeylab.core.stages import StageMap
    >>> stages = StageMap.from_dict({"stages": [{"name": "consideration", "events": ["view"]},
    ...                                          {"name": "purchase", "events": ["cart", "purchase"]}]})
    >>> events = pd.DataFrame({"user_id": ["u1", "u1"], "event": ["purchase", "cart"],
    ...                        "timestamp": pd.to_datetime(["2026-05-01 10:00"] * 2, utc=True)})
    >>> sort_events(events, stages)["event"].tolist()
    ['cart', 'purchase']
    """
    require_columns(frame, ("user_id", "timestamp", "event"), what="events")
    return frame.take(_event_order(frame, _order_keys(frame, stage_map))).reset_index(drop=True)


def _event_order(frame: pd.DataFrame, codes: dict[str, np.ndarray]) -> np.ndarray:
    """Row positions in the order of :func:`sort_events`, from the keys of :func:`_order_keys`."""
    return _break_ties(frame, codes, _key_order(frame, codes))


def _sort_keys(frame: pd.DataFrame, codes: dict[str, np.ndarray]) -> list[np.ndarray]:
    names = ["user_id", "timestamp", "rank", "event"] + [
        c for c in ("channel", "value") if c in frame
    ]
    return [codes[c] for c in names]


def _key_order(frame: pd.DataFrame, codes: dict[str, np.ndarray]) -> np.ndarray:
    """Row positions sorted by the keys of :func:`sort_events`, ties in row order."""
    return stable_order(_sort_keys(frame, codes))


def _repeats_in_order(order: np.ndarray, keys: list[np.ndarray]) -> np.ndarray:
    """Rows (by position) whose ``keys`` equal those of a neighbour in ``order``."""
    same = np.ones(max(len(order) - 1, 0), dtype=bool)
    for column in keys:
        ranked = column[order]
        same &= ranked[1:] == ranked[:-1]
    return _pairs_in_order(order, same)


def _break_ties(frame: pd.DataFrame, codes: dict[str, np.ndarray], order: np.ndarray) -> np.ndarray:
    """Return ``order`` with rows equal in every key ordered by their remaining columns.

    ``order`` holds some rows of ``frame`` sorted by the keys; the rows it ties are ordered
    by their other columns as text, as :func:`sort_events` does.
    """
    keys = _sort_keys(frame, codes)
    tied = np.ones(max(len(order) - 1, 0), dtype=bool)
    for column in keys:
        ranked = column[order]
        same = ranked[1:] == ranked[:-1]
        if ranked.dtype.kind == "f":  # missing values tie with each other, as in duplicated()
            same |= np.isnan(ranked[1:]) & np.isnan(ranked[:-1])
        tied &= same
    if not tied.any():
        return order
    rows = np.sort(order)
    named = ["user_id", "timestamp", "event", "channel", "value"]
    rest = sorted(c for c in frame.columns if c not in named and c != ROW)
    part = [key[rows] for key in keys]
    part += [sort_codes(frame[c].take(rows).astype("str")) for c in rest]
    return rows[stable_order(part)]


def event_rank(events: pd.Series, stage_map: Any = None) -> pd.Series:
    """Position of each event in the stage map (unlisted events rank last).

    Without a stage map every event ranks the same, so events at the same
    instant are ordered by the next keys of :func:`sort_events` (the event
    name, then the channel): deterministic, but not in journey order.

    Examples
    --------
    >>> from journeylab.core.stages import StageMap
    >>> stages = StageMap.from_dict({"stages": [{"name": "consideration", "events": ["view"]},
    ...                                          {"name": "purchase", "events": ["cart", "purchase"]}]})
    >>> event_rank(pd.Series(["purchase", "cart", "refund"]), stages).tolist()
    [2, 1, 3]
    """
    if stage_map is None:
        return pd.Series(np.zeros(len(events), dtype=np.int64), index=events.index)
    sm = StageMap.coerce(stage_map)
    listed = sm.event_names()
    names = EventNames(listed)

    def rank(name: str) -> int:
        found = names.position(name)
        return len(listed) if found is None else found

    codes, uniques = pd.factorize(events, use_na_sentinel=True)
    ranks = np.array([rank(str(u)) for u in uniques] + [len(listed) + 1], dtype=np.int64)
    return pd.Series(ranks[np.where(codes >= 0, codes, len(uniques))], index=events.index)


# -- out-of-core --------------------------------------------------------------------


def events_relation(
    source: Source,
    columns: Columns = None,
    start: TimeLike = None,
    end: TimeLike = None,
    con: duckdb.DuckDBPyConnection | None = None,
    *,
    table: str | None = None,
    query: str | None = None,
    csv_options: Mapping[str, Any] | None = None,
) -> duckdb.DuckDBPyRelation:
    """Open an event source as a lazy DuckDB relation with canonical names and types.

    For aggregations too large for pandas (path tables, funnel counts): the
    relation is lazy, and ``start``/``end`` filters are pushed down to the
    file scan. Columns: ``user_id`` VARCHAR, ``timestamp`` TIMESTAMPTZ (UTC),
    ``event`` VARCHAR, and when present ``channel`` VARCHAR (trimmed),
    ``value`` DOUBLE, ``session_id`` VARCHAR; other columns as they are.
    Casts are strict (a bad value raises when the relation is executed).

    Unlike :func:`load_events` this does no quality work: naive timestamps
    are taken as UTC, channel names are only trimmed, no de-duplication, and
    rows without ``user_id``, ``timestamp`` or ``event`` are left out (use
    ``load_events`` to count them).

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "events.parquet"
    >>> pd.DataFrame({"user_id": ["u1", "u1", "u2"], "event": ["view", "buy", "view"],
    ...               "timestamp": pd.to_datetime(["2026-09-30 23:00", "2026-10-02 08:00",
    ...                                            "2026-10-05 09:30"], utc=True)}).to_parquet(path)
    >>> rel = events_relation(path, start="2026-10-01", end="2026-11-01")
    >>> rel.aggregate("event, count(*) AS n", "event").order("event").df()
      event  n
    0   buy  1
    1  view  1
    """
    return canonical_event_relation(
        source,
        columns,
        to_utc_timestamp(start, "start", optional=True),
        to_utc_timestamp(end, "end", optional=True),
        con,
        table=table,
        query=query,
        csv_options=csv_options,
    )
