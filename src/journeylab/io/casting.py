"""Explicit casts of raw source columns onto canonical types.

Private helpers of :mod:`journeylab.io.loaders`. Every cast either succeeds for every
non-blank cell or raises :class:`~journeylab.core.errors.DataError` naming the
source, the column, the first offending rows and values, and what to do.
Nothing is coerced to NaN silently. Text clean-ups run once per distinct
value, so they stay cheap on large logs.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from journeylab.core.errors import DataError, ParameterError

#: Zero-width and invisible formatting characters, bidirectional controls (which
#: reorder what a reader sees: "\u202eliamE" displays as "Email") and control
#: characters such as NUL: all removed from labels.
_INVISIBLE = dict.fromkeys(
    [
        *map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u00ad\u061c"),
        *range(0x202A, 0x202F),  # LRE, RLE, PDF, LRO, RLO
        *range(0x2066, 0x206A),  # LRI, RLI, FSI, PDI
        *range(0x00, 0x09),  # C0 controls except tab, line feed and carriage return (spaces below)
        0x0B,
        0x0C,  # fmt: skip
        *range(0x0E, 0x20),
        *range(0x7F, 0xA0),  # DEL and C1 controls
    ],
    None,
)


_INT_TEXT = r"-?(?:0|[1-9][0-9]{0,17})"
_FLOAT_TEXT = r"-?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_MAX_EXACT_FLOAT_ID = 2**53


@dataclass
class Where:
    """Where the rows came from, for messages: source label and row numbers.

    ``line_of`` (CSV sources) turns record positions into the file lines they
    start on, so a quoted line break or a blank line does not shift messages.
    """

    label: str
    rows: np.ndarray
    row_label: str = "row"
    line_of: Callable[[np.ndarray], np.ndarray] | None = None

    def subset(self, mask: np.ndarray) -> Where:
        """Restrict to the rows where ``mask`` is true (same source)."""
        return Where(self.label, self.rows[mask], self.row_label, self.line_of)

    def first(self, mask: np.ndarray, limit: int = 5) -> list[int]:
        """Return the first ``limit`` source rows (file lines for CSV) where ``mask`` is true."""
        picked = np.asarray(self.rows[np.flatnonzero(mask)[:limit]], dtype=np.int64)
        if self.line_of is not None and picked.size:
            picked = self.line_of(picked)
        return [int(r) for r in picked]

    def _line_note(self) -> str:
        """How file lines are counted, for a CSV file's rows (its header, if any, is line 1)."""
        if self.row_label != "line":
            return ""
        dialect = getattr(self.line_of, "dialect", None)
        if not getattr(dialect, "header", True):
            return " (file lines)"
        return f" (file lines; the header is line {getattr(dialect, 'skip', 0) + 1})"

    def error(
        self,
        message: str,
        column: str,
        mask: np.ndarray,
        hint: str,
        values: pd.Series | None = None,
    ) -> DataError:
        """Build a DataError naming the count, the first rows (and values) and what to do."""
        rows = self.first(mask)
        n = int(np.count_nonzero(mask))
        shown = ""
        if values is not None:
            picked = values.to_numpy()[np.flatnonzero(mask)[:5]]
            shown = " (values: " + ", ".join(repr(str(v)) for v in picked) + ")"
        return DataError(
            f"{message}: {n:,} row{'' if n == 1 else 's'} in column {column!r}{shown}, "
            f"at {self.row_label}{'s' if len(rows) > 1 else ''} {', '.join(map(str, rows))}"
            + self._line_note()
            + ".",
            source=self.label,
            column=column,
            rows=rows,
            hint=hint,
        )


# -- blanks and text -----------------------------------------------------


def is_text(series: pd.Series) -> bool:
    """Tell whether a column holds text (string or object dtype)."""
    return pd.api.types.is_string_dtype(series.dtype) or series.dtype == object


def blank_mask(series: pd.Series) -> np.ndarray:
    """Missing cells and cells holding only whitespace."""
    missing = series.isna().to_numpy()
    if is_text(series):
        stripped = series.astype("str").str.strip()
        missing = missing | (stripped == "").to_numpy(dtype=bool, na_value=True)
    return missing


def map_distinct(series: pd.Series, func: Callable[[str], str | None]) -> pd.Series:
    """Apply ``func`` once per distinct non-missing value; missing stays missing."""
    return _map_distinct(series, func)[0]


_TEXT = pd.StringDtype("pyarrow", na_value=np.nan)


