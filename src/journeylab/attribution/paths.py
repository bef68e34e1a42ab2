"""Path tables for attribution: validation and canonical form.

Every attribution model reads a :class:`PathTable`: the distinct channel paths
(as integer codes into a sorted channel list) with the conversions, the
conversion value and the non-conversions of the journeys that followed each
path. It is built from

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

import copy
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Literal

import numpy as np
import pandas as pd

from journeylab.core.errors import DataError, ParameterError, SchemaError, check_in, require_columns

__all__ = [
    "DIRECT",
    "PathTable",
    "read_path_table",
    "normalise_channel",
]

#: The channel given to converting journeys without any touch when
#: ``empty_paths="direct"``.
DIRECT = "(direct)"

EmptyPaths = Literal["error", "direct"]


def normalise_channel(name: str) -> str:
    """Return the canonical spelling of a channel name (NFKC, stripped).

    Examples
    --------
    >>> normalise_channel(" Paid\u3000Search ")
    'Paid Search'
    """
    return unicodedata.normalize("NFKC", name).strip()


@dataclass(frozen=True)
class PathTable:
    """Distinct channel paths with their outcomes, ready for the models.

    Attributes
    ----------
    channels : tuple of str
        Channel names, sorted.
    paths : tuple of tuple of int
        One path per row, as indices into ``channels`` (in touch order).
    conversions, value, non_conversions : numpy.ndarray
        Weights of the journeys that followed each path (float, >= 0).
    notes : tuple of str
        What canonicalisation changed, in plain words.
    attrs : dict
        What the table was built with, as ``path_table(..., coded=True)`` records it
        (``left_out``, ``settings``, ``censoring``; see
        :func:`journeylab.journeys.build.path_table`); empty otherwise.
    """

    channels: tuple[str, ...]
    paths: tuple[tuple[int, ...], ...]
    conversions: np.ndarray
    value: np.ndarray
    non_conversions: np.ndarray
    notes: tuple[str, ...] = field(default=())
    attrs: dict[str, Any] = field(default_factory=dict, compare=False)

    def __getattr__(self, name: str) -> Any:
        # ``paths`` of a table read by read_path_table is built from the flat touch
        # arrays when first asked for (most models only need the flat arrays).
        if name == "paths" and "_flat" in self.__dict__:
            _, _, channel, lengths = self.__dict__["_flat"]
            coded = channel.tolist()
            ends = np.cumsum(lengths)
            starts = (ends - lengths).tolist()
            paths = tuple(tuple(coded[lo:hi]) for lo, hi in zip(starts, ends.tolist(), strict=True))
            object.__setattr__(self, "paths", paths)
            return paths
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @classmethod
    def _from_flat(
        cls,
        channels: tuple[str, ...],
        flat: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
        counts: tuple[np.ndarray, np.ndarray, np.ndarray],
        notes: tuple[str, ...] = (),
        attrs: dict[str, Any] | None = None,
    ) -> PathTable:
        """Build a table from its paths as flat touch arrays (see :meth:`flat`)."""
        out = object.__new__(cls)
        conversions, value, non_conversions = counts
        for name, v in (
            ("channels", channels),
            ("conversions", conversions),
            ("value", value),
            ("non_conversions", non_conversions),
            ("notes", notes),
            ("attrs", dict(attrs or {})),
            ("_flat", flat),
        ):
            object.__setattr__(out, name, v)
        return out

    @classmethod
    def from_codes(
        cls,
        names: Sequence[str],
        touches: Any,
        lengths: Any,
        conversions: Any,
        value: Any = None,
        non_conversions: Any = None,
        *,
        collapse_repeats: bool = True,
        empty_paths: EmptyPaths = "error",
        channels: Iterable[str] = (),
        source: str | None = None,
    ) -> PathTable:
        """Build the canonical table from paths given as integer codes of channel names.

        The same table :func:`read_path_table` gives for the paths written out as
        tuples of names, without making those tuples: what
        ``path_table(..., coded=True)`` uses.

        Parameters
        ----------
        names : sequence of str
            The name of each code (code ``i`` is ``names[i]``). Names no touch
            uses are left out, unless listed in ``channels``.
        touches : array of int
            The code of every touch, path after path, in touch order.
        lengths : array of int
            The touches of each path (0 for a journey without any touch).
        conversions, value, non_conversions : array of float
            Per path, finite and >= 0; ``value`` and ``non_conversions`` default to 0.
        collapse_repeats, empty_paths, channels, source
            As for :func:`read_path_table`.

        Examples
        --------
        >>> t = PathTable.from_codes(["b", "a", "c"], [1, 0, 0], [2, 1], [3, 1], non_conversions=[2, 5])
        >>> t.channels, t.paths, t.conversions.tolist()
        (('a', 'b'), ((0, 1), (1,)), [3.0, 1.0])
        """
        check_in("empty_paths", empty_paths, ["error", "direct"])
        touch = np.asarray(touches)
        sizes = np.asarray(lengths)
        if touch.ndim != 1 or (len(touch) and touch.dtype.kind not in "iu"):
            raise ParameterError("touches must be a one-dimensional array of integer codes.")
        if sizes.ndim != 1 or (len(sizes) and sizes.dtype.kind not in "iu"):
            raise ParameterError("lengths must be a one-dimensional array of whole numbers.")
        touch, sizes = touch.astype(np.int64), sizes.astype(np.int64)
        n = len(sizes)
        if (sizes < 0).any() or int(sizes.sum()) != len(touch):
            raise ParameterError(
                f"lengths must be >= 0 and sum to the {len(touch):,} touches; "
                f"they sum to {int(sizes.sum()):,}."
            )
        if len(touch) and (int(touch.min()) < 0 or int(touch.max()) >= len(names)):
            raise ParameterError(
                f"touch codes must lie in [0, {len(names)}), the codes of names; "
                f"found {int(touch.min())} to {int(touch.max())}."
            )
        counts = []
        for what, given in (
            ("conversions", conversions),
            ("value", value),
            ("non_conversions", non_conversions),
        ):
            arr = np.zeros(n) if given is None else np.asarray(given, dtype=float)
            if arr.shape != (n,):
                raise ParameterError(f"{what} must hold one number per path ({n:,}).")
            if not np.isfinite(arr).all() or (arr < 0).any():
                raise ParameterError(f"{what} must be finite and >= 0 on every path.")
            counts.append(arr)
        # only the names some touch uses, renumbered in their order
        used = np.unique(touch)
        renumber = np.zeros(len(names), dtype=np.int64)
        renumber[used] = np.arange(len(used))
        mapping = {}
        for i in used.tolist():
            name = names[i]
            canonical = normalise_channel(name) if isinstance(name, str) else ""
            if not canonical:
                raise ParameterError(
                    f"names[{i}] == {name!r}: every touched channel needs a non-empty name."
                )
            mapping[i] = canonical
        notes = []
        changed = sum(mapping[i] != names[i] for i in mapping)
        if changed:
            notes.append(
                f"{changed} channel spelling(s) normalised (Unicode NFKC, surrounding spaces removed)."
            )
        return _canonical_table(
            [mapping[i] for i in used.tolist()],
            renumber[touch],
            sizes,
            (counts[0], counts[1], counts[2]),
            notes,
            collapse_repeats=collapse_repeats,
            empty_paths=empty_paths,
            channels=channels,
            column="path",
            source=source,
        )

    def with_channels(self, channels: Iterable[str]) -> PathTable:
        """Return the table listing ``channels`` too (0 credit when no path touches them)."""
        extra = {normalise_channel(str(c)) for c in channels} - set(self.channels)
        if not extra:
            return self
        _, _, touch, lengths = self.flat()
        counts = (self.conversions, self.value, self.non_conversions)
        return _canonical_table(
            self.channels,
            touch,
            lengths,
            counts,
            list(self.notes),
            collapse_repeats=False,
            empty_paths="error",
            channels=extra,
            column="path",
            source=None,
        ).with_attrs(self.attrs)

    def with_attrs(self, attrs: dict[str, Any]) -> PathTable:
        """Return the same table with ``attrs`` (a copy of the mapping) as its record."""
        out = copy.copy(self)
        object.__setattr__(out, "attrs", dict(attrs))
        return out

    @property
    def n_paths(self) -> int:
        """Number of distinct paths."""
        return len(self.conversions)

    @property
    def journeys(self) -> np.ndarray:
        """Journeys per path (conversions + non-conversions)."""
        return self.conversions + self.non_conversions

    def path_labels(self, separator: str = " > ") -> list[str]:
        """Paths as readable strings (``"A > B"``)."""
        return [separator.join(self.channels[c] for c in p) for p in self.paths]

    def flat(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Touches as flat arrays: ``(row, position, channel, path_length)``.

        ``row``, ``position`` and ``channel`` have one entry per touch;
        ``path_length`` one per path.
        """
        cached = self.__dict__.get("_flat")
        if cached is None:
            lengths = np.fromiter(map(len, self.paths), dtype=np.int64, count=self.n_paths)
            channel = np.fromiter(
                chain.from_iterable(self.paths), dtype=np.int64, count=int(lengths.sum())
            )
            row = np.repeat(np.arange(self.n_paths), lengths)
            starts = np.cumsum(lengths) - lengths
            position = np.arange(len(channel)) - np.repeat(starts, lengths)
            cached = (row, position, channel, lengths)
            for a in cached:
                a.flags.writeable = False
            # Paths never change, so the flat arrays are computed once per table.
            object.__setattr__(self, "_flat", cached)
        return cached

    def with_counts(
        self, conversions: np.ndarray, value: np.ndarray, non_conversions: np.ndarray
    ) -> PathTable:
        """Return the same paths with other counts (used by the bootstrap)."""
        if "paths" not in self.__dict__:
            counts = (conversions, value, non_conversions)
            return PathTable._from_flat(self.channels, self._flat, counts, self.notes, self.attrs)
        out = PathTable(
            self.channels, self.paths, conversions, value, non_conversions, self.notes, self.attrs
        )
        if "_flat" in self.__dict__:
            object.__setattr__(out, "_flat", self._flat)
        return out

    def to_frame(self) -> pd.DataFrame:
        """Return the canonical table (path as a tuple of names, one row per path)."""
        return pd.DataFrame(
            {
                "path": [tuple(self.channels[c] for c in p) for p in self.paths],
                "conversions": self.conversions,
                "value": self.value,
                "non_conversions": self.non_conversions,
            }
        )


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
    return _canonical_table(
        [mapping[name] for name in distinct],
        raw_touch,
        lengths,
        (conv, val, null),
        notes,
        collapse_repeats=collapse_repeats,
        empty_paths=empty_paths,
        channels=channels,
        column=path,
        source=source,
    )


