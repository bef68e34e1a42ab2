"""Open a source (CSV, Parquet, DuckDB table or query, DataFrame) as raw rows.

Private helpers of :mod:`journeylab.io.loaders`. CSV files are read with *every
column as text* (DuckDB ``all_varchar``): nothing is guessed from the first
rows, so ids keep their leading zeros and a column that turns from numbers to
text late in a big file cannot silently become NaN; the canonical columns are
cast explicitly afterwards, and cast failures raise. Typed sources (Parquet,
DuckDB, DataFrame) keep their types until the same explicit casts.

Every row carries its 1-based source position in the hidden column
:data:`ROW` (for CSV the record's position, header = 1), used in messages and
in the quality report; for CSV, :attr:`RawTable.line_of` turns positions into
the file lines a person sees (a quoted line break or a blank line shifts
them). Source column names are mapped onto canonical ones here; a CSV header
or a DataFrame that names a column twice is an error, and a CSV that DuckDB
cannot read is diagnosed exactly (encoding, ragged row, unclosed quote) by
:mod:`journeylab.io.csv_checks`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from journeylab.core import sql as engine
from journeylab.core.errors import (
    DataError,
    ParameterError,
    SchemaError,
    did_you_mean,
    require_columns,
)
from journeylab.core.sql import quote_ident, quote_literal
from journeylab.io import csv_checks as _csv_checks
from journeylab.io.frames import fetch_frame

ROW = "__source_row__"

_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.zst", ".tsv", ".tsv.gz", ".txt", ".txt.gz")
_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
_DUCKDB_SUFFIXES = (".duckdb", ".ddb", ".db")
#: CSV options that would guess types or skip bad rows: never allowed.
_FORBIDDEN_CSV_OPTIONS = {
    "ignore_errors",
    "all_varchar",
    "types",
    "dtypes",
    "column_types",
    "auto_type_candidates",
    "store_rejects",
    "null_padding",
}
#: Buffer around start/end for the pushed-down filter on timestamps that still
#: need a time-zone decision (local or offset text): wider than any UTC offset.
_FILTER_BUFFER = pd.Timedelta(days=2)


@dataclass
class RawTable:
    """Rows of a source with mapped column names and source row numbers."""

    frame: pd.DataFrame
    label: str
    kind: str
    row_label: str
    line_of: Callable[[np.ndarray], np.ndarray] | None = None


def source_kind(source: Any, table: str | None, query: str | None) -> str:
    """Classify a source: "dataframe", "csv", "parquet", "duckdb" or "query"."""
    if isinstance(source, pd.DataFrame):
        if table or query:
            raise ParameterError("table= and query= apply to DuckDB sources, not to a DataFrame.")
        return "dataframe"
    if source is None:
        if query is None:
            raise ParameterError(
                "No source given: pass a file path, a DataFrame, or query='SELECT ...'."
            )
        return "query"
    if not isinstance(source, (str, Path)):
        raise ParameterError(
            f"source is a {type(source).__name__}; pass a file path (CSV, Parquet, DuckDB), "
            "a pandas DataFrame, or query='SELECT ...'."
        )
    name = str(source).lower()
    if name.endswith(_DUCKDB_SUFFIXES):
        if table is None and query is None:
            raise ParameterError(
                f"{source} is a DuckDB database: say which rows to read with table='events' "
                "or query='SELECT ...'."
            )
        return "duckdb"
    if table is not None or query is not None:
        raise ParameterError(
            f"table= and query= need a DuckDB database (.duckdb) as source, not {source}; "
            'to query a CSV or Parquet file, pass source=None and query="SELECT ... FROM '
            "read_csv('file.csv')\"."
        )
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    raise ParameterError(
        f"Cannot tell the format of {source}: use a file ending in .csv, .csv.gz, .parquet "
        "or .duckdb, or read it yourself and pass a DataFrame."
    )


#: A read_csv named parameter: written into SQL as is, so nothing but a plain name.
_OPTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _csv_option_sql(options: Mapping[str, Any] | None) -> str:
    # Explicit: a header line, no lines skipped (DuckDB's sniffer may otherwise skip some).
    parts = ["header=true", "skip=0", "delim=','", "quote='\"'", "comment=''"]
    for key, value in (options or {}).items():
        if key.lower() in _FORBIDDEN_CSV_OPTIONS:
            raise ParameterError(
                f"csv_options[{key!r}] is not allowed: journeylab reads every CSV column as text "
                "and casts the canonical columns explicitly, so bad rows are reported, never "
                "skipped or guessed."
            )
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (int, float)):
            text = repr(value)
        else:
            text = quote_literal(value)
        if not _OPTION_NAME.fullmatch(str(key)):
            raise ParameterError(
                f"csv_options key {key!r} is not a read_csv option name; use names such as "
                "'delim', 'quote' or 'dateformat'."
            )
        aliases = {"sep": "delim", "delimiter": "delim"}
        parts = [
            p
            for p in parts
            if not p.startswith(f"{aliases.get(key, key)}=") and not p.startswith(f"{key}=")
        ]
        parts.append(f"{key}={text}")
    return ", ".join(parts)


def open_relation(
    source: Any,
    *,
    table: str | None = None,
    query: str | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    csv_options: Mapping[str, Any] | None = None,
    row_numbers: bool = True,
    window_numbers: bool = True,
) -> tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyRelation, str, str, str]:
    """Open a source as a DuckDB relation (bound once: file sniffing is not repeated).

    Returns ``(connection, relation, sql, kind, label)`` where ``sql`` is the
    SELECT behind the relation, for composing further SQL around it. With
    ``row_numbers`` the relation's first column is :data:`ROW`, except where
    only a window (``row_number() OVER ()``) could number the rows and
    ``window_numbers`` is false: a query, a CSV file, a set of Parquet files
    or a view. The caller then numbers the rows as they stream out, which
    gives the same numbers (DuckDB keeps the rows in order) without DuckDB
    first holding the whole result for the window.
    """
    kind = source_kind(source, table, query)
    label = {"dataframe": "DataFrame", "query": _query_label(query)}.get(kind, str(source))
    if kind in ("csv", "parquet", "duckdb"):
        path = Path(source)
        if "*" not in str(path) and not path.exists():
            raise FileNotFoundError(f"{path} does not exist (working directory: {Path.cwd()}).")
    if kind == "csv":
        _csv_checks.check_header(source, _csv_checks.dialect_of(csv_options, source), label)
    # A connection made here is closed here if opening fails; on success the caller owns it.
    own = kind == "duckdb" or con is None
    if kind == "duckdb":
        con = duckdb.connect(str(source), read_only=True)
        con.execute(engine.NO_PROGRESS_BAR)
        _set_utc(con)
    elif con is None:
        con = _new_connection()
    number = f"row_number() OVER () AS {ROW}, " if row_numbers and window_numbers else ""
    try:
        if kind == "dataframe":
            name = f"journeylab_source_{id(source)}"
            con.register(name, source)
            sql = f"SELECT {number}* FROM {quote_ident(name)}"
        elif kind == "csv":
            if str(source).lower().endswith((".tsv", ".tsv.gz")):
                csv_options = {"delim": "\t", **(csv_options or {})}
            scan = f"read_csv({quote_literal(source)}, all_varchar=true, {_csv_option_sql(csv_options)})"
            offset = first_row_number(kind, csv_options) - 1
            number = f"row_number() OVER () + {offset} AS {ROW}, " if number else ""
            sql = f"SELECT {number}* FROM {scan}"
        elif (
            kind == "parquet"
            and row_numbers
            and "*" not in str(source)
            and not _has_column(con, f"read_parquet({quote_literal(source)})", "file_row_number")
        ):
            # file_row_number keeps filters pushed down into the Parquet scan.
            sql = (
                f"SELECT file_row_number + 1 AS {ROW}, * EXCLUDE (file_row_number) "
                f"FROM read_parquet({quote_literal(source)}, file_row_number=true)"
            )
        elif kind == "parquet":
            sql = f"SELECT {number}* FROM read_parquet({quote_literal(source)})"
        elif table is not None:
            _check_table(con, table, label)
            is_view = con.execute(
                "SELECT count(*) FROM duckdb_views() WHERE view_name = ?", [table]
            ).fetchall()[0][0]
            # rowid (tables only) keeps filters pushed down; views, and tables with a
            # column of that name, are numbered in scan order.
            if row_numbers and not is_view and not _has_column(con, quote_ident(table), "rowid"):
                number = f"rowid + 1 AS {ROW}, "
            sql = f"SELECT {number}* FROM {quote_ident(table)}"
        else:
            sql = f"SELECT {number}* FROM ({query.strip().rstrip(';')}) AS journeylab_query"
        rel = con.sql(sql)
    except BaseException as exc:
        if own:
            con.close()
        if isinstance(exc, duckdb.Error):
            if kind == "csv":
                raise csv_error(exc, source, csv_options, label) from exc
            raise translate_duckdb_error(exc, label) from exc
        raise
    return con, rel, sql, kind, label


def _has_column(con: duckdb.DuckDBPyConnection, scan: str, name: str) -> bool:
    """Whether the relation ``scan`` (SQL) has a column called ``name`` (any case)."""
    return any(c.lower() == name for c in con.sql(f"SELECT * FROM {scan} LIMIT 0").columns)


def _numbers_rows(sql: str) -> bool:
    """Whether a SELECT made by :func:`open_relation` numbers the rows itself (its first column)."""
    head = sql.partition(" FROM ")[0]  # the part open_relation writes, before any source text
    return head.startswith("SELECT ") and f" AS {ROW}, *" in head


def first_row_number(kind: str, csv_options: Mapping[str, Any] | None) -> int:
    """Return the :data:`ROW` of a source's first row: its line in a CSV file with a header, else 1."""
    return 2 if kind == "csv" and _csv_checks.dialect_of(csv_options, "").header else 1