def _map_distinct(
    series: pd.Series, func: Callable[[str], str | None]
) -> tuple[pd.Series, np.ndarray]:
    """:func:`map_distinct`, and a mask of the non-missing cells whose text changed.

    When no distinct value changes, text already of the ``str`` dtype is returned as it is.
    """
    if is_text_categorical(series):
        return _map_categories(series, func)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    mapped = [func(u) for u in uniques]
    differs = np.array([m != u for m, u in zip(mapped, uniques, strict=True)] + [False])
    picked = np.where(codes >= 0, codes, len(uniques))
    if not differs.any() and series.dtype == _TEXT:
        return series.rename(series.name), np.zeros(len(series), dtype=bool)
    out = np.array(mapped + [None], dtype=object)[picked]
    text = pd.Series(out, index=series.index, dtype="str", name=series.name)
    return text, differs[picked]


def is_text_categorical(series: pd.Series) -> bool:
    """Tell whether ``series`` is a categorical of text."""
    return isinstance(series.dtype, pd.CategoricalDtype) and pd.api.types.is_string_dtype(
        series.cat.categories.dtype
    )


def _text_of(series: pd.Series) -> pd.Series:
    """Return ``series`` as text: ``str``, or a categorical of text (its names written as text)."""
    if is_text_categorical(series) or (
        pd.api.types.is_string_dtype(series.dtype) and series.dtype != object
    ):
        return series
    if isinstance(series.dtype, pd.CategoricalDtype):
        names = [str(c) for c in series.cat.categories]
        if len(set(names)) == len(names):  # 1 and "1" would be one name
            return series.cat.rename_categories(pd.Index(names, dtype="str"))
    return series.astype(object).astype("str")


def _map_categories(
    series: pd.Series, func: Callable[[str], str | None]
) -> tuple[pd.Series, np.ndarray]:
    """:func:`_map_distinct` of a text categorical: ``func`` maps the categories.

    The result is a categorical again, its categories the distinct results, sorted.
    """
    categories = [str(c) for c in series.cat.categories]
    mapped = [func(c) for c in categories]
    differs = np.array([m != c for m, c in zip(mapped, categories, strict=True)] + [False])
    codes = series.cat.codes.to_numpy()
    picked = np.where(codes >= 0, codes, len(categories))
    if not differs.any():
        return series.rename(series.name), np.zeros(len(series), dtype=bool)
    kept = sorted({m for m in mapped if m is not None})
    position = {m: i for i, m in enumerate(kept)}
    remap = np.array([position.get(m, -1) for m in mapped] + [-1], dtype=np.int32)
    out = pd.Categorical.from_codes(
        remap[picked], dtype=pd.CategoricalDtype(pd.Index(kept, dtype="str"))
    )
    return pd.Series(out, index=series.index, name=series.name), differs[picked]


def clean_label(text: object) -> str | None:
    r"""NFKC-normalise, drop invisible, bidirectional and control characters, trim and collapse spaces.

    Examples
    --------
    >>> clean_label(" E\u200bmail ")
    'Email'
    >>> clean_label("\u202eliamE")
    'liamE'
    """
    cleaned = unicodedata.normalize("NFKC", str(text)).translate(_INVISIBLE)
    cleaned = " ".join(cleaned.split())
    return cleaned or None


def visible(text: str) -> str:
    r"""``repr`` of a label with combining and invisible characters written as escapes.

    Examples
    --------
    >>> visible("E\u200bmail")
    "'E\\u200bmail'"
    """
    shown = "".join(
        f"\\u{ord(ch):04x}"
        if unicodedata.category(ch) in ("Mn", "Cf", "Zs", "Cc") and ch != " "
        else ch
        for ch in str(text)
    )
    return "'" + shown + "'"


