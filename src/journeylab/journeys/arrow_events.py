"""Small event logs read without DuckDB: the columns a count needs, as NumPy arrays.

For a log of up to :data:`SMALL_ROWS` rows (a pandas frame, or Parquet files
whose metadata say so), starting DuckDB and opening the log cost more than the
count itself. :func:`read_events` reads the user, timestamp, event and channel
columns with pyarrow instead (string columns dictionary-encoded, so they come
as integer codes) and gives the same integer keys as the ``src`` view of
:class:`journeylab.journeys.source._Events`: the event keys in the tie-breaker
order (stage-map rank, name), the channel keys in name order, timestamps in
microseconds. :func:`sorted_rows` sorts rows by user, time and such keys.

Only what reads exactly as DuckDB reads it goes this way: string (or
dictionary-of-string) user, event and channel columns (integer user ids too),
timestamps to the microsecond, one Parquet file or several with the same
columns, no glob patterns or Hive partitions. Anything else, and anything the
DuckDB path would report as an error (a missing column, an unknown name), makes
:func:`read_events` return ``None``, and the caller takes the DuckDB path,
which gives the same result or the error.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from journeylab.core.stages import StageMap
from journeylab.journeys.source import event_keys

__all__: list[str] = []

#: The largest log (rows) read without DuckDB.
SMALL_ROWS = 2_000_000
_COLUMNS = ("user_id", "timestamp", "event", "channel")
_US = {"s": 1_000_000, "ms": 1_000, "us": 1}
#: From this many rows on, columns are decoded on several threads (fewer: not worth starting them).
_THREADED_ROWS = 500_000


@dataclass
class EventArrays:
    """The rows of a log as arrays, in file order.

    ``user`` holds codes (equal codes, equal user ids; -1: missing), ``t``
    microseconds since the epoch (valid where ``has_t``), ``event`` the event
    key (-1: missing) into ``event_names`` (with ``stage_index`` per key),
    ``channel`` the channel key (-1: missing) into ``channel_names``.
    """

    user: np.ndarray
    n_users: int
    t: np.ndarray
    has_t: np.ndarray
    event: np.ndarray
    event_names: list[str]
    stage_index: list[int | None]
    channel: np.ndarray
    channel_names: list[str]
    stage_map: StageMap


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _arrow(source: Any, max_rows: int, columns: Sequence[str]) -> pa.Table | None:
    """Read the ``columns`` present in ``source`` as Arrow; None when it is not read here."""
    if isinstance(source, pd.DataFrame):
        if len(source) > max_rows or len(set(source.columns)) != len(source.columns):
            return None
        wanted = [c for c in columns if c in source.columns]
        try:
            return pa.Table.from_pandas(source[wanted], preserve_index=False)
        except (pa.ArrowException, TypeError, ValueError):
            return None
    if isinstance(source, (str, Path)):
        paths = [str(source)]
    elif (
        isinstance(source, (list, tuple))
        and source
        and all(isinstance(s, (str, Path)) for s in source)
    ):
        paths = [str(s) for s in source]
    else:
        return None
    # (globs and Hive partitions are DuckDB's to expand)
    if any(set(p) & set("*?[]{}=") or not os.path.isfile(p) for p in paths):
        return None
    import pyarrow.parquet as pq

    try:
        files, rows = [], 0
        for p in paths:
            try:
                f = pq.ParquetFile(p, memory_map=True, read_dictionary=list(columns))
            except KeyError:  # a column is missing: dictionaries for those present
                names = pq.ParquetFile(p, memory_map=True).schema_arrow.names
                f = pq.ParquetFile(
                    p, memory_map=True, read_dictionary=[c for c in columns if c in names]
                )
            rows += f.metadata.num_rows
            if rows > max_rows:
                return None
            files.append(f)
        schema = files[0].schema_arrow
        if len(set(schema.names)) != len(schema.names) or any(
            not f.schema_arrow.equals(schema) for f in files[1:]
        ):
            return None
        wanted = [c for c in columns if c in schema.names]
        threads = rows >= _THREADED_ROWS
        tables = [f.read(columns=wanted, use_threads=threads) for f in files]
    except (OSError, pa.ArrowException, ValueError):
        return None
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


def _indices(array: pa.Array) -> np.ndarray:
    """Return an integer array as NumPy, -1 where missing (no copy when nothing is)."""
    if array.null_count:
        array = array.fill_null(-1)
    return array.to_numpy(zero_copy_only=False)


def _codes(column: pa.ChunkedArray) -> tuple[np.ndarray, list[Any]] | None:
    """Integer codes (-1: missing) and the distinct values of a text column, or None."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        if not _is_text(kind.value_type):
            return None
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
        values = pc.dictionary_encode(column.dictionary)
        codes = _indices(column.indices)
        if len(values.dictionary) < len(column.dictionary):  # a value repeated: number again
            codes = np.append(_indices(values.indices), -1)[codes]
        return codes, values.dictionary.to_pylist()
    if _is_text(kind):
        encoded = pc.dictionary_encode(column).combine_chunks()
        return _indices(encoded.indices), encoded.dictionary.to_pylist()
    return None