def _check_table(con: duckdb.DuckDBPyConnection, table: str, label: str) -> None:
    tables = [
        r[0]
        for r in con.sql(
            "SELECT table_name FROM duckdb_tables() UNION "
            "SELECT view_name FROM duckdb_views() WHERE NOT internal"
        ).fetchall()
    ]
    if table not in tables:
        raise SchemaError(
            f"Table {table!r} is not in the database{did_you_mean(table, tables)}; "
            f"tables: {sorted(tables)}.",
            source=label,
            hint="pass table= one of the tables listed, or query='SELECT ...'.",
        )


def csv_error(
    exc: Exception, source: Any, csv_options: Mapping[str, Any] | None, label: str
) -> DataError:
    """Explain why DuckDB could not read a CSV file: the exact line and reason when Python finds it."""
    found = _csv_checks.diagnose(source, _csv_checks.dialect_of(csv_options, source), label)
    return found if found is not None else translate_duckdb_error(exc, label)


def translate_duckdb_error(exc: Exception, label: str) -> DataError:
    """Turn a DuckDB error into a DataError that names the source and what to do."""
    text = str(exc).strip()
    hint = "fix the source at the place DuckDB names; journeylab never skips bad rows."
    if "invalid unicode" in text.lower() or "byte sequence" in text.lower():
        hint = (
            "the file is not UTF-8: save it as UTF-8 (in Excel: 'CSV UTF-8'; on the command "
            "line: iconv -f CP1252 -t UTF-8 in.csv > out.csv) and load it again."
        )
    elif "CSV" in text or "sniff" in text.lower():
        hint = (
            "check the delimiter, quoting and column count at the line named; pass "
            "csv_options={'delim': ';'} (or quote=, escape=) if the file uses another dialect. "
            "journeylab never skips bad lines."
        )
    elif "Conversion" in type(exc).__name__ or "Could not convert" in text:
        hint = "cast the column explicitly in your query (or fix the offending values)."
    lines = [line for line in text.splitlines() if line.strip()]
    detail = " ".join(lines[:2]) if len(lines) > 1 and len(lines[1]) < 200 else lines[0]
    return DataError(f"Could not read the source: {detail}", source=label, hint=hint)


