"""Canonical columns, errors and argument checks shared by every module.

Every loader maps source columns onto the canonical names below (the data
contract); every error raised on user input is one of the exception classes
here, with structured fields a caller can inspect, and a message that says
what is wrong, where, and what to do.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

__all__ = [
    "EVENT_COLUMNS",
    "ASSIGNMENT_COLUMNS",
    "FEEDBACK_COLUMNS",
    "SPEND_COLUMNS",
    "TRANSACTION_COLUMNS",
    "JourneylabError",
    "SchemaError",
    "DataError",
    "ParameterError",
    "NotComputableError",
    "JourneylabWarning",
    "ModelWarning",
    "UnknownNameError",
    "did_you_mean",
    "require_names",
    "require_columns",
    "check_in",
    "check_range",
    "format_rows",
]

#: Canonical columns per table: ``required`` must be present after the
#: ``columns=`` mapping, ``optional`` are recognised and typed when present.
EVENT_COLUMNS = {
    "required": ("user_id", "timestamp", "event"),
    "optional": ("channel", "value", "session_id"),
}
ASSIGNMENT_COLUMNS = {
    "required": ("user_id", "variant"),
    "optional": ("assigned_at",),
}
FEEDBACK_COLUMNS = {
    "required": ("timestamp", "score"),
    "optional": ("user_id", "touchpoint", "text", "stage"),
}
SPEND_COLUMNS = {
    "required": ("channel", "date", "cost"),
    "optional": ("campaign",),
}
TRANSACTION_COLUMNS = {
    "required": ("user_id", "timestamp", "value"),
    "optional": ("order_id", "channel"),
}


class JourneylabError(Exception):
    """Base class of every error journeylab raises on purpose."""


class SchemaError(JourneylabError, ValueError):
    """A table does not have the columns or types the data contract requires.

    Attributes
    ----------
    source : str or None
        The file, table or object the data came from.
    column : str or None
        The offending column, when one is at fault.
    missing_columns : tuple of str
        Required columns that are absent.
    rows : list
        The first offending rows, as 1-based source numbers (file line numbers
        for CSV, row numbers for other sources).
    hint : str or None
        What to do about it.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        column: str | None = None,
        missing_columns: Sequence[str] = (),
        rows: Sequence[Any] = (),
        hint: str | None = None,
    ) -> None:
        self.source = source
        self.column = column
        self.missing_columns = tuple(missing_columns)
        self.rows = list(rows)
        self.hint = hint
        parts = [message]
        if source:
            parts.append(f"source: {source}")
        if column:
            parts.append(f"column: {column!r}")
        if self.rows:
            parts.append(f"first offending rows: {format_rows(self.rows)}")
        if hint:
            parts.append(f"what to do: {hint}")
        super().__init__("\n  ".join(parts))


class DataError(SchemaError):
    """Values in a column are invalid (wrong type, negative counts, NaN ...)."""


class ParameterError(JourneylabError, ValueError):
    """An argument or report parameter has an invalid value or name."""


class NotComputableError(JourneylabError, ArithmeticError):
    """A statistic cannot be computed from the data given (with the reason)."""


class JourneylabWarning(UserWarning):
    """Base class of every warning journeylab emits on purpose."""


class ModelWarning(JourneylabWarning, UserWarning):
    """A fitted model should not be trusted as is.

    Emitted on fit when the optimiser did not converge, a parameter ran to the
    edge of its domain (a boundary solution), or a parameter is not identified
    by the data (singular or ill-conditioned information matrix). The model's
    ``status`` and ``warnings`` say which, in plain language.
    """


