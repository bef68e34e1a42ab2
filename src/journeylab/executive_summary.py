"""The executive summary of the monthly report, as Markdown with every data value escaped.

The summary mixes our own wording with values that come from data (segment,
channel and step names inside the pain-point findings). Each piece of text
is escaped with :func:`journeylab.safe_text.md` before it is joined, so a
device called ``<img src=x onerror=...>`` or a channel called
``[x](javascript:...)`` reads as text in the report instead of running.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from journeylab.results import fmt_money, fmt_num, fmt_pct
from journeylab.safe_text import md

__all__ = ["executive_summary", "change_since"]


def change_since(
    metrics: Mapping[str, Any], previous: Mapping[str, Any] | None, key: str, kind: str = "num"
) -> str:
    """Describe the change of one KPI against the previous month's report.

    Examples
    --------
    >>> change_since({"visitors": 110}, {"visitors": 100, "month": "2026-09"}, "visitors")
    '+10.0% vs 2026-09'
    >>> change_since({"rate": 0.25}, {"rate": 0.2, "month": "2026-09"}, "rate", "pct")
    '+5.0 pp vs 2026-09'
    >>> change_since({"visitors": 110}, None, "visitors")
    'no previous report'
    """
    if not previous or previous.get(key) in (None, 0) or metrics.get(key) is None:
        return "no previous report"
    delta = metrics[key] - previous[key]
    if kind == "pct":
        return f"{delta * 100:+.1f} pp vs {previous['month']}"
    return f"{delta / previous[key]:+.1%} vs {previous['month']}"


def executive_summary(
    month: str,
    metrics: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    findings: Sequence[str],
) -> str:
    """Return the executive summary as Markdown: the KPI table and the top pain points.

    Parameters
    ----------
    month : str
        ``YYYY-MM``.
    metrics : mapping
        ``users``, ``visitors``, ``bookings``, ``booking_rate`` and ``revenue``
        of the month.
    previous : mapping or None
        The previous month's metrics (``previous_metrics``), for the changes.
    findings : sequence of str
        Plain-text findings (``PainPoints.findings``); they carry data values
        and are escaped for Markdown here.

    Examples
    --------
    >>> text = executive_summary("2026-10", {"users": 5, "visitors": 4, "bookings": 1,
    ...     "booking_rate": 0.25, "revenue": 120.0}, None, ["<b>tablet</b> users drop out"])
    >>> "&lt;b&gt;tablet&lt;/b&gt; users drop out" in text
    True
    """
    period = pd.Period(month, freq="M")
    lines = [
        f"**{md(period.strftime('%B %Y'))}** — {md(fmt_num(metrics['users']))} people touched the "
        f"business ({md(fmt_num(metrics['visitors']))} site visitors).",
        "",
        "| KPI | this month | change |",
        "| --- | ---: | --- |",
    ]
    rows = [
        ("Site visitors", fmt_num(metrics["visitors"]), change_since(metrics, previous, "visitors")),
        ("Bookings", fmt_num(metrics["bookings"]), change_since(metrics, previous, "bookings")),
        (
            "Booking rate (bookings per visitor)",
            fmt_pct(metrics["booking_rate"]),
            change_since(metrics, previous, "booking_rate", "pct"),
        ),
        ("Revenue", fmt_money(metrics["revenue"]), change_since(metrics, previous, "revenue")),
    ]
    lines += [f"| {md(kpi)} | {md(value)} | {md(change)} |" for kpi, value, change in rows]
    lines += ["", "**Top pain points by value at stake**", ""]
    if findings:
        lines += [f"{i}. {md(text)}" for i, text in enumerate(findings, 1)]
    else:
        lines.append(md("No segment converts measurably worse than its benchmark this month."))
    return "\n".join(lines)