def _new_connection() -> duckdb.DuckDBPyConnection:
    con = engine.connect()
    _set_utc(con)
    return con


def _set_utc(con: duckdb.DuckDBPyConnection) -> None:
    # Naive timestamps in SQL casts are read as UTC, whatever the machine's zone.
    try:
        con.execute("SET TimeZone = 'UTC'")
    except duckdb.Error:  # pragma: no cover - ICU missing
        pass


def _query_label(query: str | None) -> str:
    text = " ".join(str(query).split())
    return "query: " + (text if len(text) <= 80 else text[:77] + "...")


def mapped_names(
    present: list[str], columns: Mapping[str, str] | None, label: str, what: str
) -> dict[str, str]:
    """Validate ``columns={source: canonical}`` against the source's columns.

    Returns the full renaming (source name → output name) for every column.
    """
    columns = dict(columns or {})
    for src, dst in columns.items():
        if not isinstance(dst, str) or not dst:
            raise ParameterError(f"columns[{src!r}] == {dst!r}, must be a column name (str).")
        if dst.lower() == ROW:
            raise ParameterError(
                f"columns[{src!r}] == {dst!r}: that name is reserved for the source's row numbers; "
                "map the column to another name."
            )
    missing = [c for c in columns if c not in present]
    if missing:
        hints = [f"{c!r}{did_you_mean(c, present)}" for c in missing]
        raise SchemaError(
            f"columns= maps source column(s) {', '.join(hints)} that the {what} source does not have. "
            f"Columns present: {present}.",
            source=label,
            column=missing[0],
            missing_columns=missing,
            hint="use the source's own column names as the keys of columns=.",
        )
    renaming = {c: columns.get(c, c) for c in present}
    seen: dict[str, str] = {}
    for src, dst in renaming.items():
        if dst in seen:
            raise SchemaError(
                f"Two source columns would both be called {dst!r}: {seen[dst]!r} and {src!r}.",
                source=label,
                column=dst,
                hint=f"map only one of them to {dst!r}, or rename the other with columns=.",
            )
        seen[dst] = src
    return renaming


