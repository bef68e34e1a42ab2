"""Exact diagnoses for CSV files: encoding, header, ragged rows, quotes, line numbers.

Private helpers of :mod:`journeylab.io.sources`. DuckDB reads CSV fast, but when
it cannot, its message is often "Error when sniffing file" with no line, or
names the line but not the reason. These helpers read the file the way
Python's :mod:`csv` module does (same delimiter and quoting) and say exactly
what is wrong:

1. a file that is not UTF-8 (UTF-16 with or without a byte-order mark,
   Windows-1252 or Latin-1 bytes) names the first offending line and byte;
2. a header that repeats a column name (DuckDB would silently rename the
   second one ``channel_1``) names both columns;
3. a row with more or fewer fields than the header names its line and counts;
4. a quote that is opened and never closed names the line where it opened.

They also map record numbers to physical file lines (:class:`LineMap`): a
quoted field holding a line break, or a blank line (DuckDB skips those),
shifts every later record's line, and messages must name the line a person
sees in an editor.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from journeylab.core.errors import DataError, ParameterError, SchemaError

__all__ = ["Dialect", "dialect_of", "check_header", "diagnose", "LineMap"]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Dialect:
    """How a CSV file is split into fields (the options DuckDB is given)."""

    delimiter: str = ","
    quotechar: str = '"'
    escapechar: str | None = None
    header: bool = True
    skip: int = 0  # lines before the header (or the first row), not read at all
    comment: str | None = None  # a line starting with it (after spaces) is not a row


def dialect_of(options: Mapping[str, Any] | None, path: str | Path) -> Dialect:
    """Translate ``csv_options`` (DuckDB names) into a :class:`Dialect`."""
    options = {k.lower(): v for k, v in (options or {}).items()}
    delimiter = options.get("delim", options.get("sep", options.get("delimiter")))
    if delimiter is None:
        delimiter = "\t" if str(path).lower().endswith((".tsv", ".tsv.gz")) else ","
    quote = options.get("quote", '"') or '"'
    escape = options.get("escape")
    if escape in ("", quote):
        escape = None
    skip = options.get("skip", 0)
    if isinstance(skip, bool) or not isinstance(skip, int) or skip < 0:
        raise ParameterError(
            f"csv_options['skip'] == {skip!r}: give a number of lines (0 or more)."
        )
    comment = str(options.get("comment") or "")[:1] or None
    return Dialect(
        str(delimiter)[:1] or ",", str(quote)[:1], escape, _header(options), skip, comment
    )


def _header(options: Mapping[str, Any]) -> bool:
    """Read ``header`` as DuckDB does: a bool, or the text true/false (1/0)."""
    value = options.get("header", True)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    if isinstance(value, (bool, int)) and value in (0, 1):
        return bool(value)
    raise ParameterError(
        f"csv_options['header'] == {value!r}: give true or false (whether the first line names the columns)."
    )


def _open_binary(path: Path) -> BinaryIO | None:
    name = str(path).lower()
    try:
        if name.endswith(".gz"):
            return gzip.open(path, "rb")
        if name.endswith(".bz2"):
            return bz2.open(path, "rb")
        if name.endswith(".zst"):
            return None  # no zstandard reader in the standard library
        return open(path, "rb")  # noqa: SIM115 - closed by the caller
    except OSError:
        return None


def _text(path: Path) -> io.TextIOWrapper | None:
    raw = _open_binary(path)
    if raw is None:
        return None
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="strict", newline="")


def _reader(handle: io.TextIOWrapper, dialect: Dialect):
    """Return a csv reader past the ``skip`` lines (its ``line_num`` + ``dialect.skip`` is a file line)."""
    for _ in range(dialect.skip):
        handle.readline()
    return csv.reader(
        handle,
        delimiter=dialect.delimiter,
        quotechar=dialect.quotechar,
        escapechar=dialect.escapechar,
        doublequote=dialect.escapechar is None,
        strict=True,
    )


def _is_comment(row: list[str], dialect: Dialect) -> bool:
    return bool(row) and dialect.comment is not None and row[0].lstrip().startswith(dialect.comment)


# -- encoding ---------------------------------------------------------------------


def _encoding_error(path: Path, label: str) -> DataError | None:
    """Name the first line that is not UTF-8, and what the file probably is."""
    raw = _open_binary(path)
    if raw is None:
        return None
    with raw:
        first = raw.read(4096)
        for bom, name in ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
                          (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16")):  # fmt: skip
            if first.startswith(bom):
                return _not_utf8(label, 1, f"the file starts with a {name} byte-order mark", name)
        if first.count(b"\x00") > len(first) // 4:
            return _not_utf8(label, 1, "every other byte is zero", "UTF-16")
        raw.seek(0)
        for line, text in enumerate(raw, 1):
            try:
                text.decode("utf-8")
            except UnicodeDecodeError as exc:
                guess = "Windows-1252 or Latin-1"
                try:
                    text.decode("cp1252")
                except UnicodeDecodeError:
                    guess = "another encoding"
                shown = text.rstrip(b"\r\n").decode("cp1252", errors="replace")[:80]
                return _not_utf8(
                    label,
                    line,
                    f"byte 0x{text[exc.start]:02x} on line {line} ({shown!r}) is not UTF-8; "
                    f"the file looks like {guess}",
                    "CP1252" if guess.startswith("Windows") else "THE-ENCODING",
                )
    return None


def _not_utf8(label: str, line: int, why: str, encoding: str) -> DataError:
    return DataError(
        f"The file is not UTF-8: {why}.",
        source=label,
        rows=[line],
        hint=(
            "save it as UTF-8 (in Excel: 'CSV UTF-8'; on the command line: "
            f"iconv -f {encoding} -t UTF-8 in.csv > out.csv) and load it again."
        ),
    )


# -- header and rows --------------------------------------------------------------


def check_header(path: str | Path, dialect: Dialect, label: str) -> None:
    """Raise :class:`SchemaError` when the header names a column twice (case and spaces ignored)."""
    if not dialect.header or "*" in str(path):
        return
    handle = _text(Path(path))
    if handle is None:
        return
    try:
        with handle:
            reader = _reader(handle, dialect)
            header = next((r for r in reader if r and not _is_comment(r, dialect)), [])
            line = reader.line_num + dialect.skip
    except (csv.Error, UnicodeDecodeError, OSError, StopIteration):
        return  # a broken header is diagnosed when DuckDB fails on it
    seen: dict[str, str] = {}
    for name in header:
        key = name.strip().casefold()
        if key in seen:
            raise SchemaError(
                f"The header (line {line}) names the column {name.strip()!r} twice "
                f"({seen[key]!r} and {name!r}); a second copy would be renamed silently.",
                source=label,
                column=name.strip(),
                rows=[line],
                hint=f"rename or remove one of the two columns in the file's line {line}.",
            )
        seen[key] = name


def diagnose(path: str | Path, dialect: Dialect, label: str) -> DataError | None:
    """Find the first reason a CSV file cannot be read; None when Python reads it cleanly."""
    path = Path(path)
    if "*" in str(path) or not path.is_file():
        return None
    problem = _encoding_error(path, label)
    if problem is not None:
        return problem
    handle = _text(path)
    if handle is None:
        return None
    hint = (
        "fix that line (a missing or extra delimiter, or a quote that is not closed); pass "
        "csv_options={'delim': ';'} (or quote=, escape=) if the file uses another dialect. "
        "journeylab never skips bad lines."
    )
    with handle:
        reader = _reader(handle, dialect)
        expected: int | None = None
        last_line = dialect.skip
        while True:
            start = last_line + 1
            try:
                row = next(reader)
            except StopIteration:
                return None
            except csv.Error as exc:
                if "end of data" in str(exc) or "EOF" in str(exc):
                    why = (
                        f"a quoted field opened on line {start} is never closed (the quote "
                        f"{dialect.quotechar!r} runs to the end of the file)"
                    )
                else:
                    why = f"the quoting of line {start} is malformed ({exc})"
                return DataError(
                    f"Cannot split the CSV into rows: {why}.", source=label, rows=[start], hint=hint
                )
            last_line = reader.line_num + dialect.skip
            if not row or _is_comment(row, dialect):
                continue  # a blank line, or a comment
            if expected is None:
                expected, first_line = len(row), start
                continue
            if len(row) != expected:
                spans = (
                    f" (a record running over lines {start}–{last_line}: probably an unclosed quote)"
                    if last_line > start
                    else ""
                )
                shown = dialect.delimiter.join(row)[:80]
                return DataError(
                    f"Line {start} has {len(row)} field{'s' if len(row) != 1 else ''}, "
                    f"{'the first line' if first_line == 1 else f'line {first_line}, the first read,'} "
                    f"has {expected}{spans}: {shown!r}.",
                    source=label,
                    rows=[start],
                    hint=hint,
                )


# -- record numbers → file lines --------------------------------------------------


class LineMap:
    """Translate 1-based record positions (header = 1) into the file line each record starts on.

    The file is read only when a line is asked for, and only as far as
    needed; a file without quote characters and without blank lines has
    records on consecutive lines and is not parsed at all.
    """

    def __init__(self, path: str | Path, dialect: Dialect) -> None:
        self.path = Path(path)
        self.dialect = dialect
        self._identity: bool | None = None
        self._starts: list[int] = []  # start line of record k at index k - 1
        self._done = False

    def _simple(self) -> bool:
        """Tell whether the file has no quote character and no blank line (records are lines)."""
        if self._identity is None:
            raw = _open_binary(self.path)
            if raw is None:
                self._identity = True
                return True
            if self.dialect.skip or self.dialect.comment:
                raw.close()
                self._identity = False  # lines that are not records: count them
                return False
            quote = self.dialect.quotechar.encode()
            simple, tail = True, b""
            with raw:
                while chunk := raw.read(_CHUNK):
                    data = (tail + chunk).replace(b"\r\n", b"\n")
                    if quote in data or b"\n\n" in data or data.startswith(b"\n"):
                        simple = False
                        break
                    tail = data[-1:]
            self._identity = simple
        return self._identity

    def _scan_to(self, record: int) -> None:
        handle = _text(self.path)
        if handle is None:
            self._done = True
            return
        self._starts, last = [], self.dialect.skip
        try:
            with handle:
                reader = _reader(handle, self.dialect)
                for row in reader:
                    start, last = last + 1, reader.line_num + self.dialect.skip
                    if row and not _is_comment(row, self.dialect):
                        self._starts.append(start)
                        if len(self._starts) >= record:
                            return
        except (csv.Error, UnicodeDecodeError, OSError):
            pass
        self._done = True

    def __call__(self, records: np.ndarray) -> np.ndarray:
        """Return the start line of each record (records past the scanned part map to themselves)."""
        records = np.asarray(records, dtype=np.int64)
        if records.size == 0 or self._simple():
            return records
        needed = int(records.max())
        if len(self._starts) < needed and not self._done:
            # Each scan starts at the top of the file: ask for at least twice as much as
            # before, so many growing requests cost a few passes, not one per request.
            self._scan_to(max(needed, 2 * len(self._starts)))
        starts = np.asarray(self._starts, dtype=np.int64)
        out = records.copy()
        inside = (records >= 1) & (records <= len(starts))
        out[inside] = starts[records[inside] - 1]
        return out
