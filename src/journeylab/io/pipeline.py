"""The cleaning pipeline shared by the loaders of :mod:`journeylab.io.loaders`.

A :class:`Pipeline` holds the rows of one source (with their source row
numbers) and the :class:`~journeylab.io.quality.QualityReport`; each method
casts, cleans or drops rows and records exactly what it did, so the report
always adds up (``rows_read == rows_kept + rows_dropped``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from journeylab.core.errors import (
    ParameterError,
    SchemaError,
    check_in,
    did_you_mean,
    require_columns,
)
from journeylab.core.memory import arrow_pool
from journeylab.core.timeparse import parse_duration
from journeylab.io.casting import (
    Where,
    cast_ids,
    cast_numbers,
    cast_text,
    infer_property,
    is_text_categorical,
    relabel,
)
from journeylab.io.casting_time import cast_timestamps
from journeylab.io.frames import as_categorical
from journeylab.io.quality import QualityReport
from journeylab.io.sources import ROW, RawTable

ID_COLUMNS = ("user_id", "session_id", "order_id")
TimeLike = str | pd.Timestamp | None


class Pipeline:
    """Applies steps to a raw frame while keeping the quality report exact."""

    def __init__(self, raw: RawTable, table: str) -> None:
        self.frame = raw.frame.reset_index(drop=True)
        self.label = raw.label
        self.row_label = raw.row_label
        self.line_of = raw.line_of
        self.report = QualityReport(
            table, raw.label, rows_read=len(self.frame), row_label=raw.row_label
        )

    def where(self) -> Where:
        """Return the row labels of the current frame, for messages."""
        return Where(self.label, self.frame[ROW].to_numpy(), self.row_label, self.line_of)

    def first_rows(self, mask: np.ndarray) -> list[int]:
        """Return the source row numbers of the first rows where ``mask`` holds."""
        return self.where().first(mask)

    def record(
        self, mask: np.ndarray, step: str, action: str, column: str | None, reason: str
    ) -> None:
        """Count the rows where ``mask`` holds as one step of the quality report."""
        mask = np.asarray(mask, dtype=bool)
        self.report.add(
            step, action, int(mask.sum()), column=column, reason=reason, rows=self.first_rows(mask)
        )

    def drop(
        self, mask: np.ndarray, step: str, column: str | None, reason: str, action: str = "dropped"
    ) -> None:
        """Drop the rows where ``mask`` holds, counted with the reason."""
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        self.record(mask, step, action, column, reason)
        self.frame = self.frame.loc[~mask].reset_index(drop=True)

    def drop_missing(self, column: str, what: str | None = None) -> None:
        """Drop the rows without a value in ``column``, counted."""
        mask = self.frame[column].isna().to_numpy()
        self.drop(mask, f"missing {column}", column, f"no {what or column}; the row cannot be used")

    # -- casts -----------------------------------------------------------
    def cast_ids(self, column: str, *, drop: bool) -> None:
        """Cast ``column`` to text ids (repairs counted), dropping rows without one when asked."""
        if column not in self.frame:
            return
        ids, repairs = cast_ids(self.frame[column], column, self.where())
        self.frame[column] = ids
        self.record(
            repairs.get("float ids", []),
            f"{column} written as float",
            "repaired",
            column,
            "ids stored as numbers like 17850.0 were written as whole-number text ('17850')",
        )
        self.record(
            repairs.get("whitespace trimmed", []),
            f"{column} whitespace",
            "repaired",
            column,
            "spaces around the id were removed",
        )
        if drop:
            self.drop_missing(column, "id")

    def cast_time(
        self, column: str, *, tz, nonexistent, ambiguous, timestamp_format, start=None, end=None
    ) -> None:
        """Cast ``column`` to UTC timestamps with the time-zone policy, filtering to the window."""
        check_in("nonexistent", nonexistent, ["shift_forward", "shift_backward", "raise"])
        check_in("ambiguous", ambiguous, ["earliest", "latest", "raise"])
        stamps, repairs, notes = cast_timestamps(
            self.frame[column],
            column,
            self.where(),
            tz=tz,
            nonexistent=nonexistent,
            ambiguous=ambiguous,
            timestamp_format=timestamp_format,
        )
        self.frame[column] = stamps
        keep = np.ones(len(self.frame), dtype=bool)
        if start is not None or end is not None:
            values = stamps
            if start is not None:
                keep &= ~(values < start).to_numpy(dtype=bool, na_value=False)
            if end is not None:
                keep &= ~(values >= end).to_numpy(dtype=bool, na_value=False)
            window = f"[{start or '…'}, {end or '…'})"
            self.report.note(
                f"only rows with {column} in {window} were read (filter pushed down to the source)."
            )
            # Rows outside the requested window were not asked for: not counted as read.
            self.frame = self.frame.loc[keep].reset_index(drop=True)
            self.report.rows_read = len(self.frame)
        for text in notes:
            self.report.note(text)
        for name, mask in repairs.items():
            policy = name[name.index("(") + 1 : -1]
            self.record(
                np.asarray(mask)[keep],
                name.split(" (")[0],
                "repaired",
                column,
                f"DST: local time moved by policy {policy!r}"
                if "nonexistent" in name
                else f"DST: the repeated local hour resolved by policy {policy!r}",
            )

    def cast_numbers(self, column: str) -> None:
        """Cast ``column`` to numbers; unreadable values are an error naming the rows."""
        if column in self.frame:
            self.frame[column] = cast_numbers(self.frame[column], column, self.where())

    def clean_text(self, column: str, *, drop: bool = False) -> None:
        """Clean the labels of ``column`` (hidden characters removed, counted)."""
        if column not in self.frame:
            return
        cleaned, changed = cast_text(self.frame[column])
        self.frame[column] = cleaned
        self.record(
            changed & cleaned.notna().to_numpy(),
            f"{column} text cleaned",
            "repaired",
            column,
            "Unicode normalised (NFKC); invisible, bidirectional and control characters and "
            "surrounding spaces removed",
        )
        if drop:
            self.drop_missing(column)

    def canonical_channels(self, column: str = "channel", *, drop: bool = False) -> None:
        """Write channel names in one canonical spelling, the changes counted."""
        if column not in self.frame:
            return
        mapped, mapping, changed = relabel(self.frame[column])
        self.frame[column] = mapped
        self.record(
            changed,
            f"{column} names canonicalised",
            "repaired",
            column,
            "spellings that differ only in case, spaces or Unicode form were merged "
            "(see the channel mapping)",
        )
        self.report.channel_mapping = mapping
        if drop:
            self.drop_missing(column)

    def properties(self, canonical: list[str], dtypes: Mapping[str, str] | None) -> None:
        """Keep the extra columns as properties, cast to ``dtypes`` where given."""
        dtypes = dict(dtypes or {})
        extra = [c for c in self.frame.columns if c not in canonical and c != ROW]
        for column in dtypes:
            if column in canonical:
                raise ParameterError(
                    f"dtypes[{column!r}]: canonical columns have fixed types; remove it."
                )
            if column not in extra:
                raise SchemaError(
                    f"dtypes= names column {column!r}, which is not in the source{did_you_mean(column, extra)}.",
                    source=self.label,
                    column=column,
                )
        where = self.where()
        for column in extra:
            if column in ID_COLUMNS:
                self.frame[column] = cast_ids(self.frame[column], column, where)[0]
            else:
                self.frame[column] = infer_property(
                    self.frame[column], column, where, dtypes.get(column)
                )

    def categorical_text(
        self, always: tuple[str, ...], keep_text: Mapping[str, str] | None
    ) -> None:
        """Store repeated text as pandas categoricals (see :func:`as_categorical`).

        The columns of ``always`` are converted whatever their values (a categorical
        given for one gets its names as text, sorted); other text columns (not ids,
        not typed in ``keep_text``) when each value repeats on average (at most half
        as many distinct values as rows).
        """
        keep_text = dict(keep_text or {})
        for column in list(self.frame.columns):
            values = self.frame[column]
            if column == ROW or column in ID_COLUMNS or column in keep_text:
                continue
            if column in always and isinstance(values.dtype, pd.CategoricalDtype):
                sorted_text = is_text_categorical(values) and not values.cat.ordered
                if sorted_text and values.cat.categories.is_monotonic_increasing:
                    continue  # read and cleaned as categories already
                values = values.astype("str")  # other names, order or meaning: as text
            if not isinstance(values.dtype, pd.StringDtype):
                continue
            compact = as_categorical(values, always=column in always)
            if compact is not None:
                self.frame[column] = compact

    def deduplicate_exact(self, *, drop: bool = True, key: list[str] | None = None) -> None:
        """Count (and drop, when asked) rows identical to an earlier one."""
        columns = key or [c for c in self.frame.columns if c != ROW]
        mask = duplicated_rows(self.frame, columns)
        if drop:
            self.drop(
                mask,
                "exact duplicate",
                None,
                "identical to an earlier row in every column; the first is kept",
                "deduplicated",
            )
        else:
            self.record(
                mask,
                "exact duplicate (kept)",
                "flagged",
                None,
                "identical to an earlier row in every column; kept (pass drop_duplicates=True to drop)",
            )

    def pseudonymize(self, enabled: bool, column: str = "user_id") -> None:
        """Replace the ids of ``column`` by keyed pseudonyms when ``enabled``."""
        if not enabled or column not in self.frame:
            return
        from journeylab.io.privacy import key_origin, pseudonymize

        self.frame[column] = pseudonymize(self.frame[column])
        self.report.note(
            f"{column} replaced by keyed pseudonyms (HMAC-SHA256, key from {key_origin()})."
        )

    def finish(self, canonical: list[str], sort_by: list[str] | None = None) -> pd.DataFrame:
        """Return the final frame: canonical columns first, checked against the report."""
        ordered = [c for c in canonical if c in self.frame] + [
            c for c in self.frame.columns if c not in canonical and c != ROW
        ]
        frame = self.frame
        if sort_by:
            frame = frame.sort_values(sort_by + [ROW], kind="stable", na_position="last")
        frame = frame[ordered].reset_index(drop=True)
        self.report.check(len(frame))
        return frame


def require(pipe: Pipeline, required: tuple[str, ...], what: str) -> None:
    """Raise SchemaError (with "did you mean") unless the required columns are present."""
    visible = pipe.frame.iloc[:0, [i for i, c in enumerate(pipe.frame.columns) if c != ROW]]
    require_columns(visible, required, source=pipe.label, what=what)


def dedupe_window(value: str | pd.Timedelta | None) -> pd.Timedelta | None:
    """Parse the near-duplicate window ("1s", "500ms", Timedelta or None; zero allowed)."""
    return parse_duration(value, "dedupe_window", optional=True, allow_zero=True)


def group_codes(values: pd.Series) -> np.ndarray:
    """Integer codes equal exactly where the values are equal (missing values equal each other).

    Timestamps are their nanoseconds; other columns are hashed once
    (:func:`pandas.factorize`), which for Arrow-backed text is much cheaper
    than comparing the strings again.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype) or values.dtype.kind == "M":
        return values.array.asi8
    return pd.factorize(values, use_na_sentinel=False)[0]


