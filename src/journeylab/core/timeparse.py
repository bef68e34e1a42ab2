"""The one reading of times, durations and calendar months given as arguments or columns.

Every function that takes a time (``start=``, ``period_end=``, ``as_of=``), a
duration (``lookback=``, ``window=``, ``gap=``, ``half_life=``) or a month
(``month=``, ``--month``) reads it here, so one mistake gets one message
wherever it is made:

1. **Times** are UTC. A naive time is read as UTC; an aware one is converted.
   A bare number is refused (pandas would read ``20261001`` as nanoseconds
   since 1970).
2. **Durations** are pandas Timedelta strings (``"30D"``, ``"12h"``,
   ``"30min"``, ``"1 day 2h"``), ISO 8601 durations in weeks, days, hours,
   minutes and seconds (``"P30D"``, ``"PT12H"``, ``"P1DT6H"``), or Timedelta
   objects. They must be longer than zero. Bare numbers are refused unless the
   argument names its unit (``half_life`` in days); so are ISO years and months
   (``"P1M"``), which have no fixed length (pandas reads ``"P1M"`` as one minute).
3. **Months** are ``"YYYY-MM"`` exactly (ASCII digits, month 01 to 12, no
   surrounding space or newline), ``"previous"`` (the last full month before
   today), or a monthly :class:`pandas.Period`. A month covers
   ``[its first instant, the next month's first instant)`` in UTC.
4. **Time columns** are read as ISO 8601 (any mix of date-only and
   date-time values) or, failing that, by pandas' own inference; values that
   cannot be read raise :class:`~journeylab.core.errors.DataError` naming the
   column and the first offending rows. Missing values stay missing.

The messages have one shape: ``name == value: not a ...; write e.g. ...``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import numpy as np
import pandas as pd

from journeylab.core.errors import DataError, ParameterError

__all__ = [
    "to_utc_timestamp",
    "parse_duration",
    "parse_month",
    "month_bounds",
    "to_utc_series",
    "naive_utc",
    "format_time",
]

_TIME_EXAMPLES = "'2026-10-01' or '2026-10-01 09:30' (UTC unless an offset is given)"
_DURATION_EXAMPLES = "'30D', '12h', '30min' or 'P30D'"
_MONTH_RE = re.compile(r"[0-9]{4}-(?:0[1-9]|1[0-2])")
_NUMBER_RE = re.compile(r"\s*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)\s*")
# ISO 8601 durations of fixed length: weeks and days, then hours, minutes, seconds after T.
_ISO_DURATION_RE = re.compile(
    r"P(?:(?P<weeks>[0-9]+)W)?(?:(?P<days>[0-9]+)D)?"
    r"(?:T(?:(?P<hours>[0-9]+)H)?(?:(?P<minutes>[0-9]+)M)?(?:(?P<seconds>[0-9]+(?:\.[0-9]+)?)S)?)?"
)
_NUMBER_UNITS = {"D": "days", "h": "hours", "min": "minutes", "s": "seconds"}


def _is_number(value: Any) -> bool:
    # numpy's timedelta64 is a subclass of its integers; it is a duration, not a number
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.timedelta64, np.datetime64)
    )


# --------------------------------------------------------------------------- times
def to_utc_timestamp(
    value: Any, name: str = "time", *, optional: bool = False
) -> pd.Timestamp | None:
    """Read a date or time as a UTC :class:`pandas.Timestamp` (naive input is taken as UTC).

    Parameters
    ----------
    value : str, datetime, date, numpy.datetime64 or Timestamp
        The time; ``None`` only when ``optional``.
    name : str
        The argument's name, for the message.
    optional : bool
        Return ``None`` for ``None`` instead of refusing it.

    Returns
    -------
    pandas.Timestamp or None
        Timezone-aware, in UTC.

    Raises
    ------
    ParameterError
        ``start == 'soon': not a date or time; write e.g. '2026-10-01' ...``.

    Examples
    --------
    >>> to_utc_timestamp("2026-10-01 09:30", "start")
    Timestamp('2026-10-01 09:30:00+0000', tz='UTC')
    >>> to_utc_timestamp("2026-10-01T09:30+02:00", "start")
    Timestamp('2026-10-01 07:30:00+0000', tz='UTC')
    """
    if value is None:
        if optional:
            return None
        raise ParameterError(f"{name} is missing: give a date or time, e.g. {_TIME_EXAMPLES}.")
    bad = ParameterError(f"{name} == {value!r}: not a date or time; write e.g. {_TIME_EXAMPLES}.")
    if _is_number(value) or isinstance(value, bool):
        raise bad
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise bad from exc
    if ts is pd.NaT:
        raise bad
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def format_time(value: Any) -> str:
    """Write a time for a message: ``2026-10-01`` at midnight, else ``2026-10-01 09:30 UTC``.

    Examples
    --------
    >>> format_time(pd.Timestamp("2026-10-01", tz="UTC")), format_time(None)
    ('2026-10-01', '(none)')
    """
    if value is None or pd.isna(value):
        return "(none)"
    ts = pd.Timestamp(value)
    return ts.strftime("%Y-%m-%d %H:%M UTC") if (ts.hour or ts.minute) else ts.strftime("%Y-%m-%d")


# --------------------------------------------------------------------------- durations
def parse_duration(
    value: Any,
    name: str = "duration",
    *,
    number_unit: str | None = None,
    optional: bool = False,
    allow_zero: bool = False,
) -> pd.Timedelta | None:
    """Read a positive duration (or, with ``allow_zero``, a non-negative one).

    Parameters
    ----------
    value : str, Timedelta, datetime.timedelta or numpy.timedelta64
        ``"30D"``, ``"12h"``, ``"30min"``, ``"P30D"``, ``"PT12H"`` ...; a number
        only when ``number_unit`` says what it counts.
    name : str
        The argument's name, for the message.
    number_unit : {"D", "h", "min", "s"}, optional
        The unit of a bare number (``half_life=7`` means seven days).
    optional : bool
        Return ``None`` for ``None`` instead of refusing it.
    allow_zero : bool
        Accept a zero duration (``"0s"``).

    Returns
    -------
    pandas.Timedelta or None

    Raises
    ------
    ParameterError
        ``lookback == 'soon': not a duration; write e.g. '30D', ...`` or
        ``lookback == '-3D': not a positive duration; ...``.

    Examples
    --------
    >>> parse_duration("30D", "lookback"), parse_duration("PT12H", "gap")
    (Timedelta('30 days 00:00:00'), Timedelta('0 days 12:00:00'))
    >>> parse_duration(7, "half_life", number_unit="D")
    Timedelta('7 days 00:00:00')
    """
    if value is None and optional:
        return None
    examples = _DURATION_EXAMPLES
    if number_unit is not None:
        examples = f"a number of {_NUMBER_UNITS[number_unit]}, {examples}"
    bad = ParameterError(f"{name} == {value!r}: not a duration; write e.g. {examples}.")
    if value is None or isinstance(value, bool):
        raise bad
    if _is_number(value):
        if number_unit is None or not np.isfinite(value):
            raise bad
        delta = pd.Timedelta(float(value), unit=number_unit)
    elif isinstance(value, str):
        delta = _duration_text(value, bad)
    else:
        try:
            delta = pd.Timedelta(value)
        except (ValueError, TypeError, OverflowError) as exc:
            raise bad from exc
    if delta is pd.NaT:
        raise bad
    if delta < pd.Timedelta(0) or (delta == pd.Timedelta(0) and not allow_zero):
        wanted = "a negative duration" if allow_zero else "not a positive duration"
        raise ParameterError(f"{name} == {value!r}: {wanted}; write e.g. {examples}.")
    return delta


def _duration_text(text: str, bad: ParameterError) -> pd.Timedelta:
    if _NUMBER_RE.fullmatch(text):  # pandas would read a bare "30" as 30 nanoseconds
        raise bad
    if text.startswith("P"):
        match = _ISO_DURATION_RE.fullmatch(text)
        if not match or not any(match.groups()) or text.endswith("T"):
            raise bad
        parts = {unit: float(n) for unit, n in match.groupdict().items() if n is not None}
        return pd.Timedelta(**parts)
    try:
        return pd.Timedelta(text)
    except (ValueError, TypeError, OverflowError) as exc:
        raise bad from exc


# --------------------------------------------------------------------------- months
def parse_month(value: Any, name: str = "month", *, today: dt.date | None = None) -> str:
    """Read a calendar month as ``"YYYY-MM"``; ``"previous"`` is the last full month.

    Parameters
    ----------
    value : str or pandas.Period
        ``"2026-10"``, ``"previous"``, or a monthly Period.
    name : str
        The argument's name, for the message.
    today : datetime.date, optional
        The date ``"previous"`` counts back from (default: today, local date).

    Returns
    -------
    str

    Raises
    ------
    ParameterError
        ``month == '2026-13': not a calendar month; write 'YYYY-MM', e.g. '2026-10', or 'previous'.``

    Examples
    --------
    >>> parse_month("2026-03"), parse_month("previous", today=dt.date(2026, 11, 23))
    ('2026-03', '2026-10')
    """
    if isinstance(value, str) and value == "previous":
        first = (today or dt.date.today()).replace(day=1)
        last = first - dt.timedelta(days=1)
        return f"{last.year:04d}-{last.month:02d}"
    if isinstance(value, pd.Period) and value.freqstr == "M":
        return str(value)
    if isinstance(value, str) and _MONTH_RE.fullmatch(value):
        return value
    raise ParameterError(
        f"{name} == {value!r}: not a calendar month; write 'YYYY-MM', e.g. '2026-10', or 'previous'."
    )


def month_bounds(
    month: Any, name: str = "month", *, today: dt.date | None = None
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First instant of a calendar month and of the next one, in UTC: the window ``[start, end)``.

    Examples
    --------
    >>> month_bounds("2026-12")
    (Timestamp('2026-12-01 00:00:00+0000', tz='UTC'), Timestamp('2027-01-01 00:00:00+0000', tz='UTC'))
    """
    period = pd.Period(parse_month(month, name, today=today), freq="M")
    return period.start_time.tz_localize("UTC"), (period + 1).start_time.tz_localize("UTC")