def _canonical_table(
    names: Sequence[str],
    raw_touch: np.ndarray,
    lengths: np.ndarray,
    counts: tuple[np.ndarray, np.ndarray, np.ndarray],
    notes: list[str],
    *,
    collapse_repeats: bool,
    empty_paths: EmptyPaths,
    channels: Iterable[str],
    column: str,
    source: str | None,
) -> PathTable:
    """Build the canonical table from touches coded by ``names`` (already canonical spellings).

    ``raw_touch`` holds one code per touch, in path then touch order; ``lengths``
    the touches of each row; ``counts`` the conversions, value and
    non-conversions of each row (checked: finite and >= 0).
    """
    conv, val, null = counts
    n = len(lengths)
    empty = lengths == 0
    empty_converting = empty & ((conv > 0) | (val > 0))
    add_direct = False
    if empty_converting.any():
        rows = np.flatnonzero(empty_converting).tolist()
        if empty_paths == "error":
            raise DataError(
                f"{len(rows)} path row(s) have conversions but no touch, so no channel "
                "can be credited.",
                source=source,
                column=column,
                rows=rows,
                hint=f"pass empty_paths='direct' to credit them to the channel {DIRECT!r}, "
                "or fix how journeys are built.",
            )
        add_direct = True

    extra = {normalise_channel(str(c)) for c in channels}
    channels = tuple(sorted(set(names) | ({DIRECT} if add_direct else set()) | extra))
    code = {c: i for i, c in enumerate(channels)}
    lookup = np.array([code[name] for name in names], dtype=np.int64)
    touch = lookup[raw_touch] if len(raw_touch) else np.zeros(0, dtype=np.int64)
    row = np.repeat(np.arange(n), lengths)
    if collapse_repeats and len(touch) > 1:
        repeat = np.zeros(len(touch), dtype=bool)
        repeat[1:] = (touch[1:] == touch[:-1]) & (row[1:] == row[:-1])
        n_collapsed = len(np.unique(row[repeat]))
        if n_collapsed:
            touch, row = touch[~repeat], row[~repeat]
            lengths = np.bincount(row, minlength=n).astype(np.int64)
            notes.append(f"consecutive repeats collapsed in {n_collapsed} path row(s).")
    if add_direct:
        direct_rows = np.flatnonzero(empty_converting)
        row = np.concatenate([row, direct_rows])
        touch = np.concatenate([touch, np.full(len(direct_rows), code[DIRECT], dtype=np.int64)])
        by_row = np.argsort(row, kind="stable")
        row, touch = row[by_row], touch[by_row]
        lengths = lengths.copy()
        lengths[direct_rows] = 1
        notes.append(
            f"{int(conv[empty_converting].sum()):,} conversion(s) without any touch "
            f"credited to {DIRECT!r}."
        )
    frac = (conv % 1 != 0) | (null % 1 != 0)
    if frac.any():
        notes.append(f"{int(frac.sum())} row(s) have fractional counts, used as weights.")

    inverse, first, m = _distinct_paths(touch, lengths, channels)
    if m < n:
        notes.append(f"{n - m} row(s) with a repeated path summed.")
    # The touches of the first row of each distinct path, in the order of the paths.
    starts = np.cumsum(lengths) - lengths
    out_lengths = lengths[first]
    out_ends = np.cumsum(out_lengths)
    out_starts = out_ends - out_lengths
    total = int(out_ends[-1]) if m else 0
    gather = np.repeat(starts[first] - out_starts, out_lengths) + np.arange(total)
    out_touch = touch[gather]
    flat = (
        np.repeat(np.arange(m), out_lengths),
        gather - np.repeat(starts[first], out_lengths),
        out_touch,
        out_lengths,
    )
    for arr in flat:
        arr.flags.writeable = False
    counts = (
        np.bincount(inverse, weights=conv, minlength=m).astype(float),
        np.bincount(inverse, weights=val, minlength=m).astype(float),
        np.bincount(inverse, weights=null, minlength=m).astype(float),
    )
    # The paths as tuples are built from the flat arrays when first asked for.
    return PathTable._from_flat(channels, flat, counts, tuple(notes))