def sort_codes(values: pd.Series) -> np.ndarray:
    """Keys that sort like ``values`` in :meth:`pandas.DataFrame.sort_values` (missing last).

    Numbers are used as they are; timestamps as nanoseconds (missing ones last);
    anything else by its ordered categorical codes, as pandas sorts it.
    """
    arr = values.to_numpy() if values.dtype.kind in "fiub" else None
    if arr is not None and isinstance(arr, np.ndarray) and arr.dtype.kind in "fiub":
        return arr
    if isinstance(values.dtype, pd.DatetimeTZDtype) or values.dtype.kind == "M":
        ints = values.array.asi8
        missing = values.isna().to_numpy()
        return np.where(missing, np.iinfo(np.int64).max, ints) if missing.any() else ints
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        import pyarrow as pa
        import pyarrow.compute as pc

        # hash once in Arrow, then sort only the distinct strings (in the order pandas uses)
        text = pa.array(values.array)
        if isinstance(text, pa.ChunkedArray):
            text = text.combine_chunks()
        encoded = pc.dictionary_encode(text, memory_pool=arrow_pool())
        distinct = len(encoded.dictionary)
        rank = np.empty(distinct + 1, dtype=np.int64)
        rank[pc.sort_indices(encoded.dictionary).to_numpy()] = np.arange(distinct)
        rank[-1] = distinct  # missing last
        return rank[encoded.indices.fill_null(distinct).to_numpy()]
    cat = pd.Categorical(values, ordered=True)
    codes = cat.codes.astype(np.int64)
    return np.where(codes == -1, len(cat.categories), codes)