def read_rows(
    source: Any,
    columns: Mapping[str, str] | None,
    *,
    what: str,
    table: str | None = None,
    query: str | None = None,
    csv_options: Mapping[str, Any] | None = None,
    time_column: str | None = None,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    categories_except: Collection[str] | None = None,
) -> RawTable:
    """Read a source into pandas with mapped names and a :data:`ROW` column.

    ``start``/``end`` (UTC) are pushed down to DuckDB on ``time_column``: exact
    for tz-aware columns, with a two-day buffer otherwise (local or text
    times are only decided later); the loader applies the exact filter.
    With ``categories_except``, text columns whose values repeat are read
    into categoricals (see :func:`journeylab.io.frames.fetch_frame`), but for
    the columns it names (output names: ids, times, amounts).
    """
    kind = source_kind(source, table, query)
    if kind == "dataframe":
        present = [str(c) for c in source.columns]
        repeated = sorted({c for c in present if present.count(c) > 1})
        if repeated:
            raise SchemaError(
                f"The DataFrame has {len(repeated)} column name{'s' if len(repeated) > 1 else ''} "
                f"more than once: {repeated}.",
                source="DataFrame",
                column=repeated[0],
                hint="drop or rename the duplicates first, e.g. frame.loc[:, ~frame.columns.duplicated()].",
            )
        renaming = mapped_names(present, columns, "DataFrame", what)
        frame = source.copy()
        frame.columns = [renaming[str(c)] for c in source.columns]
        if ROW in frame.columns:
            raise SchemaError(f"The column name {ROW!r} is reserved.", source="DataFrame")
        frame.insert(0, ROW, range(1, len(frame) + 1))
        return RawTable(frame.reset_index(drop=True), "DataFrame", kind, "row")

    # Rows numbered as they stream out unless a time filter is pushed down (the
    # numbers must be the source's, before the filter).
    filtered = time_column is not None and (start is not None or end is not None)
    con, rel, sql, kind, label = open_relation(
        source, table=table, query=query, csv_options=csv_options, window_numbers=filtered
    )
    numbered = _numbers_rows(sql)
    if sum(c.lower() == ROW for c in rel.columns) > numbered:  # DuckDB ignores case
        con.close()
        raise SchemaError(
            f"The column name {ROW!r} is reserved: journeylab numbers the source's rows in it.",
            source=label,
            column=ROW,
            hint="rename or drop that column in the source (or in the query).",
        )
    number_from = None if numbered else first_row_number(kind, csv_options)
    with con:  # the rows are fetched into pandas below, so the connection can go
        present = [c for c in rel.columns if c != ROW]
        if kind == "csv" and len(present) == 1 and any(ch in present[0] for ch in ";\t|"):
            sep = next(ch for ch in ";\t|" if ch in present[0])
            raise SchemaError(
                f"The CSV has a single column {present[0]!r}: it is probably separated by {sep!r}, not ','.",
                source=label,
                hint=f"pass csv_options={{'delim': {sep!r}}}.",
            )
        renaming = mapped_names(present, columns, label, what)
        if time_column is not None and time_column in renaming.values() and (start or end):
            type_of = dict(zip(rel.columns, [str(t) for t in rel.types], strict=True))
            src_name = next(s for s, d in renaming.items() if d == time_column)
            condition = _time_filter(quote_ident(src_name), type_of[src_name], start, end)
            rel = con.sql(f"SELECT * FROM ({sql}) AS src WHERE {condition}")
        try:
            encoded = []
            if categories_except is not None:
                keep = set(categories_except)
                encoded = [src for src, dst in renaming.items() if dst not in keep]
            frame = fetch_frame(rel, categories=encoded, number_rows=(ROW, number_from))
        except duckdb.Error as exc:
            if kind == "csv":
                raise csv_error(exc, source, csv_options, label) from exc
            raise translate_duckdb_error(exc, label) from exc
    frame = frame.rename(columns=renaming)
    if kind == "csv":
        line_of = _csv_checks.LineMap(source, _csv_checks.dialect_of(csv_options, source))
        return RawTable(frame, label, kind, "line", line_of)
    return RawTable(frame, label, kind, "row")