# --------------------------------------------------------------------------- columns
def to_utc_series(values: pd.Series, name: str, *, source: str | None = None) -> pd.Series:
    """Read a column of times as timezone-aware UTC (naive values are taken as UTC).

    Parameters
    ----------
    values : pandas.Series
        Datetimes (naive or aware) or text.
    name : str
        The column's name, for the message.
    source : str, optional
        The table or file it came from, for the message.

    Returns
    -------
    pandas.Series
        ``datetime64[..., UTC]``, same index; missing values stay NaT.

    Raises
    ------
    DataError
        Naming the column, the first offending rows (index labels) and what to do.

    Examples
    --------
    >>> to_utc_series(pd.Series(["2026-05-01", "2026-05-01 12:00+02:00"]), "timestamp").tolist()
    [Timestamp('2026-05-01 00:00:00+0000', tz='UTC'), Timestamp('2026-05-01 10:00:00+0000', tz='UTC')]
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(values):
        return values.dt.tz_localize("UTC")
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        raise DataError(
            f"Column {name!r} holds numbers ({values.dtype}), not dates or times.",
            source=source,
            column=name,
            hint="convert epoch numbers first, e.g. pd.to_datetime(x, unit='s'), or pass ISO 8601 text.",
        )
    try:
        return pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError, OverflowError):
        pass
    try:
        return pd.to_datetime(values, utc=True)
    except (ValueError, TypeError, OverflowError) as exc:
        coerced = pd.to_datetime(values, utc=True, format="ISO8601", errors="coerce")
        offending = values[coerced.isna() & values.notna()]
        rows = offending.index.tolist()
        shown = ", ".join(repr(v) for v in offending.iloc[:3]) if rows else str(exc)
        raise DataError(
            f"Column {name!r} has values that are not dates or times: {shown}.",
            source=source,
            column=name,
            rows=rows,
            hint="write times in ISO 8601, e.g. '2026-05-01' or '2026-05-01 12:00:00' (UTC unless "
            "an offset such as +02:00 is given).",
        ) from exc


def naive_utc(values: pd.Series, name: str, *, source: str | None = None) -> pd.Series:
    """Read a column of times as timezone-naive UTC (see :func:`to_utc_series`).

    Examples
    --------
    >>> naive_utc(pd.Series(["2026-05-01 12:00+02:00"]), "timestamp").tolist()
    [Timestamp('2026-05-01 10:00:00')]
    """
    return to_utc_series(values, name, source=source).dt.tz_localize(None)
