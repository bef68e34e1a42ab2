"""The embedded DuckDB engine every heavy aggregation runs in, and the one way to quote SQL.

:func:`cursor` opens a cursor on one shared in-memory database per process,
for queries that order every output explicitly (journeys, path tables);
temporary tables and registered frames are private to each cursor.
:func:`connect` opens a database of its own, keeping DuckDB's default of
preserving insertion order (loaders report source row numbers). Both run in
UTC, so naive timestamps in SQL casts read as UTC whatever the machine's zone,
and both apply the limits below.

Limits for large inputs are set once, by :func:`configure` or by environment
variables read when the database is first opened:

- ``JOURNEYLAB_DUCKDB_MEMORY_LIMIT`` (e.g. ``"5GB"``): past it DuckDB spills
  to disk instead of growing (its own default is 80 % of RAM);
- ``JOURNEYLAB_DUCKDB_TEMP_DIRECTORY``: where it spills;
- ``JOURNEYLAB_DUCKDB_THREADS``: worker threads (default: all cores).

Every name or text that is written into SQL rather than passed as a parameter
goes through :func:`quote_ident` (column, table and view names) or
:func:`quote_literal` / :func:`quote_list` (event names, paths, times), so an
event called ``it's`` or a column called ``a"b; --`` is data, never SQL. Two
copies of these rules once lived in ``io.sources`` and ``journeys.build``;
this is the only one. Prefer parameters (``?``) where DuckDB accepts them.
Only the names journeylab makes up itself (``jl_base_<hex>`` temporary tables,
fixed column names) are written bare.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import Any

import duckdb

from journeylab.core.errors import ParameterError

__all__ = [
    "configure",
    "connect",
    "cursor",
    "settings",
    "quote_ident",
    "quote_literal",
    "quote_list",
]

_ENV = {
    "memory_limit": "JOURNEYLAB_DUCKDB_MEMORY_LIMIT",
    "temp_directory": "JOURNEYLAB_DUCKDB_TEMP_DIRECTORY",
    "threads": "JOURNEYLAB_DUCKDB_THREADS",
}
_DATABASE: duckdb.DuckDBPyConnection | None = None
_LOCK = threading.Lock()
_SETTINGS: dict[str, str] = {}


def _text(value: Any, what: str) -> str:
    text = str(value)
    if "\x00" in text:
        raise ParameterError(
            f"{what} {text!r} contains a NUL character, which DuckDB cannot hold; "
            "remove it from the name or value."
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ParameterError(
            f"{what} {text!r} is not valid Unicode (a lone surrogate at position {exc.start}); "
            "decode the source with the right encoding."
        ) from None
    return text


def quote_ident(name: Any) -> str:
    """Quote an identifier for DuckDB SQL: in double quotes, inner double quotes doubled.

    Empty names and names with a NUL character are refused (:class:`ParameterError`).

    Examples
    --------
    >>> quote_ident('device'), quote_ident('say "hi"; --')
    ('"device"', '"say ""hi""; --"')
    """
    text = _text(name, "The SQL name")
    if not text:
        raise ParameterError(
            "An empty name cannot be a DuckDB column or table name; give it a name."
        )
    return '"' + text.replace('"', '""') + '"'


def quote_literal(value: Any) -> str:
    """Quote a text literal for DuckDB SQL: in single quotes, inner single quotes doubled.

    Backslashes need nothing: DuckDB string literals have no escapes. Text with a
    NUL character is refused (:class:`ParameterError`).

    Examples
    --------
    >>> quote_literal("it's")
    "'it''s'"
    """
    return "'" + _text(value, "The SQL text").replace("'", "''") + "'"


def quote_list(values: Iterable[Any]) -> str:
    """Quote texts as a DuckDB ``VARCHAR[]`` list literal.

    Examples
    --------
    >>> quote_list(["a", "it's"])
    "['a', 'it''s']::VARCHAR[]"
    """
    return "[" + ", ".join(quote_literal(v) for v in values) + "]::VARCHAR[]"


def settings() -> dict[str, str]:
    """Return the limits in force (explicit :func:`configure` values over environment variables)."""
    out = {key: os.environ[var] for key, var in _ENV.items() if os.environ.get(var)}
    out.update(_SETTINGS)
    return out


def _apply(con: duckdb.DuckDBPyConnection, values: dict[str, str]) -> None:
    for key, value in values.items():
        try:
            con.execute(f"SET {key} = ?", [int(value) if key == "threads" else str(value)])
        except duckdb.Error as exc:
            raise ParameterError(f"DuckDB setting {key} == {value!r} was refused: {exc}") from exc


def configure(
    *,
    memory_limit: str | None = None,
    temp_directory: str | None = None,
    threads: int | None = None,
) -> dict[str, str]:
    """Set DuckDB limits for every later query in this process.

    Parameters
    ----------
    memory_limit : str, optional
        e.g. ``"5GB"``; DuckDB spills to ``temp_directory`` past it.
    temp_directory : str, optional
        Folder for spilled data.
    threads : int, optional
        Worker threads.

    Returns
    -------
    dict
        The settings now in force.

    Examples
    --------
    >>> configure(threads=2)["threads"]
    '2'
    """
    given = {"memory_limit": memory_limit, "temp_directory": temp_directory, "threads": threads}
    new = {k: str(v) for k, v in given.items() if v is not None}
    with _LOCK:
        if _DATABASE is not None:
            _apply(_DATABASE, new)
        _SETTINGS.update(new)
    return settings()


#: Text leaves DuckDB as Arrow ``large_string``, the layout of pandas' ``str`` dtype, so
#: turning query results into pandas frames does not copy every string again.
_LARGE_TEXT = "SET arrow_large_buffer_size = true"

#: No progress bar: in a notebook DuckDB would draw a widget into the report.
NO_PROGRESS_BAR = "SET enable_progress_bar = false"


def connect() -> duckdb.DuckDBPyConnection:
    """Open a new in-memory database with the configured limits, in UTC; close it when done."""
    con = duckdb.connect(":memory:")
    _apply(con, settings())
    con.execute(_LARGE_TEXT)
    con.execute(NO_PROGRESS_BAR)
    con.execute("SET TimeZone = 'UTC'")
    return con


def cursor() -> duckdb.DuckDBPyConnection:
    """Open a cursor on the process's shared in-memory database, in UTC; close it when done."""
    global _DATABASE
    with _LOCK:
        if _DATABASE is None:
            database = duckdb.connect(":memory:")
            # Every output is ordered explicitly, so DuckDB need not keep input order.
            database.execute("SET preserve_insertion_order = false")
            database.execute(_LARGE_TEXT)
            database.execute(NO_PROGRESS_BAR)
            _apply(database, settings())
            _DATABASE = database
        con = _DATABASE.cursor()
    con.execute("SET TimeZone = 'UTC'")
    return con
