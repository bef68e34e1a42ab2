"""The result-object convention and the house number formats.

Every analysis returns a :class:`Result`: ``to_frame()`` gives the numbers
(tidy), ``summary()`` a short plain-language text, ``_repr_html_()`` renders
it in a notebook and in exported HTML, and ``plot(ax=None)`` draws it on the
given matplotlib axes and returns them.

Number formats are fixed here so every table and sentence reads the same:
percentages with one decimal, relative effects as ``+12.3%``, three
significant digits elsewhere, intervals as ``[lo, hi]`` with as many more
digits as it takes for the two ends to differ in print.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from journeylab.core.safe_text import html, html_table

__all__ = [
    "Result",
    "fmt_num",
    "fmt_pct",
    "fmt_pp",
    "fmt_ci",
    "interval_precision",
    "fmt_p",
    "fmt_money",
    "currency_sign",
    "CURRENCY_SIGNS",
    "suppression_note",
]


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA


def fmt_num(x: float | None, digits: int = 3) -> str:
    """Format with ``digits`` significant digits and thousands separators.

    Examples
    --------
    >>> fmt_num(12345.678)
    '12,346'
    >>> fmt_num(0.012345)
    '0.0123'
    >>> fmt_num(95)
    '95'
    """
    if _missing(x):
        return "–"
    x = float(x)
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    if x.is_integer():
        return f"{x:,.0f}"  # counts read as counts: 95, not 95.0
    magnitude = math.floor(math.log10(abs(x)))
    decimals = max(digits - 1 - magnitude, 0)
    return f"{x:,.{decimals}f}"


def fmt_pct(x: float | None, decimals: int = 1, signed: bool = False) -> str:
    """Format a proportion as a percentage (``0.312 -> '31.2%'``).

    Examples
    --------
    >>> fmt_pct(0.3125)
    '31.2%'
    >>> fmt_pct(0.05, signed=True)
    '+5.0%'
    """
    if _missing(x):
        return "–"
    sign = "+" if signed else ""
    return f"{float(x) * 100:{sign}.{decimals}f}%"


def fmt_pp(x: float | None, decimals: int = 1) -> str:
    """Format a difference of proportions in percentage points (``+1.8 pp``)."""
    if _missing(x):
        return "–"
    return f"{float(x) * 100:+.{decimals}f} pp"


def _infinite(x: Any) -> bool:
    return not _missing(x) and math.isinf(float(x))


#: The precision argument of each house formatter and its default.
_PRECISION = {fmt_num: ("digits", 3), fmt_pct: ("decimals", 1), fmt_pp: ("decimals", 1)}
#: Digits added at most to tell an interval's ends apart.
_MAX_EXTRA_DIGITS = 6


def interval_precision(
    low: float | None, high: float | None, fmt=fmt_num, precision: int | None = None
) -> int | None:
    """Return the precision at which ``fmt`` prints ``low`` and ``high`` differently.

    Starts at ``precision`` (the formatter's default when None: 3 significant
    digits for :func:`fmt_num`, 1 decimal for :func:`fmt_pct` and
    :func:`fmt_pp`) and adds digits until the two ends differ in print, so an
    interval is never shown as ``[+0.2, +0.2]``. Ends that are equal, missing
    or infinite keep the starting precision. Returns None for a formatter
    without a precision argument.

    Examples
    --------
    >>> interval_precision(0.00181, 0.00234, fmt_pp)
    2
    >>> interval_precision(0.1, 0.25, fmt_pct)
    1
    """
    if fmt not in _PRECISION:
        return None
    name, default = _PRECISION[fmt]
    p = default if precision is None else int(precision)
    if (
        _missing(low)
        or _missing(high)
        or _infinite(low)
        or _infinite(high)
        or float(low) == float(high)
    ):
        return p
    for extra in range(_MAX_EXTRA_DIGITS + 1):
        if fmt(low, **{name: p + extra}) != fmt(high, **{name: p + extra}):
            return p + extra
    return p + _MAX_EXTRA_DIGITS


def _end(x: float | None, fmt, kwargs: dict) -> str:
    if _infinite(x):
        return "-∞" if float(x) < 0 else "+∞"
    return fmt(x, **kwargs)


def fmt_ci(low: float | None, high: float | None, fmt=fmt_num, **kwargs: Any) -> str:
    """Format an interval as ``[lo, hi]`` with the given number formatter.

    With a house formatter (:func:`fmt_num`, :func:`fmt_pct`,
    :func:`fmt_pp`) digits are added until the two ends differ in print
    (see :func:`interval_precision`); extra keyword arguments go to the
    formatter (``signed=True``). An infinite end (a one-sided interval) is
    written ``-∞`` or ``+∞`` with an open bracket.

    Examples
    --------
    >>> fmt_ci(0.1, 0.25, fmt_pct)
    '[10.0%, 25.0%]'
    >>> fmt_ci(0.00181, 0.00234, fmt_pp)
    '[+0.18 pp, +0.23 pp]'
    >>> fmt_ci(-0.0021, float("inf"), fmt_pp)
    '[-0.2 pp, +∞)'
    """
    if fmt in _PRECISION:
        name, _ = _PRECISION[fmt]
        kwargs = {**kwargs, name: interval_precision(low, high, fmt, kwargs.get(name))}
    left = "(" if _infinite(low) else "["
    right = ")" if _infinite(high) else "]"
    return f"{left}{_end(low, fmt, kwargs)}, {_end(high, fmt, kwargs)}{right}"


def fmt_p(p: float | None, *, with_p: bool = False) -> str:
    """Format a p-value: three significant digits, ``< 0.0001`` below that.

    With ``with_p`` it reads as a statement: ``p = 0.0123`` or ``p < 0.0001``.

    Examples
    --------
    >>> fmt_p(0.0123456)
    '0.0123'
    >>> fmt_p(1e-9)
    '< 0.0001'
    >>> fmt_p(0.0123456, with_p=True), fmt_p(1e-9, with_p=True)
    ('p = 0.0123', 'p < 0.0001')
    """
    if _missing(p):
        text = "–"
    elif p < 1e-4:
        text = "< 0.0001"
    else:
        text = fmt_num(p, 3)
    if not with_p:
        return text
    return f"p {text}" if text.startswith("<") else f"p = {text}"


#: The signs of common ISO 4217 codes; any other code is written as the code and a space
#: (the signs of :attr:`journeylab.core.project.Project.currency_sign`, tested to agree).
CURRENCY_SIGNS = {
    "USD": "$",
    "EUR": "€",
    "GBP": "£",
    "JPY": "¥",
    "KRW": "₩",
    "CNY": "¥",
    "INR": "₹",
}


def currency_sign(currency: str | None = "USD") -> str:
    """Return the prefix of amounts: an ISO 4217 code's sign, else the code and a space.

    Anything that is not a three-letter upper-case code is taken as a sign
    already (``"$"``, ``"CHF "``); None means USD.

    Examples
    --------
    >>> currency_sign("EUR"), currency_sign("CHF"), currency_sign("$")
    ('€', 'CHF ', '$')
    """
    if currency is None:
        return "$"
    text = str(currency)
    if len(text) == 3 and text.isascii() and text.isalpha() and text.isupper():
        return CURRENCY_SIGNS.get(text, text + " ")
    return text


def fmt_money(x: float | None, currency: str | None = "USD") -> str:
    """Format an amount of money with thousands separators (``$12,345``, ``€12.50``).

    ``currency`` is an ISO 4217 code (``"EUR"``; the project file's ``currency``)
    or a sign (``"$"``); see :func:`currency_sign`.

    Examples
    --------
    >>> fmt_money(12345.6), fmt_money(12.5, "EUR"), fmt_money(-250, "CHF")
    ('$12,346', '€12.50', '-CHF 250')
    """
    if _missing(x):
        return "–"
    sign_text = currency_sign(currency)
    x = float(x)
    sign = "-" if x < 0 else ""
    x = abs(x)
    return f"{sign}{sign_text}{x:,.0f}" if x >= 100 else f"{sign}{sign_text}{x:,.2f}"


def suppression_note(count: int, min_users: int) -> str:
    """Say how many small segments a shared report leaves out, and why.

    Examples
    --------
    >>> suppression_note(2, 30)
    '2 segments with fewer than 30 users are not shown (small-group suppression).'
    """
    if count == 1:
        return (
            f"1 segment with fewer than {min_users:,} users is not shown (small-group suppression)."
        )
    return f"{count:,} segments with fewer than {min_users:,} users are not shown (small-group suppression)."


class Result:
    """Base class of analysis results.

    Subclasses implement :meth:`to_frame`, :meth:`summary` and usually
    :meth:`plot`; the HTML rendering combines the summary with a formatted
    table. ``title`` names the analysis in headings.
    """

    title: str = "Result"

    def to_frame(self) -> pd.DataFrame:
        """Return the numbers as a tidy DataFrame."""
        raise NotImplementedError

    def summary(self) -> str:
        """Return a short plain-language description of what was found."""
        raise NotImplementedError

    def plot(self, ax=None):
        """Draw the result on ``ax`` (a new figure if None) and return the axes."""
        raise NotImplementedError(f"{type(self).__name__} has no plot")

    def display_frame(self) -> pd.DataFrame:
        """Return the table shown in HTML; override to format numbers for readers."""
        return self.to_frame()

    def _repr_html_(self) -> str:
        frame = self.display_frame()
        # Summaries and tables carry data values (segments, channels): escaped, one line each.
        summary = "<br>".join(html(line) for line in self.summary().split("\n"))
        table = html_table(
            frame,
            index=not isinstance(frame.index, pd.RangeIndex),
            float_format=lambda v: fmt_num(v),
            na_rep="–",
            border=0,
            classes="jl-table",
        )
        return (
            f'<div class="jl-result"><h4>{html(self.title)}</h4>'
            f'<p class="jl-summary">{summary}</p>{table}</div>'
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>\n{self.summary()}"
