"""Path tables for attribution: validation and canonical form.

Every attribution model reads a :class:`PathTable`
(:mod:`journeylab.journeys.coded_paths`): the distinct channel paths (as
integer codes into a sorted channel list) with the conversions, the conversion
value and the non-conversions of the journeys that followed each path. It is
built from

* ``path_table(..., coded=True)``, which returns it directly;

* the path table of :func:`journeylab.journeys.build.path_table` (columns ``path``
  — a tuple of channel names — ``conversions``, ``value``,
  ``non_conversions``);
* a ChannelAttribution-style table whose paths are strings such as
  ``"a > b > c"`` (:func:`read_path_table` with ``separator=">"`` and the
  column names of your table);
* a touch-level frame (``journey_id``, ``timestamp``, ``channel``,
  ``converted``, ``value``), grouped in DuckDB by
  :func:`journeylab.attribution.touches.touches_to_path_table`.

Canonicalisation, all of it documented and counted in ``PathTable.notes``:

* channel names are Unicode-normalised (NFKC) and stripped of surrounding
  white space, so ``"Paid Search"`` and ``"Paid\u3000Search "`` are one
  channel;
* rows with the same path are summed, so row order and splitting a row change
  nothing;
* consecutive repeats of a channel are collapsed (``A > A > B`` becomes
  ``A > B``) unless ``collapse_repeats=False``;
* fractional counts are kept as weights (e.g. de-duplicated or sampled
  journeys), never rounded;
* paths with no touch but with conversions are an error, or become the
  explicit channel ``"(direct)"`` with ``empty_paths="direct"``.

Rejected with a :class:`~journeylab.core.errors.DataError` naming the column and
the first rows: missing paths, missing or empty channel names, a channel name
containing the separator, negative, missing or infinite counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd

from journeylab.core.errors import DataError, ParameterError, SchemaError, check_in, require_columns
from journeylab.journeys.coded_paths import (
    DIRECT,
    EmptyPaths,
    PathTable,
    canonical_table,
    normalise_channel,
)

__all__ = [
    "DIRECT",
    "PathTable",
    "read_path_table",
    "normalise_channel",
]


def _numeric_column(frame: pd.DataFrame, column: str, source: str | None) -> np.ndarray:
    raw = frame[column]
    if raw.dtype.kind in "iuf":
        # Already numbers: only finiteness and sign are left to check.
        arr = raw.to_numpy(dtype=float)
        if np.isfinite(arr).all() and not (arr < 0).any():
            return arr
    values = pd.to_numeric(raw, errors="coerce")
    bad_type = values.isna() & raw.notna()
    if bad_type.any():
        rows = np.flatnonzero(bad_type.to_numpy()).tolist()
        raise DataError(
            f"Column {column!r} holds values that are not numbers "
            f"(e.g. {raw[bad_type].iloc[0]!r}).",
            source=source,
            column=column,
            rows=rows,
            hint="counts and values must be numbers; fix or drop those rows.",
        )
    arr = values.to_numpy(dtype=float, na_value=np.nan)
    for mask, what in (
        (np.isnan(arr), "missing (NaN)"),
        (np.isinf(arr), "infinite"),
        (arr < 0, "negative"),
    ):
        if mask.any():
            rows = np.flatnonzero(mask).tolist()
            raise DataError(
                f"Column {column!r} has {int(mask.sum())} {what} value(s); counts and "
                "values must be finite and >= 0.",
                source=source,
                column=column,
                rows=rows,
                hint="fill missing counts with 0 only if that is what they mean; "
                "otherwise fix the rows upstream.",
            )
    return arr


def _split_paths(
    raw: pd.Series, separator: str, column: str, source: str | None
) -> tuple[list[tuple[Any, ...]], bool]:
    """Turn each cell of the path column into a tuple of raw channel names.

    Also tell whether any cell was text (``"a > b"``).
    """
    cells = raw.tolist()
    kinds = set(map(type, cells))
    # Columns of one plain kind (as path_table and CSV readers give) skip the per-cell checks.
    if kinds <= {tuple}:
        return cells, False
    if kinds <= {tuple, list}:
        return list(map(tuple, cells)), False
    if kinds == {str}:
        # White space around the separator is layout, not part of the name.
        strip = str.strip
        return [
            tuple(map(strip, cell.split(separator))) if strip(cell) else () for cell in cells
        ], True
    return _split_cells(cells, separator, column, source), any(isinstance(c, str) for c in cells)


def _split_cells(
    cells: list[Any], separator: str, column: str, source: str | None
) -> list[tuple[Any, ...]]:
    """Cells of mixed kinds, one at a time (with the errors for missing or odd cells)."""
    out: list[tuple[Any, ...]] = []
    missing_rows: list[int] = []
    type_rows: list[int] = []
    for i, cell in enumerate(cells):
        if isinstance(cell, str):
            # White space around the separator is layout, not part of the name.
            parts = tuple(x.strip() for x in cell.split(separator)) if cell.strip() else ()
        elif isinstance(cell, (tuple, list, np.ndarray, pd.Series)):
            parts = tuple(cell)
        elif cell is None or cell is pd.NA or (isinstance(cell, float) and np.isnan(cell)):
            missing_rows.append(i)
            continue
        else:
            type_rows.append(i)
            continue
        out.append(parts)
    if missing_rows:
        raise DataError(
            f"Column {column!r} has {len(missing_rows)} missing path(s).",
            source=source,
            column=column,
            rows=missing_rows,
            hint="a journey without touches is an empty tuple () (or an empty string), "
            "not a missing value; drop or fix those rows.",
        )
    if type_rows:
        raise DataError(
            f"Column {column!r} must hold tuples of channel names or "
            f"{separator!r}-separated strings; found {type(cells[type_rows[0]]).__name__}.",
            source=source,
            column=column,
            rows=type_rows,
        )
    return out


def _canonical_names(
    raw_paths: Sequence[tuple[Any, ...]],
    separator: str,
    column: str,
    source: str | None,
    *,
    from_text: bool = True,
    distinct: Iterable[Any] | None = None,
) -> tuple[dict[Any, str], int]:
    """Map every distinct raw channel name to its canonical spelling.

    A separator inside a name only matters for paths read from text; paths given
    as tuples (as ``path_table`` builds them) keep any channel name.
    ``distinct``: the distinct names, when already known.
    """
    if distinct is None:
        distinct = dict.fromkeys(chain.from_iterable(raw_paths))
    mapping: dict[Any, str] = {}
    changed = 0
    for name in distinct:
        if not isinstance(name, str):
            rows = [i for i, p in enumerate(raw_paths) if any(n is name or n == name for n in p)]
            raise DataError(
                f"Column {column!r} has a channel name that is not a string ({name!r}).",
                source=source,
                column=column,
                rows=rows,
                hint="every touch needs a channel name; drop touches without a channel "
                "before building the path table.",
            )
        canonical = normalise_channel(name)
        if not canonical:
            rows = [i for i, p in enumerate(raw_paths) if name in p]
            raise DataError(
                f"Column {column!r} has an empty channel name (e.g. a doubled or "
                f"trailing separator {separator!r}).",
                source=source,
                column=column,
                rows=rows,
                hint=f"check the separator: paths must read 'a{separator}b{separator}c'.",
            )
        sep = separator.strip() or separator
        if from_text and sep in canonical:
            rows = [i for i, p in enumerate(raw_paths) if name in p]
            raise DataError(
                f"Channel name {canonical!r} contains the path separator {sep!r}, so "
                "paths written as text would be ambiguous.",
                source=source,
                column=column,
                rows=rows,
                hint="rename the channel (e.g. replace the separator with '/') or pass "
                "another separator=.",
            )
        changed += canonical != name
        mapping[name] = canonical
    return mapping, changed


def read_path_table(
    frame: pd.DataFrame,
    *,
    path: str = "path",
    conversions: str = "conversions",
    value: str | None = "value",
    non_conversions: str | None = "non_conversions",
    separator: str = ">",
    collapse_repeats: bool = True,
    empty_paths: EmptyPaths = "error",
    channels: Iterable[str] = (),
    source: str | None = None,
) -> PathTable:
    """Validate a path table and return its canonical :class:`PathTable`.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per path (rows with the same path are summed). The path column
        holds tuples/lists of channel names or strings joined by ``separator``.
    path, conversions, value, non_conversions : str
        Column names. ``value`` and ``non_conversions`` may be None (or absent
        when left at their defaults): they are then taken as 0.
        For a ChannelAttribution table pass e.g. ``conversions="total_conversions",
        value="total_conversion_value", non_conversions="total_null"``.
    separator : str
        Separator of string paths; white space around names is stripped.
    collapse_repeats : bool
        Collapse consecutive repeats of a channel (``A > A > B`` → ``A > B``).
    empty_paths : {"error", "direct"}
        What to do with converting journeys without any touch: raise, or credit
        them to the explicit channel ``"(direct)"``. Empty paths without
        conversions are kept (they only lower the baseline conversion rate).
    channels : iterable of str
        Extra channels to report even if no journey touches them (e.g. every
        channel with spend); they get 0 credit.
    source : str, optional
        Where the table came from, for error messages.

    Returns
    -------
    PathTable

    Examples
    --------
    >>> import pandas as pd
    >>> t = read_path_table(pd.DataFrame({"path": ["A > B", "B"], "conv": [3, 1], "null": [2, 5]}),
    ...                     conversions="conv", value=None, non_conversions="null")
    >>> t.channels, t.paths
    (('A', 'B'), ((0, 1), (1,)))
    """
    check_in("empty_paths", empty_paths, ["error", "direct"])
    if not isinstance(separator, str) or not separator:
        raise ParameterError(f"separator == {separator!r}, must be a non-empty string.")
    if not isinstance(frame, pd.DataFrame):
        raise SchemaError(
            f"A path table must be a pandas DataFrame, got {type(frame).__name__}.",
            source=source,
            hint="build one with journeylab.journeys.build.path_table(events).",
        )
    required = [path, conversions]
    for col, default in ((value, "value"), (non_conversions, "non_conversions")):
        if col is not None and (col != default or col in frame.columns):
            required.append(col)
    require_columns(frame, required, source=source, what="path")
    # A view without ``attrs``: pandas deep-copies a frame's attrs into every column taken.
    frame = pd.DataFrame(frame, copy=False)
    n = len(frame)
    conv = _numeric_column(frame, conversions, source)
    val = (
        _numeric_column(frame, value, source)
        if value is not None and value in frame.columns
        else np.zeros(n)
    )
    null = (
        _numeric_column(frame, non_conversions, source)
        if non_conversions is not None and non_conversions in frame.columns
        else np.zeros(n)
    )
    notes: list[str] = []
    raw_paths, from_text = _split_paths(frame[path], separator, path, source)
    # One hash pass numbers the raw names of every touch (in order of appearance).
    flat_names = list(chain.from_iterable(raw_paths))
    raw_touch, distinct = pd.factorize(np.fromiter(flat_names, dtype=object, count=len(flat_names)))
    if (raw_touch < 0).any() or not all(isinstance(name, str) for name in distinct):
        distinct = None  # missing names or names that are not text: reported one by one
    mapping, changed = _canonical_names(
        raw_paths, separator, path, source, from_text=from_text, distinct=distinct
    )
    if changed:
        notes.append(
            f"{changed} channel spelling(s) normalised (Unicode NFKC, surrounding spaces removed)."
        )
    # From here on the work is on flat per-touch arrays (one entry per touch).
    lengths = np.fromiter(map(len, raw_paths), dtype=np.int64, count=n)
    return canonical_table(
        [mapping[name] for name in distinct],
        raw_touch,
        lengths,
        (conv, val, null),
        notes=notes,
        collapse_repeats=collapse_repeats,
        empty_paths=empty_paths,
        channels=channels,
        column=path,
        source=source,
    )


def channel_codes(table: PathTable, names: Iterable[str]) -> list[int]:
    """Codes of the given channel names present in ``table`` (others ignored)."""
    code = {c: i for i, c in enumerate(table.channels)}
    return [code[n] for n in names if n in code]