class UnknownNameError(SchemaError, ParameterError):
    """An argument names an event, step or column that no row of the data carries.

    It is both a :class:`SchemaError` (the data and the names disagree) and a
    :class:`ParameterError` (an argument is wrong), so either can catch it.

    Attributes
    ----------
    names : tuple of str
        The names that no row carries, in the order given.
    suggestions : dict
        Name → the closest name present (only for names with one).
    what : str
        What the names are ("funnel step", "segment column" ...).
    """

    def __init__(
        self,
        message: str,
        *,
        names: Sequence[str] = (),
        suggestions: dict[str, str] | None = None,
        what: str = "name",
        **fields: Any,
    ) -> None:
        self.names = tuple(names)
        self.suggestions = dict(suggestions or {})
        self.what = what
        super().__init__(message, **fields)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Return a ``" (did you mean 'x'?)"`` hint for the closest candidate, or ``""``.

    Examples
    --------
    >>> did_you_mean("userid", ["user_id", "timestamp"])
    " (did you mean 'user_id'?)"
    """
    candidates = [str(c) for c in candidates]
    lowered = {c.lower().replace("-", "_").replace(" ", "_"): c for c in candidates}
    key = str(name).lower().replace("-", "_").replace(" ", "_")
    if key in lowered:
        return f" (did you mean {lowered[key]!r}?)"
    match = difflib.get_close_matches(key, list(lowered), n=1, cutoff=0.6)
    return f" (did you mean {lowered[match[0]]!r}?)" if match else ""


def _closest(name: str, candidates: Sequence[str]) -> str | None:
    hint = did_you_mean(name, candidates)
    return hint[len(" (did you mean '") : -len("'?)")] if hint else None


def require_names(
    names: str | Iterable[str],
    present: Iterable[Any],
    *,
    what: str = "event",
    absent: str = "occurs in no row",
    column: str | None = "event",
    source: str | None = None,
    hint: str | None = None,
    patterns: bool = True,
    present_label: str | None = None,
) -> None:
    """Raise :class:`UnknownNameError` naming every name absent from ``present``.

    Analyses fail closed with it: a funnel step, conversion event or segment
    column that the data do not carry is an error naming it and the closest
    names present, never an empty result. A name with ``*``, ``?`` or ``[`` is
    a shell pattern and counts as present when it matches a present name.

    Parameters
    ----------
    names : str or iterable of str
        The names an argument gives.
    present : iterable
        The names the data carry (distinct events, or columns).
    what : str
        What a name is, for the message ("funnel step", "segment column").
    absent : str
        How absence is said ("occurs in no row", "is not a column of the events").
    column : str, optional
        The column the names were looked for in (``"event"``; None for columns).
    source : str, optional
        Where the data came from.
    hint : str, optional
        What to do; by default, to correct the name.
    patterns : bool
        Read ``*``, ``?`` and ``[`` as shell patterns (False for column names).
    present_label : str, optional
        What the present names are, for the listing (default "names", or
        "columns" when ``column`` is None).

    Examples
    --------
    >>> require_names(["visit", "purchase"], ["visit", "view", "purchase"], what="funnel step")
    >>> require_names(["visit", "purchse"], ["visit", "purchase"], what="funnel step")
    ... # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    journeylab.core.errors.UnknownNameError: funnel step 'purchse' occurs in no row
    (did you mean 'purchase'?); names present: 'purchase', 'visit'.
      column: 'event'
      what to do: correct the name (names are case-sensitive).
    """
    wanted = [names] if isinstance(names, str) else [str(n) for n in names]
    have = sorted(
        {str(p) for p in present if p is not None and not (isinstance(p, float) and p != p)}
    )
    have_set = set(have)

    def found(name: str) -> bool:
        if patterns and any(ch in name for ch in "*?["):
            return any(fnmatch.fnmatchcase(h, name) for h in have)
        return name in have_set

    missing = list(dict.fromkeys(n for n in wanted if not found(n)))
    if not missing:
        return
    suggestions = {n: c for n in missing if (c := _closest(n, have)) is not None}

    def named(n: str) -> str:
        return f"{n!r}" + (f" (did you mean {suggestions[n]!r}?)" if n in suggestions else "")

    shown = ", ".join(repr(h) for h in have[:12]) + (
        f" ... ({len(have) - 12} more)" if len(have) > 12 else ""
    )
    kind = present_label or ("columns" if column is None else "names")
    listing = f"{kind} present: {shown}" if have else "the data are empty"
    if len(missing) == 1:
        name = missing[0]
        head = f"{what} {name!r} {absent}" + (
            f" (did you mean {suggestions[name]!r}?)" if name in suggestions else ""
        )
    else:
        plural = absent.replace("occurs", "occur").replace("is not a column", "are not columns")
        head = f"{len(missing)} {what}s {plural}: {', '.join(named(n) for n in missing)}"
    raise UnknownNameError(
        f"{head}; {listing}.",
        names=missing,
        suggestions=suggestions,
        what=what,
        source=source,
        column=column,
        hint=hint or "correct the name (names are case-sensitive).",
    )


def format_rows(rows: Sequence[Any], limit: int = 5) -> str:
    """Format the first ``limit`` row labels for a message."""
    shown = ", ".join(str(r) for r in list(rows)[:limit])
    more = len(rows) - limit
    return shown + (f" (and {more} more)" if more > 0 else "")


def require_columns(
    frame: pd.DataFrame,
    required: Iterable[str],
    *,
    source: str | None = None,
    what: str = "table",
) -> None:
    """Raise :class:`SchemaError` naming each missing column and its closest match.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table to check.
    required : iterable of str
        Column names that must be present.
    source : str, optional
        Where the table came from, for the message.
    what : str
        What the table is ("events", "assignments" ...), for the message.
    """
    present = [str(c) for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if not missing:
        return
    hints = [f"{c!r}{did_you_mean(c, present)}" for c in missing]
    raise SchemaError(
        f"The {what} table lacks required column(s): {', '.join(hints)}. "
        f"Columns present: {present}.",
        source=source,
        column=missing[0],
        missing_columns=missing,
        hint="map your column names onto the canonical ones with "
        "columns={'your_name': '" + missing[0] + "'}.",
    )


def check_in(name: str, value: Any, allowed: Iterable[Any]) -> None:
    """Raise :class:`ParameterError` unless ``value`` is one of ``allowed``.

    Examples
    --------
    >>> check_in("grain", "user", ["user", "session"])
    """
    allowed = list(allowed)
    if value not in allowed:
        hint = did_you_mean(str(value), [str(a) for a in allowed])
        raise ParameterError(f"{name} == {value!r}, must be one of {allowed}{hint}.")


def check_range(
    name: str,
    value: float,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = False,
    high_inclusive: bool = False,
) -> None:
    """Raise :class:`ParameterError` if ``value`` lies outside the given bounds.

    Examples
    --------
    >>> check_range("alpha", 0.05, low=0, high=1)
    """
    if low is not None and (value < low or (value == low and not low_inclusive)):
        op = ">=" if low_inclusive else ">"
        raise ParameterError(f"{name} == {value!r}, must be {op} {low}.")
    if high is not None and (value > high or (value == high and not high_inclusive)):
        op = "<=" if high_inclusive else "<"
        raise ParameterError(f"{name} == {value!r}, must be {op} {high}.")
