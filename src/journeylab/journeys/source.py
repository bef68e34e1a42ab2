"""An event log opened in DuckDB: the typed ``src`` view every journey query reads.

:class:`_Events` opens a pandas frame, a DuckDB relation or Parquet file(s) in
a private cursor, types the canonical columns and adds the integer sort keys of
the stable tie-breaker (see :mod:`journeylab.journeys.build`).
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from journeylab.core import sql as engine
from journeylab.core.errors import ParameterError, SchemaError, did_you_mean, require_columns
from journeylab.core.sql import quote_ident, quote_list
from journeylab.core.stages import StageMap
from journeylab.io.loaders import event_rank


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------
def fetch_df(cursor: Any) -> pd.DataFrame:
    """``cursor.df()`` without DuckDB's pandas-3 deprecation warning (it is DuckDB's, not ours)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*inplace keyword.*")
        return cursor.df()


def _micros(delta: pd.Timedelta) -> int:
    return int(delta.value // 1000)


def event_keys(names: Sequence[str], sm: StageMap) -> list[tuple[str, int, int | None]]:
    """Order the distinct event ``names`` as the tie-breaker does: by stage-map rank, then name.

    Returns ``(event, event_rank, stage_index)`` in that order; an event's
    position in the list is its ``event_key``. Sorting on these integer keys
    is much cheaper than on the strings.
    """
    names = list(names)
    ranks = event_rank(pd.Series(names, dtype="object"), sm).tolist()
    rows = []
    for name, rank in zip(names, ranks, strict=True):
        stage = sm.stage_of(name)
        rows.append((name, int(rank), sm.index(stage) if stage else None))
    return sorted(rows, key=lambda row: (row[1], row[0]))


# ---------------------------------------------------------------------------
# opening an event source in DuckDB
# ---------------------------------------------------------------------------
class _Events:
    """An event log opened in a private DuckDB cursor as view ``src``; use it as a context manager.

    ``src`` has the canonical columns typed (``user_id`` VARCHAR,
    ``timestamp`` TIMESTAMPTZ in UTC, ``event`` VARCHAR, ``channel`` VARCHAR,
    ``value`` DOUBLE, and ``session_id`` and any ``keep`` columns when
    present), ``event_rank``, and the integer sort keys ``event_key`` and
    ``channel_key`` of the tie-breaker. ``with _Events(...) as ev:`` closes the
    cursor (and its temporary tables) on the way out; a constructor that fails
    closes it before raising.
    """

    def __init__(
        self,
        source: Any,
        *,
        stage_map: Any = None,
        keep: Sequence[str] = (),
        what: str = "events",
    ) -> None:
        self.con = engine.cursor()
        self.tag = uuid.uuid4().hex[:8]
        try:
            self._open(source, stage_map=stage_map, keep=keep, what=what)
        except BaseException:
            self.con.close()  # nobody gets the half-built object to close it
            raise

    def close(self) -> None:
        """Close the cursor; its temporary tables and registered frames go with it."""
        self.con.close()

    def __enter__(self) -> _Events:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    #: The Parquet files (or globs) the events are read from, or None.
    parquet: list[str] | None = None

    def _open(self, source: Any, *, stage_map: Any, keep: Sequence[str], what: str) -> None:
        raw = f"jl_raw_{self.tag}"
        handed = None
        if isinstance(source, pd.DataFrame):
            handed = _as_arrow(source, keep)
            self.con.register(raw, handed)
            self.source_name = "DataFrame"
        elif isinstance(source, duckdb.DuckDBPyRelation):
            # A relation lives in its own connection: stream it (as Arrow
            # batches) into this one, keeping only the columns needed.
            wanted = [
                c
                for c in ("user_id", "timestamp", "event", "channel", "value", "session_id", *keep)
                if c in source.columns
            ]
            require_columns(
                pd.DataFrame(columns=source.columns),
                ("user_id", "timestamp", "event"),
                source="DuckDB relation",
                what=what,
            )
            reader = source.project(
                ", ".join(quote_ident(c) for c in dict.fromkeys(wanted))
            ).to_arrow_reader()
            self.con.register(f"{raw}_reader", reader)
            self.con.execute(f"CREATE TEMP TABLE {raw} AS SELECT * FROM {raw}_reader")
            self.source_name = "DuckDB relation"
        elif isinstance(source, (str, Path)) or (
            isinstance(source, (list, tuple))
            and source
            and all(isinstance(s, (str, Path)) for s in source)
        ):
            paths = [str(p) for p in (source if isinstance(source, (list, tuple)) else [source])]
            self.con.execute(
                f"CREATE TEMP VIEW {raw} AS SELECT * FROM read_parquet({quote_list(paths)})"
            )
            self.source_name = ", ".join(paths)
            self.parquet = paths
        else:
            raise ParameterError(
                f"events must be a pandas DataFrame, a DuckDB relation or a Parquet path, "
                f"not {type(source).__name__}."
            )
        described = self.con.execute(f"DESCRIBE {raw}").fetchall()
        columns = [r[0] for r in described]
        self.raw_types = {r[0]: str(r[1]) for r in described}
        # a frame is handed over with the columns a query reads: name them all in errors
        listed = [str(c) for c in source.columns] if isinstance(source, pd.DataFrame) else columns
        require_columns(
            pd.DataFrame(columns=listed),
            ("user_id", "timestamp", "event"),
            source=self.source_name,
            what=what,
        )
        self.columns = columns
        for col in keep:
            if col not in columns:
                raise SchemaError(
                    f"The events table has no column {col!r}{did_you_mean(col, listed)}.",
                    source=self.source_name,
                    column=col,
                )
        #: The Arrow table a frame was handed over as (its null counts are known), or None.
        self.arrow = handed if hasattr(handed, "column") and hasattr(handed, "schema") else None
        known = _distinct_names(handed, "channel" in columns)
        if known is None:
            # the event and channel names in one scan (the distinct pairs are few)
            channel_sql = ', CAST("channel" AS VARCHAR)' if "channel" in columns else ""
            pairs = self.con.execute(
                f'SELECT DISTINCT CAST("event" AS VARCHAR){channel_sql} FROM {raw}'
            ).fetchall()
            known = (
                list(dict.fromkeys(r[0] for r in pairs)),
                sorted({r[1] for r in pairs if r[1] is not None}) if channel_sql else [],
            )
        events, found_channels = known
        names = pd.Series([e for e in events if e is not None], dtype="object")
        sm = StageMap.coerce(stage_map)
        self.stage_map = sm
        keys = event_keys(names.tolist(), sm)
        rank_frame = pd.DataFrame(
            {
                "event": pd.Series([k[0] for k in keys], dtype="object"),
                "event_rank": np.array([k[1] for k in keys], dtype="int64"),
                "stage_index": pd.array([k[2] for k in keys], dtype="Int64"),
                "event_key": np.arange(len(keys), dtype="int64"),
            }
        )
        #: The event names by ``event_key`` and the channel names by ``channel_key``.
        self.event_names: list[str] = rank_frame["event"].tolist()
        self.channel_names: list[str] = []
        self.con.register(f"jl_rank_{self.tag}", rank_frame)
        channel_join, channel_key = "", "CAST(NULL AS BIGINT) AS channel_key"
        if "channel" in columns:
            channels = found_channels
            self.con.register(
                f"jl_chan_{self.tag}",
                pd.DataFrame(
                    {
                        "channel": pd.Series(channels, dtype="object"),
                        "channel_key": np.arange(len(channels), dtype="int64"),
                    }
                ),
            )
            channel_join = (
                f'LEFT JOIN jl_chan_{self.tag} ch ON CAST(r."channel" AS VARCHAR) = ch.channel'
            )
            channel_key = "ch.channel_key AS channel_key"
            self.channel_names = channels
        self.other_rank = len(sm.event_names())
        extra = [
            c
            for c in dict.fromkeys(keep)
            if c not in ("user_id", "timestamp", "event", "channel", "value", "session_id")
        ]
        select = [
            'CAST(r."user_id" AS VARCHAR) AS user_id',
            'CAST(r."timestamp" AS TIMESTAMPTZ) AS "timestamp"',
            'CAST(r."event" AS VARCHAR) AS event',
            'CAST(r."channel" AS VARCHAR) AS channel'
            if "channel" in columns
            else "CAST(NULL AS VARCHAR) AS channel",
            'CAST(r."value" AS DOUBLE) AS value'
            if "value" in columns
            else "CAST(NULL AS DOUBLE) AS value",
            'CAST(r."session_id" AS VARCHAR) AS session_id'
            if "session_id" in columns
            else "CAST(NULL AS VARCHAR) AS session_id",
            f"coalesce(k.event_rank, {self.other_rank}) AS event_rank",
            "k.event_key AS event_key",
            channel_key,
            "k.stage_index AS stage_index",
            *[f"r.{quote_ident(c)} AS {quote_ident(c)}" for c in extra],
        ]
        self.con.execute(
            f"CREATE TEMP VIEW src AS SELECT {', '.join(select)} FROM {raw} r "
            f'LEFT JOIN jl_rank_{self.tag} k ON CAST(r."event" AS VARCHAR) = k.event {channel_join}'
        )
        self.has_channel = "channel" in columns
        self.raw = raw
        #: The five columns of a journey, typed as in ``src``, without the sort keys.
        self.rows_sql = f"SELECT {', '.join(select[:5])} FROM {raw} r"

    def parquet_statistics(self) -> dict[str, tuple[int, int | None]] | None:
        """Return the null counts of ``user_id`` and ``timestamp`` and the last timestamp.

        From the statistics of every Parquet row group, without reading rows:
        ``{"user_id": (nulls, None), "timestamp": (nulls, last epoch microsecond
        or None)}``. Only when every file names both columns exactly so, stores the
        times as microsecond UTC instants (other units or text would convert
        differently) and every row group has the counts; else None, and the data
        must be read. Kept after the first call.
        """
        if "_statistics" not in self.__dict__:
            self._statistics = None
            if self.parquet is not None:
                self._statistics = self._read_statistics(quote_list(self.parquet))
        return self._statistics

    def _read_statistics(self, files: str) -> dict[str, tuple[int, int | None]] | None:
        n_files, with_ids, with_times = self.con.execute(
            f"""
            SELECT count(DISTINCT file_name),
                   count(DISTINCT file_name) FILTER (WHERE name = 'user_id'),
                   count(DISTINCT file_name) FILTER (
                       WHERE name = 'timestamp' AND duckdb_type = 'TIMESTAMP WITH TIME ZONE')
            FROM parquet_schema({files})
            """
        ).fetchall()[0]
        if not n_files or not n_files == with_ids == with_times:
            return None
        rows = self.con.execute(
            f"""
            SELECT path_in_schema, count(*), count(stats_null_count), sum(stats_null_count),
                   count(*) FILTER (WHERE max_is_exact AND stats_max_value IS NOT NULL),
                   epoch_us(max(TRY_CAST(stats_max_value AS TIMESTAMPTZ))),
                   count(TRY_CAST(stats_max_value AS TIMESTAMPTZ)),
                   (SELECT count(*) FROM (
                       SELECT DISTINCT file_name, row_group_id FROM parquet_metadata({files})))
            FROM parquet_metadata({files})
            WHERE path_in_schema IN ('user_id', 'timestamp')
            GROUP BY path_in_schema
            """
        ).fetchall()
        found = {r[0]: r[1:] for r in rows}
        if set(found) != {"user_id", "timestamp"}:
            return None
        if any(not r[0] == r[1] == r[6] for r in found.values()):
            return None  # a row group without the column (by this name) or its null count
        chunks, _, nulls, exact, last, parsed, _ = found["timestamp"]
        finite = exact == parsed == chunks and last is not None  # a maximum in every chunk
        return {
            "user_id": (int(found["user_id"][2]), None),
            "timestamp": (int(nulls), int(last) if finite else None),
        }

    def incomplete_rows(self) -> int:
        """Count the rows without a user id or a timestamp (from Parquet statistics when they tell)."""
        if self.arrow is not None and not any(
            self.arrow.column(c).null_count for c in ("user_id", "timestamp")
        ):
            return 0  # an Arrow table counts its missing values as it is built
        stats = self.parquet_statistics()
        if stats is not None:
            nulls = [stats[c][0] for c in ("user_id", "timestamp")]
            if min(nulls) == 0:
                return max(nulls)  # at most one column lacks values: its count is the answer
        total, users, times = self.con.execute(
            f'SELECT count(*), count("user_id"), count("timestamp") FROM {self.raw}'
        ).fetchone()
        if total == users == times:
            return 0
        return int(
            self.scalar(
                f'SELECT count(*) FILTER (WHERE "user_id" IS NULL OR "timestamp" IS NULL) FROM {self.raw}'
            )
        )

    def total_rows(self) -> int:
        """Count the rows of the source (from Parquet metadata or the Arrow table; kept)."""
        if "_total_rows" not in self.__dict__:
            self._total_rows = (
                self.arrow.num_rows
                if self.arrow is not None
                else int(self.scalar(f"SELECT count(*) FROM {self.raw}"))
            )
        return self._total_rows

    def last_timestamp(self) -> pd.Timestamp | None:
        """Return the last timestamp in UTC (from Parquet statistics when the column is TIMESTAMPTZ)."""
        ts = (
            '"timestamp"'
            if self.raw_types.get("timestamp") == "TIMESTAMP WITH TIME ZONE"
            else 'CAST("timestamp" AS TIMESTAMPTZ)'
        )
        stats = self.parquet_statistics()
        if ts == '"timestamp"' and stats is not None and stats["timestamp"][1] is not None:
            return pd.Timestamp(stats["timestamp"][1], unit="us", tz="UTC")
        # epoch microseconds: fetching a TIMESTAMPTZ scalar would need pytz
        micros = self.scalar(f"SELECT epoch_us(max({ts})) FROM {self.raw}")
        return pd.Timestamp(int(micros), unit="us", tz="UTC") if micros is not None else None

    #: The stable tie-breaker, as an ORDER BY list.
    #: ``event_key`` orders as (stage-map rank, event name); ``channel_key`` as the channel name.
    ORDER = '"timestamp", event_key, channel_key NULLS LAST, value NULLS LAST'

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.con.execute(sql, list(params)).fetchall()[0][0]

    def df(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        return fetch_df(self.con.execute(sql, list(params)))


def _distinct_names(table: Any, has_channel: bool) -> tuple[list, list[str]] | None:
    """Return the distinct events (None included) and sorted channels of an Arrow table of text.

    None when ``table`` is not such a table: DuckDB then reads the names.
    (pyarrow's hash of a text column is cheaper than DuckDB's scan of it.)
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if not isinstance(table, pa.Table):
        return None
    names = ["event", "channel"] if has_channel else ["event"]
    kinds = [table.schema.field(c).type for c in names]
    if not all(pa.types.is_string(k) or pa.types.is_large_string(k) for k in kinds):
        return None
    if not has_channel:
        return pc.unique(table.column("event")).to_pylist(), []
    # The two columns are hashed at once (pyarrow releases the GIL while it hashes).
    with ThreadPoolExecutor(max_workers=2) as pool:
        found = pool.map(lambda c: pc.unique(table.column(c)).to_pylist(), names)
        events, channels = list(found)
    return events, sorted(c for c in channels if c is not None)


def _as_arrow(frame: pd.DataFrame, keep: Sequence[str]) -> Any:
    """Return the columns a journey query reads as an Arrow table (DuckDB scans it faster than pandas).

    Arrow-backed and numeric columns are handed over without a copy; a frame
    Arrow cannot hold (mixed objects in a column) is registered as it is.
    """
    import pyarrow as pa

    wanted = [
        c
        for c in dict.fromkeys(
            ("user_id", "timestamp", "event", "channel", "value", "session_id", *keep)
        )
        if c in frame.columns
    ]
    if len(set(frame.columns)) != len(frame.columns):
        return frame  # duplicate names: let DuckDB report them as before
    # A frame read from Parquet leaves about as much memory again unused in
    # Arrow's pool: give it back before DuckDB's sort takes memory of its own.
    pa.default_memory_pool().release_unused()
    try:
        return pa.Table.from_pandas(frame[wanted], preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError):
        return frame