def _user_codes(column: pa.ChunkedArray) -> tuple[np.ndarray, int] | None:
    """Codes of the user ids (text, or integers: their text is one per value), and how many."""
    kind = column.type
    if pa.types.is_integer(kind) or (pa.types.is_dictionary(kind) and _is_text(kind.value_type)):
        if not pa.types.is_dictionary(kind):
            column = pc.dictionary_encode(column)
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
        values = pc.dictionary_encode(column.dictionary)
        codes = _indices(column.indices)
        if len(values.dictionary) < len(column.dictionary):  # a value repeated: number again
            codes = np.append(_indices(values.indices), -1)[codes]
        return codes, len(values.dictionary)
    coded = _codes(column)
    return None if coded is None else (coded[0], len(coded[1]))


def _micros(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray] | None:
    """Microseconds since the epoch and where they are given, or None (not exact in µs)."""
    kind = column.type
    if not pa.types.is_timestamp(kind):
        return None
    column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if column.null_count:
        has_t = column.is_valid().to_numpy(zero_copy_only=False)
        raw = column.view(pa.int64()).fill_null(0).to_numpy()
    else:
        has_t = np.ones(len(column), dtype=bool)
        raw = column.view(pa.int64()).to_numpy()
    if kind.unit == "ns":
        if np.any(raw % 1000):
            return None  # DuckDB's rounding of nanoseconds is not ours to copy
        return raw // 1000, has_t
    return raw * _US[kind.unit] if kind.unit != "us" else raw, has_t


def read_events(
    source: Any, *, stage_map: Any, channels: bool = True, max_rows: int | None = None
) -> EventArrays | None:
    """Read a small log as arrays with DuckDB's keys, or None (take the DuckDB path).

    ``stage_map`` orders the event keys as :class:`journeylab.journeys.source._Events`
    does; ``channels=False`` leaves the channel column unread (every channel
    missing); ``max_rows`` defaults to :data:`SMALL_ROWS`.
    """
    columns = _COLUMNS if channels else _COLUMNS[:3]
    table = _arrow(source, SMALL_ROWS if max_rows is None else max_rows, columns)
    if table is None or any(c not in table.column_names for c in _COLUMNS[:3]):
        return None
    users = _user_codes(table.column("user_id"))
    times = _micros(table.column("timestamp"))
    events = _codes(table.column("event"))
    if users is None or times is None or events is None:
        return None
    if "channel" in table.column_names:
        channel = _codes(table.column("channel"))
        if channel is None:
            return None
    else:
        channel = (np.full(table.num_rows, -1, dtype=np.int64), [])
    sm = StageMap.coerce(stage_map)
    event_code, event_values = events
    present = np.bincount(event_code[event_code >= 0], minlength=len(event_values)) > 0
    keys = event_keys([v for v, p in zip(event_values, present, strict=True) if p], sm)
    key_of = {row[0]: i for i, row in enumerate(keys)}
    remap = np.array([key_of.get(v, -1) for v in event_values] + [-1], dtype=np.int64)
    channel_code, channel_values = channel
    used = np.bincount(channel_code[channel_code >= 0], minlength=len(channel_values)) > 0
    channel_names = sorted(v for v, u in zip(channel_values, used, strict=True) if u)
    channel_key = {name: i for i, name in enumerate(channel_names)}
    channel_remap = np.array(
        [channel_key.get(v, -1) for v in channel_values] + [-1], dtype=np.int64
    )
    return EventArrays(
        user=users[0],
        n_users=users[1],
        t=times[0],
        has_t=times[1],
        event=remap[event_code],
        event_names=[row[0] for row in keys],
        stage_index=[row[2] for row in keys],
        channel=channel_remap[channel_code],
        channel_names=channel_names,
        stage_map=sm,
    )


def sorted_rows(
    rows: np.ndarray,
    user: np.ndarray,
    n_users: int,
    t: np.ndarray,
    *,
    keys: Sequence[tuple[np.ndarray, int]] = (),
) -> np.ndarray:
    """Return ``rows`` ordered by user code, time, then each key (codes in ``[0, size)``).

    Rows equal on all of these come in no set order.
    """
    if len(rows) == 0:
        return rows
    u = user[rows].astype(np.int64)
    tt = t[rows]
    lo = int(tt.min())
    rel = tt - lo
    span = int(rel.max()) + 1
    for unit in (1_000_000, 1_000):
        if span > unit and not np.any(rel % unit):  # whole seconds (or ms): fewer bits
            rel //= unit
            span = int(rel.max()) + 1
            break
    sizes = [max(size, 1) for _, size in keys]
    if n_users * span * int(np.prod(sizes, dtype=object)) < 2**63:
        key = u * span + rel
        for (values, _), size in zip(keys, sizes, strict=True):
            key = key * size + values[rows]
        if np.all(key[1:] >= key[:-1]):  # a log stored in this order already
            return rows
        return rows[np.argsort(key)]
    order = np.lexsort(tuple(values[rows] for values, _ in reversed(keys)) + (tt, u))
    return rows[order]


def epoch_seconds(micros: np.ndarray) -> np.ndarray:
    """DuckDB's ``epoch()`` of a TIMESTAMPTZ as double: whole ms over 1e3 plus the rest over 1e6."""
    return (micros // 1000) / 1e3 + (micros % 1000) / 1e6