def _time_filter(column: str, sql_type: str, start, end) -> str:
    conditions = []
    if "TIME ZONE" in sql_type.upper():
        if start is not None:
            conditions.append(f"{column} >= {quote_literal(start.isoformat())}::TIMESTAMPTZ")
        if end is not None:
            conditions.append(f"{column} < {quote_literal(end.isoformat())}::TIMESTAMPTZ")
        return f"({column} IS NULL OR ({' AND '.join(conditions)}))"
    cast = f"TRY_CAST({column} AS TIMESTAMP)"
    if start is not None:
        low = (start - _FILTER_BUFFER).tz_convert("UTC").tz_localize(None).isoformat()
        conditions.append(f"{cast} >= {quote_literal(low)}::TIMESTAMP")
    if end is not None:
        high = (end + _FILTER_BUFFER).tz_convert("UTC").tz_localize(None).isoformat()
        conditions.append(f"{cast} < {quote_literal(high)}::TIMESTAMP")
    # Rows whose time cannot be read here go through, to fail or be counted later.
    return f"({cast} IS NULL OR ({' AND '.join(conditions)}))"


_ID_COLUMNS = ("user_id", "session_id", "order_id")
_EVENT_REQUIRED = ("user_id", "timestamp", "event")


def canonical_event_relation(
    source: Any,
    columns: Mapping[str, str] | None,
    start_utc: pd.Timestamp | None,
    end_utc: pd.Timestamp | None,
    con: duckdb.DuckDBPyConnection | None = None,
    *,
    table: str | None = None,
    query: str | None = None,
    csv_options: Mapping[str, Any] | None = None,
) -> duckdb.DuckDBPyRelation:
    """Build the lazy canonical events relation behind :func:`journeylab.io.loaders.events_relation`."""
    con, rel, base_sql, _, label = open_relation(
        source, table=table, query=query, con=con, csv_options=csv_options, row_numbers=False
    )
    present = list(rel.columns)
    renaming = mapped_names(present, columns, label, "events")
    require_columns(
        pd.DataFrame(columns=list(renaming.values())), _EVENT_REQUIRED, source=label, what="events"
    )
    types = dict(zip(present, [str(t).upper() for t in rel.types], strict=True))
    source_of = {dst: src for src, dst in renaming.items()}
    raw_ts = quote_ident(source_of["timestamp"])
    ts_type = types[source_of["timestamp"]]
    conditions = []
    if start_utc is not None or end_utc is not None:
        for bound, op in ((start_utc, ">="), (end_utc, "<")):
            if bound is None:
                continue
            if _is_tz_aware(ts_type):
                # compare in the column's own type so the filter is pushed into the scan
                literal_type = "TIMESTAMPTZ" if "TIME ZONE" in ts_type else ts_type
                conditions.append(
                    f"{raw_ts} {op} {quote_literal(bound.isoformat())}::{literal_type}"
                )
            elif ts_type.startswith("TIMESTAMP") or ts_type == "DATE":
                naive = bound.tz_localize(None).isoformat()
                conditions.append(f"{raw_ts} {op} {quote_literal(naive)}::TIMESTAMP")
    select = []
    for src, dst in renaming.items():
        col, kind = quote_ident(src), types[src]
        if dst in _ID_COLUMNS:
            expr = _sql_id(col, kind, dst)
        elif dst == "timestamp":
            expr = _sql_timestamp(col, kind)
        elif dst in ("event", "channel"):
            expr = f"NULLIF(trim(CAST({col} AS VARCHAR)), '')"
        elif dst == "value":
            expr = (
                f"CAST(NULLIF(trim(CAST({col} AS VARCHAR)), '') AS DOUBLE)"
                if kind == "VARCHAR"
                else f"CAST({col} AS DOUBLE)"
            )
        else:
            expr = col
        select.append(f"{expr} AS {quote_ident(dst)}")
    inner = f"SELECT * FROM ({base_sql}) AS src" + (
        f" WHERE {' AND '.join(conditions)}" if conditions else ""
    )
    outer = ["user_id IS NOT NULL", "timestamp IS NOT NULL", "event IS NOT NULL"]
    if start_utc is not None:
        outer.append(f"timestamp >= {quote_literal(start_utc.isoformat())}::TIMESTAMPTZ")
    if end_utc is not None:
        outer.append(f"timestamp < {quote_literal(end_utc.isoformat())}::TIMESTAMPTZ")
    sql = (
        f"SELECT * FROM (SELECT {', '.join(select)} FROM ({inner}) AS raw) AS events "
        f"WHERE {' AND '.join(outer)}"
    )
    try:
        return con.sql(sql)
    except duckdb.Error as exc:
        raise translate_duckdb_error(exc, label) from exc