#: Largest (paths × longest path) code matrix sorted in one go; beyond it paths are
#: compared as joined names, one at a time.
_PAD_LIMIT = 20_000_000


def _distinct_paths(
    touch: np.ndarray, lengths: np.ndarray, channels: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray, int]:
    """Give each distinct path a number, in the order of their channel names.

    Returns, for each input row, the number of its path (``inverse``), the first
    row of each distinct path in that order (``first``) and the count ``m``.
    Rows with the same path are numbered alike, so summing by ``inverse`` does
    not depend on the input row order.

    Paths sort as tuples of names; codes follow the sorted names, so sorting the
    code tuples (shorter prefix first) gives the same order. Names holding
    control characters (below ``" "``) are ordered by their joined text instead,
    as that order can differ.
    """
    n = len(lengths)
    width = int(lengths.max()) if n else 0
    if n and n * max(width, 1) <= _PAD_LIMIT and not any(c and min(c) < " " for c in channels):
        # Pack each path into a few int64 words: digit ``code + 1`` per touch (0 past
        # the end, so a shorter prefix sorts first), most significant digit first.
        base = len(channels) + 1
        digits = max(1, int(np.floor(62 / np.log2(base))))
        words = -(-max(width, 1) // digits)
        # The touches are in row and position order, so the digits of each word are
        # contiguous: one exact integer sum per (row, word) segment.
        row = np.repeat(np.arange(n), lengths)
        pos = np.arange(len(touch)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        weights = base ** np.arange(digits - 1, -1, -1, dtype=np.int64)
        cell = row * words + pos // digits
        packed = np.zeros(n * words, dtype=np.int64)
        if len(touch):
            seg = np.flatnonzero(np.r_[True, cell[1:] != cell[:-1]])
            packed[cell[seg]] = np.add.reduceat((touch + 1) * weights[pos % digits], seg)
        packed = packed.reshape(n, words)
        order = np.lexsort(packed.T[::-1])
        ranked = packed[order]
        new = np.ones(n, dtype=bool)
        new[1:] = (ranked[1:] != ranked[:-1]).any(axis=1)
        inverse = np.empty(n, dtype=np.int64)
        inverse[order] = np.cumsum(new) - 1
        first = order[new]
        return inverse, first, len(first)
    ends = np.cumsum(lengths)
    bounds = list(zip((ends - lengths).tolist(), ends.tolist(), strict=True))
    names = np.asarray(channels, dtype=object)[touch].tolist()
    keys = np.array([" \x1f ".join(names[lo:hi]) for lo, hi in bounds], dtype=object)
    key_id, distinct_keys = pd.factorize(keys) if n else (np.array([], int), np.array([]))
    m = len(distinct_keys)
    order = np.array(sorted(range(m), key=distinct_keys.__getitem__), dtype=np.int64)
    rank = np.empty(m, dtype=np.int64)
    rank[order] = np.arange(m)
    inverse = rank[key_id]
    # First row of each distinct path, in key order.
    first_seen = np.full(m, n, dtype=np.int64)
    np.minimum.at(first_seen, key_id, np.arange(n))
    return inverse, first_seen[order], m


def channel_codes(table: PathTable, names: Iterable[str]) -> list[int]:
    """Codes of the given channel names present in ``table`` (others ignored)."""
    code = {c: i for i, c in enumerate(table.channels)}
    return [code[n] for n in names if n in code]