def stable_order(keys: list[np.ndarray]) -> np.ndarray:
    """Row order sorting by ``keys`` (first key first), ties kept in row order.

    The same order as ``numpy.lexsort(keys[::-1])`` (NaN after every number), computed
    by Arrow's stable multi-key sort, which looks at a later key only to break ties.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if not keys or len(keys[0]) == 0:
        return np.arange(len(keys[0]) if keys else 0)
    table = pa.table({f"k{i}": key for i, key in enumerate(keys)})
    names = [(f"k{i}", "ascending") for i in range(len(keys))]
    return pc.sort_indices(table, sort_keys=names).to_numpy()


#: Rows identical in every column are identical in these first; checked on them first.
_PREFILTER = ("user_id", "timestamp", "event")


def duplicated_rows(
    frame: pd.DataFrame, columns: list[str], *, maybe: np.ndarray | None = None
) -> np.ndarray:
    """``frame.duplicated(subset=columns, keep="first")`` as a boolean array, computed faster.

    Two rows identical in every column are identical in ``user_id``,
    ``timestamp`` and ``event``; only rows that may repeat those (few) are
    compared on every column, in their original order, so the result is the
    same. ``maybe`` may give those rows when already known (every row that
    repeats the three, and possibly others).
    """
    narrow = [c for c in _PREFILTER if c in columns]
    if "timestamp" not in narrow or len(narrow) == len(columns):
        return frame.duplicated(subset=columns, keep="first").to_numpy()
    if maybe is None:
        maybe = _maybe_repeated([group_codes(frame[c]) for c in narrow])
    out = np.zeros(len(frame), dtype=bool)
    if maybe.any():
        out[maybe] = frame.loc[maybe, columns].duplicated(keep="first").to_numpy()
    return out


def _maybe_repeated(keys: list[np.ndarray]) -> np.ndarray:
    """Rows whose keys may occur on another row: every repeated key, and a few more.

    The keys are mixed into one 64-bit hash; rows with equal keys have equal
    hashes, so no repeated row is missed (a collision only adds a row to check).
    """
    mixed = np.zeros(len(keys[0]), dtype=np.uint64)
    for key in keys:
        part = np.ascontiguousarray(key, dtype=np.int64).view(np.uint64)
        mixed ^= part
        mixed *= np.uint64(0x9E3779B97F4A7C15)
        mixed ^= mixed >> np.uint64(29)
    return pd.Series(mixed, copy=False).duplicated(keep=False).to_numpy()
