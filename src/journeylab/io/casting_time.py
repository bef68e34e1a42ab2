"""Explicit casts of raw timestamp columns onto naive UTC, with the time zone rules of the loaders.

Private helpers of :mod:`journeylab.io.loaders`, as those of :mod:`journeylab.io.casting`:
every cast either succeeds for every non-blank cell or raises
:class:`~journeylab.core.errors.DataError` naming the source, the column, the first
offending rows and values, and what to do.
"""

from __future__ import annotations

import re
from typing import Literal

import numpy as np
import pandas as pd

from journeylab.core.errors import ParameterError
from journeylab.io.casting import Where, blank_mask

Nonexistent = Literal["shift_forward", "shift_backward", "raise"]
Ambiguous = Literal["earliest", "latest", "raise"]


#: A bare year or year-month ("2026", "2026-10"): ISO 8601 parsing would silently
#: make it the first day of the year or month.
_PARTIAL_DATE = re.compile(r"\s*[0-9]{4}(?:-[0-9]{1,2}|[0-9]{2})?\s*")
#: A time followed by a UTC offset or Z. ASCII classes only, so pyarrow runs it in RE2.
_OFFSET = r"[0-9]:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)? *(?:Z|z|[+-][0-9]{2}(?::?[0-9]{2})?)$"


# -- timestamps --------------------------------------------------------------


def cast_timestamps(
    series: pd.Series,
    column: str,
    where: Where,
    *,
    tz: str | None,
    nonexistent: Nonexistent,
    ambiguous: Ambiguous,
    timestamp_format: str | None = None,
) -> tuple[pd.Series, dict[str, np.ndarray], list[str]]:
    """UTC timestamps (``datetime64[ns, UTC]``), with DST repair masks and notes.

    Text with a UTC offset or ``Z`` is converted exactly; naive text and naive
    datetimes are local times in ``tz`` (UTC when ``tz`` is None, noted).
    """
    notes: list[str] = []
    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        return _to_ns(series.dt.tz_convert("UTC"), column, where), {}, notes
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return _localize(
            series, column, where, tz=tz, nonexistent=nonexistent, ambiguous=ambiguous, notes=notes
        )
    if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        raise where.error(
            "Timestamps are numbers",
            column,
            series.notna().to_numpy(),
            "convert them first, e.g. in a query: to_timestamp(epoch_seconds) AS timestamp.",
            values=series,
        )
    if series.dtype == object and not series.dropna().map(type).eq(str).all():
        return _cast_mixed(
            series,
            column,
            where,
            tz=tz,
            nonexistent=nonexistent,
            ambiguous=ambiguous,
            timestamp_format=timestamp_format,
        )

    text = series.astype("str").str.strip()
    blank = blank_mask(text)
    text = text.where(~blank)
    if timestamp_format is None:
        partial = text.str.fullmatch(_PARTIAL_DATE.pattern, na=False).to_numpy(dtype=bool)
        if partial.any():
            raise where.error(
                "Timestamps that are a bare year or year-month (they would silently become the "
                "first day of it)",
                column,
                partial,
                "write full dates ('2026-10-01' or '2026-10-01 14:05:00'), or pass "
                "timestamp_format= if the file uses another layout.",
                values=series,
            )
    fmt = timestamp_format or "ISO8601"
    has_offset = text.str.contains(_OFFSET, regex=True, na=False).to_numpy(dtype=bool)
    result = pd.Series(pd.NaT, index=series.index, dtype="datetime64[ns, UTC]")
    repairs: dict[str, np.ndarray] = {}
    if has_offset.any():
        aware = pd.to_datetime(text[has_offset], format=fmt, utc=True, errors="coerce")
        result[has_offset] = _to_ns(aware, column, where.subset(has_offset))
    naive_mask = ~has_offset & ~blank
    if naive_mask.any():
        naive = pd.to_datetime(text[naive_mask], format=fmt, errors="coerce")
        if isinstance(naive.dtype, pd.DatetimeTZDtype):  # a user format with %z
            local = _to_ns(naive.dt.tz_convert("UTC"), column, where.subset(naive_mask))
        else:
            local, repairs_naive, notes_naive = _localize(
                naive,
                column,
                where.subset(naive_mask),
                tz=tz,
                nonexistent=nonexistent,
                ambiguous=ambiguous,
                notes=notes,
            )
            for name, mask in repairs_naive.items():
                full = np.zeros(len(series), bool)
                full[naive_mask] = mask
                repairs[name] = full
        result[naive_mask] = local
    bad = ~blank & result.isna().to_numpy()
    if bad.any():
        raise where.error(
            "Values that are not timestamps",
            column,
            bad,
            "write them as ISO 8601 ('2024-03-10 14:05:00', optionally with '+01:00' or 'Z'), "
            "or pass timestamp_format= (e.g. '%d/%m/%Y %H:%M').",
            values=series,
        )
    return result, repairs, notes