def _sql_id(col: str, kind: str, name: str) -> str:
    if kind in ("DOUBLE", "FLOAT", "REAL") or kind.startswith("DECIMAL"):
        return (
            f"CASE WHEN {col} IS NULL THEN NULL "
            f"WHEN {col} = round({col}) AND abs({col}) <= 9007199254740992 "
            f"THEN CAST(CAST({col} AS BIGINT) AS VARCHAR) "
            f"ELSE error({quote_literal(name + ' ')} || CAST({col} AS VARCHAR) "
            "|| ' is not a whole number; store ids as text') END"
        )
    return f"NULLIF(trim(CAST({col} AS VARCHAR)), '')"


def _is_tz_aware(kind: str) -> bool:
    """DuckDB spells zoned timestamps 'TIMESTAMP WITH TIME ZONE' or 'TIMESTAMPTZ_NS' (nanoseconds)."""
    return "TIME ZONE" in kind or kind.startswith("TIMESTAMPTZ")


def _sql_timestamp(col: str, kind: str) -> str:
    if _is_tz_aware(kind):
        # nanosecond Parquet (pandas' default) is read at DuckDB's microsecond precision
        return col if "TIME ZONE" in kind else f"CAST({col} AS TIMESTAMPTZ)"
    if kind.startswith("TIMESTAMP") or kind == "DATE":
        return f"timezone('UTC', CAST({col} AS TIMESTAMP))"
    text = f"NULLIF(trim(CAST({col} AS VARCHAR)), '')"
    offset = r"'\d:\d\d(:\d\d([.,]\d+)?)?\s*([Zz]|[+-]\d\d(:?\d\d)?)$'"
    return (
        f"CASE WHEN regexp_matches({text}, {offset}) THEN CAST({text} AS TIMESTAMPTZ) "
        f"ELSE timezone('UTC', CAST({text} AS TIMESTAMP)) END"
    )