def cast_text(series: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Clean labels (see :func:`clean_label`); also return a mask of changed cells."""
    cleaned, changed = _map_distinct(_text_of(series), clean_label)
    return cleaned, changed


def canonical_labels(series: pd.Series) -> tuple[pd.Series, pd.DataFrame]:
    """Canonical display names for labels that differ only in case, spaces or Unicode form.

    Labels are cleaned with :func:`clean_label` and matched case-insensitively
    (``str.casefold``); each group is shown under its most frequent cleaned
    spelling, ties broken alphabetically. Returns the mapped series and the
    mapping of every raw spelling that changed (columns raw, channel, rows).
    """
    return relabel(series)[:2]


def relabel(series: pd.Series) -> tuple[pd.Series, pd.DataFrame, np.ndarray]:
    """:func:`canonical_labels`, and a mask of the non-missing cells whose label changed."""
    series = _text_of(series)
    counts = series.value_counts(dropna=True)
    counts = counts[counts > 0]  # a categorical also counts the categories no row has
    if counts.empty:
        return (
            series.astype("str"),
            pd.DataFrame(columns=["raw", "channel", "rows"]),
            np.zeros(len(series), dtype=bool),
        )
    raw = pd.Series(counts.index.astype(str), dtype=object)
    cleaned = raw.map(clean_label)
    table = pd.DataFrame({"raw": raw, "cleaned": cleaned, "rows": counts.to_numpy()})
    table = table[table["cleaned"].notna()]
    table["key"] = table["cleaned"].str.casefold()
    by_spelling = table.groupby(["key", "cleaned"], as_index=False)["rows"].sum()
    by_spelling = by_spelling.sort_values(["key", "rows", "cleaned"], ascending=[True, False, True])
    display = by_spelling.drop_duplicates("key").set_index("key")["cleaned"]
    table["channel"] = table["key"].map(display)
    lookup = dict(zip(table["raw"], table["channel"], strict=True))
    mapped, differs = _map_distinct(series, lambda v: lookup.get(v))
    changed = table[table["raw"] != table["channel"]][["raw", "channel", "rows"]]
    changed = changed.sort_values(["channel", "rows", "raw"], ascending=[True, False, True])
    return mapped, changed.reset_index(drop=True), differs


# -- ids ---------------------------------------------------------------------


def cast_ids(
    series: pd.Series, column: str, where: Where
) -> tuple[pd.Series, dict[str, np.ndarray]]:
    """Ids as exact text; returns the ids and masks of repaired cells.

    Text ids keep every character except surrounding whitespace (``00123``
    stays ``00123``). Integer ids become their decimal text. Float ids (a
    CSV written by a tool that turned ``17850`` into ``17850.0``) become the
    integer text when integral and exactly representable, and raise
    otherwise. Blank ids become missing (the loader counts and drops them).
    """
    repairs: dict[str, np.ndarray] = {}
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        raise where.error(
            "Ids are true/false values",
            column,
            np.ones(len(series), bool),
            "map the real id column onto this one with columns=.",
        )
    if pd.api.types.is_integer_dtype(dtype):
        text = series.astype("str")
        return text.where(series.notna()), repairs
    if pd.api.types.is_float_dtype(dtype):
        values = series.to_numpy(dtype=float, na_value=np.nan)
        present = ~np.isnan(values)
        bad = present & ((values != np.round(values)) | (np.abs(values) > _MAX_EXACT_FLOAT_ID))
        if bad.any():
            raise where.error(
                "Ids stored as floating-point numbers are not whole or too large to be exact",
                column,
                bad,
                "store ids as text (in a query: CAST(col AS VARCHAR)), so no digit is lost.",
                values=series,
            )
        as_int = pd.array(np.where(present, values, 0).astype(np.int64), dtype="Int64")
        text = pd.Series(as_int, index=series.index).astype("str").where(present)
        repairs["float ids"] = present
        return text, repairs
    if pd.api.types.is_datetime64_any_dtype(dtype):
        raise where.error(
            "Ids are timestamps",
            column,
            series.notna().to_numpy(),
            "check the columns= mapping: another column is probably the id.",
        )
    text = series.astype("str") if series.dtype == object else series
    if text.dtype == _TEXT and not _needs_trim(_distinct(text, stripped=False)):
        # no id has surrounding spaces or is blank: nothing to repair
        return text.astype("str"), {"whitespace trimmed": np.zeros(len(text), dtype=bool)}
    stripped = text.str.strip()
    trimmed = (stripped != text).to_numpy(dtype=bool, na_value=False) & text.notna().to_numpy()
    repairs["whitespace trimmed"] = trimmed & (stripped != "").to_numpy(dtype=bool, na_value=False)
    stripped = stripped.where(stripped != "")
    return stripped.astype("str"), repairs


# -- numbers -----------------------------------------------------------------


def cast_numbers(series: pd.Series, column: str, where: Where) -> pd.Series:
    """Finite floats; blank cells become NaN, anything else unreadable raises."""
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype(float)
    if pd.api.types.is_numeric_dtype(series.dtype):
        values = series.astype("float64")
        bad = np.isinf(values.to_numpy())
        if bad.any():
            raise where.error(
                "Infinite numbers", column, bad, "replace them with real values.", series
            )
        return values
    text = series.astype("str").str.strip()
    blank = blank_mask(text)
    numbers = pd.to_numeric(text.where(~blank), errors="coerce").astype("float64")
    bad = ~blank & ~np.isfinite(numbers.to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        raise where.error(
            "Values that are not numbers",
            column,
            bad,
            "fix those cells, or map another column; numbers use '.' for decimals and no "
            "thousands separators. If the column is text on purpose, map it to another name "
            "so it is kept as a property.",
            values=series,
        )
    return numbers


# -- properties ------------------------------------------------------------------


def infer_property(
    series: pd.Series, column: str, where: Where, dtype: str | None = None
) -> pd.Series:
    """Type an extra (non-canonical) column.

    With ``dtype`` ("str", "float", "int", "bool") the cast is explicit and
    raises on failure. Without it, a text column becomes int/float/bool only
    when *every* non-blank value is written exactly that way (so ``00123``
    stays text and a column that turns to text late stays text); otherwise it
    is kept as text, never coerced.
    """
    if is_text_categorical(series):
        if dtype is None and _typed_as(_distinct(pd.Series(series.cat.categories))) is None:
            return series  # text it stays, as categories
        series = series.astype("str")  # numbers, flags or a type asked for: cast row by row
    if dtype is not None:
        return _explicit(series, column, where, dtype)
    if (
        not is_text(series)
        or series.dtype == object
        and not series.dropna().map(type).eq(str).all()
    ):
        return series
    if series.dtype == _TEXT and _typed_as(_distinct(series)) is None:
        return series  # decided on the distinct values, as below on every cell
    text = series.str.strip()
    blank = blank_mask(text)
    if blank.all():
        return series
    kind = _typed_as(pd.Series(pd.unique(text[~blank]), dtype="str"))
    if kind == "int":
        numbers = pd.to_numeric(text.where(~blank))
        return numbers.astype("Int64") if blank.any() else numbers.astype("int64")
    if kind == "float":
        return pd.to_numeric(text.where(~blank)).astype("float64")
    if kind == "bool":
        return text.where(~blank).str.lower().map({"true": True, "false": False}).astype("boolean")
    return series


def _typed_as(distinct: pd.Series) -> str | None:
    """Return the type every distinct stripped non-blank value is written in, if any."""
    if distinct.str.fullmatch(_INT_TEXT).all():
        return "int"
    if distinct.str.fullmatch(_FLOAT_TEXT).all():
        return "float"
    if distinct.str.lower().isin(["true", "false"]).all():
        return "bool"
    return None


def _distinct(text: pd.Series, *, stripped: bool = True) -> pd.Series:
    """Return the distinct non-missing values of a text column (stripped, no blanks, by default)."""
    values = pd.Series(text.unique(), dtype=text.dtype).dropna()
    if not stripped:
        return values
    values = values.str.strip()
    return pd.Series(pd.unique(values[~blank_mask(values)]), dtype="str")


def _needs_trim(ids: pd.Series) -> bool:
    """Tell whether one of the distinct ``ids`` has surrounding spaces or is blank."""
    trimmed = ids.str.strip()
    return bool(((trimmed != ids) | (trimmed == "")).any())


def _explicit(series: pd.Series, column: str, where: Where, dtype: str) -> pd.Series:
    if dtype == "str":
        return series.astype("str")
    if dtype in ("float", "int"):
        numbers = cast_numbers(series, column, where)
        if dtype == "float":
            return numbers
        bad = numbers.notna().to_numpy() & (numbers != np.round(numbers)).to_numpy()
        if bad.any():
            raise where.error(
                "Values that are not whole numbers",
                column,
                bad,
                "use dtypes={..: 'float'}.",
                series,
            )
        return numbers.astype("Int64")
    if dtype == "bool":
        text = series.astype("str").str.strip().str.lower()
        blank = blank_mask(text)
        mapped = text.map(
            {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
        )
        bad = ~blank & mapped.isna().to_numpy()
        if bad.any():
            raise where.error(
                "Values that are not true/false", column, bad, "fix those cells.", series
            )
        return mapped.astype("boolean")
    raise ParameterError(
        f"dtypes[{column!r}] == {dtype!r}, must be one of ['str', 'float', 'int', 'bool']."
    )