def _cast_mixed(
    series: pd.Series,
    column: str,
    where: Where,
    *,
    tz: str | None,
    nonexistent: Nonexistent,
    ambiguous: Ambiguous,
    timestamp_format: str | None,
) -> tuple[pd.Series, dict[str, np.ndarray], list[str]]:
    """Cast an object column mixing text and datetime objects, each part by its own rules.

    Text goes the text way (offsets exact; naive text local in ``tz`` or UTC,
    with the note); zoned datetime objects are converted exactly; naive
    datetime objects are local in ``tz`` (UTC with the note). Anything else
    (numbers, lists) is an error naming the rows.
    """
    import datetime as dt

    values = series.to_numpy(dtype=object)
    present = series.notna().to_numpy()
    is_text_cell = np.array([isinstance(v, str) for v in values], dtype=bool)
    is_datetime = np.array(
        [isinstance(v, (dt.datetime, dt.date, np.datetime64)) for v in values], dtype=bool
    )
    aware = is_datetime & np.array(
        [getattr(v, "tzinfo", None) is not None for v in values], dtype=bool
    )
    other = present & ~is_text_cell & ~is_datetime
    if other.any():
        raise where.error(
            "Values that are neither text nor timestamps", column, other, "fix those cells.", series
        )
    result = pd.Series(pd.NaT, index=series.index, dtype="datetime64[ns, UTC]")
    repairs: dict[str, np.ndarray] = {}
    notes: list[str] = []

    def merge(mask: np.ndarray, found: dict[str, np.ndarray]) -> None:
        for name, part in found.items():
            full = repairs.setdefault(name, np.zeros(len(series), dtype=bool))
            full[mask] |= np.asarray(part, dtype=bool)

    if is_text_cell.any():
        part, found, part_notes = cast_timestamps(
            series[is_text_cell].astype("str"),
            column,
            where.subset(is_text_cell),
            tz=tz,
            nonexistent=nonexistent,
            ambiguous=ambiguous,
            timestamp_format=timestamp_format,
        )
        result[is_text_cell] = part.to_numpy()
        merge(is_text_cell, found)
        notes += part_notes
    if aware.any():
        zoned = pd.to_datetime(series[aware], utc=True)
        result[aware] = _to_ns(zoned, column, where.subset(aware)).to_numpy()
    naive = is_datetime & ~aware & present
    if naive.any():
        local, found, _ = _localize(
            pd.to_datetime(series[naive]),
            column,
            where.subset(naive),
            tz=tz,
            nonexistent=nonexistent,
            ambiguous=ambiguous,
            notes=notes,
        )
        result[naive] = local.to_numpy()
        merge(naive, found)
    return result, repairs, list(dict.fromkeys(notes))


def _to_ns(values: pd.Series, column: str, where: Where) -> pd.Series:
    low, high = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")
    if values.dt.tz is None:
        values = values.dt.tz_localize("UTC")
    out = ((values < low) | (values > high)).to_numpy(dtype=bool, na_value=False)
    if out.any():
        raise where.error(
            "Timestamps outside 1677-09-22 … 2262-04-11",
            column,
            out,
            "fix those values; they are probably typos or placeholder dates.",
            values,
        )
    return values.astype("datetime64[ns, UTC]")


def _localize(
    naive: pd.Series,
    column: str,
    where: Where,
    *,
    tz: str | None,
    nonexistent: Nonexistent,
    ambiguous: Ambiguous,
    notes: list[str],
) -> tuple[pd.Series, dict[str, np.ndarray], list[str]]:
    if tz is None:
        if naive.notna().any():
            notes.append(
                f"{column}: times without a time zone were read as UTC "
                "(pass tz='Europe/London' or similar if they are local times)."
            )
        return _to_ns(naive.dt.tz_localize("UTC"), column, where), {}, notes
    index = pd.DatetimeIndex(naive)
    present = ~index.isna()
    n = len(index)
    try:
        ambiguous_probe = index.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward")
    except (ValueError, KeyError) as exc:
        raise ParameterError(
            f"tz == {tz!r} is not a known time zone ({exc}); use an IANA name such as 'America/New_York'."
        ) from exc
    gap_probe = index.tz_localize(tz, ambiguous=np.ones(n, dtype=bool), nonexistent="NaT")
    is_ambiguous = present & ambiguous_probe.isna()
    is_gap = present & gap_probe.isna()
    if is_gap.any() and nonexistent == "raise":
        raise where.error(
            f"Local times that do not exist in {tz} (skipped by the spring DST change)",
            column,
            is_gap,
            "pass nonexistent='shift_forward' (move to the first valid time) or 'shift_backward'.",
            values=naive,
        )
    if is_ambiguous.any() and ambiguous == "raise":
        raise where.error(
            f"Local times that occur twice in {tz} (repeated by the autumn DST change)",
            column,
            is_ambiguous,
            "pass ambiguous='earliest' (first occurrence, summer time) or 'latest'.",
            values=naive,
        )
    localized = index.tz_localize(
        tz,
        ambiguous=np.full(n, ambiguous != "latest", dtype=bool),
        nonexistent="shift_forward" if nonexistent == "raise" else nonexistent,
    )
    notes.append(f"{column}: local times in {tz} converted to UTC.")
    utc = pd.Series(localized.tz_convert("UTC"), index=naive.index)
    repairs = {
        f"nonexistent local time ({nonexistent})": is_gap,
        f"ambiguous local time ({ambiguous})": is_ambiguous,
    }
    return _to_ns(utc, column, where), repairs, notes
