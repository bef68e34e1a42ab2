"""The sections of the monthly report: each computes from the workspace and the project, and shows itself.

A section shows when its data is present and says in one line why when it is not:
a section function raises :class:`~journeylab.core.errors.NotComputableError`
with the reason, and :func:`section` turns that into the one line (and the
section's status in ``metrics.json``). Errors in the data or the code are not
caught: the report fails and is not published.

Counts reconcile: the executive summary's conversions are the conversion
events of the month; the funnel section names how many of them followed the
funnel's first step in the month and how many came another way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from journeylab.core.errors import DataError, NotComputableError
from journeylab.core.memory import release_free_memory
from journeylab.core.project import Project
from journeylab.core.results import fmt_num, fmt_pct, fmt_pp
from journeylab.core.safe_text import html, md
from journeylab.reports.monthly import month_rows
from journeylab.reports.prose import Money

__all__ = [
    "section",
    "month_checks",
    "headline",
    "month_findings",
    "executive_summary",
    "kpi_table_html",
    "reach_note",
    "plot_trend",
    "findings_text",
    "journey_canvas_figure",
    "quality_table_html",
]

Say = Callable[[str], None]


@contextlib.contextmanager
def section(statuses: dict[str, str], name: str, say: Say) -> Iterator[None]:
    """Run a section: on NotComputableError say why in one line and record it; anything else fails the report.

    What the section's work freed goes back to the system when it ends, so the next
    section of a long report starts from what the report holds, not from its leftovers.
    """
    try:
        yield
        statuses[name] = "shown"
    except NotComputableError as exc:
        reason = str(exc).splitlines()[0]
        statuses[name] = reason
        say(f"*Not shown: {md(reason)}*")
    finally:
        release_free_memory()


def _month(month: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    period = pd.Period(month, freq="M")
    return period.start_time.tz_localize("UTC"), (period + 1).start_time.tz_localize("UTC")


def _previous(month: str) -> str:
    return str(pd.Period(month, freq="M") - 1)


def month_checks(in_month: pd.DataFrame, project: Project, month: str) -> dict[str, int]:
    """Refuse a month that has no users, no conversions or no funnel entrants (the report is not published)."""
    users = int(in_month["user_id"].nunique())
    if users == 0:
        raise DataError(f"No users in {month}: there is nothing to report.")
    conversions = int(in_month["event"].isin(project.conversion).sum())
    if conversions == 0:
        names = ", ".join(project.conversion)
        raise DataError(
            f"No conversions ({names}) in {month}: a report would show an empty journey.",
            column="event",
            hint="check journey.conversion in the project file (journeylab check), or choose another month.",
        )
    entrants = 0
    if project.funnel:
        entrants = int(in_month.loc[in_month["event"] == project.funnel[0], "user_id"].nunique())
        if entrants == 0:
            raise DataError(
                f"Nobody entered the funnel's first step ({project.funnel[0]}) in {month}.",
                column="event",
                hint="check funnel in the project file (journeylab check).",
            )
    return {"users": users, "conversions": conversions, "funnel_entrants": entrants}


def _headline_of(frame: pd.DataFrame, project: Project) -> dict[str, float]:
    conv = frame.loc[frame["event"].isin(project.conversion)]
    entrants = (
        int(frame.loc[frame["event"] == project.funnel[0], "user_id"].nunique())
        if project.funnel
        else 0
    )
    converters = int(conv["user_id"].nunique())
    value = (
        float(conv["value"].sum()) if "value" in conv and conv["value"].notna().any() else np.nan
    )
    if np.isnan(value) and project.value_per_conversion is not None:
        value = len(conv) * project.value_per_conversion
    return {
        "users": int(frame["user_id"].nunique()),
        "conversions": int(len(conv)),
        "converters": converters,
        "funnel_entrants": entrants,
        "conversion_rate": converters / entrants if entrants else np.nan,
        "conversion_value": value,
    }


def headline(events: pd.DataFrame, project: Project, month: str) -> dict[str, Any]:
    """Compute the headline figures of the month and of the month before, from the data."""
    start, end = _month(month)
    prev_start, _ = _month(_previous(month))
    now = _headline_of(month_rows(events, start, end), project)
    before_rows = month_rows(events, prev_start, start)
    out: dict[str, Any] = dict(now)
    if len(before_rows):
        for key, value in _headline_of(before_rows, project).items():
            out[f"{key}_previous"] = value
    return out


def month_findings(ws: Any, month: str, *, min_users: int):
    """Search the month's findings over the project's funnel, stages and segments."""
    from journeylab.maps.findings import find

    project = ws.project
    users = ws.users
    segments = [s for s in project.segments]
    events = ws.events.frame
    known = set(events.columns) | (set(users.columns) if users is not None else set())
    if all(s in known for s in segments):
        # the search reads these columns only: the month windows it takes stay narrow
        read = ["user_id", "timestamp", "event", "value", *segments]
        events = events[[c for c in dict.fromkeys(read) if c in events.columns]]
    return find(
        events,
        project.stage_map,
        month=month,
        conversion=project.conversion,
        funnel=project.funnel,
        steps=project.steps,
        segments=segments,
        users=users,
        value_per_conversion=project.value_per_conversion,
        timezone=project.timezone,
        labels=project.labels,
        currency=project.currency_sign,
        min_users=min_users,
    )


def _change(now: float, before: float | None, kind: str = "rel") -> str:
    if before is None or (isinstance(before, float) and np.isnan(before)) or now is None:
        return "–"
    if kind == "pp":
        return md(fmt_pp(now - before))
    if before == 0:
        return "–"
    return md(f"{now / before - 1:+.1%}")


def executive_summary(
    project: Project,
    month: str,
    head: dict[str, Any],
    kpis: pd.DataFrame,
    found: Any,
    checks: dict,
    money: Money,
) -> str:
    """Write the executive summary as Markdown: headline figures with their change, then the top findings."""
    period = pd.Period(month, freq="M")
    conv_label = " / ".join(md(project.label(c)) for c in project.conversion)
    prev = _previous(month)
    has_prev = "users_previous" in head
    lines = [
        f"**{md(project.name)} — {period.strftime('%B %Y')}.** {fmt_num(head['users'])} people were in touch; "
        f"{fmt_num(head['conversions'])} conversions ({conv_label}) by {fmt_num(head['converters'])} customers.",
        "",
        f"| figure | {period.strftime('%b %Y')} | {pd.Period(prev, freq='M').strftime('%b %Y')} | change |",
        "| --- | ---: | ---: | ---: |",
    ]
    rows = [
        ("People in touch", "users", fmt_num, "rel"),
        (f"Conversions ({conv_label})", "conversions", fmt_num, "rel"),
    ]
    if project.funnel and project.funnel[0] not in project.conversion:
        first = md(project.label(project.funnel[0]))
        rows.append(
            (
                f"Conversion rate (customers converting per {first})",
                "conversion_rate",
                fmt_pct,
                "pp",
            )
        )
    rows.append(("Value of conversions", "conversion_value", money, "rel"))
    for text, key, fmt, kind in rows:
        before = head.get(f"{key}_previous")
        lines.append(
            f"| {text} | {fmt(head[key])} | {fmt(before) if has_prev else '–'} | "
            f"{_change(head[key], before, kind) if has_prev else '–'} |"
        )
    if not has_prev:
        lines += ["", f"*The data hold no events in {prev}: no change to show.*"]
    moved = kpis.loc[kpis["significant"]]
    if len(moved):
        lines += [
            "",
            "**KPIs that changed significantly:** "
            + "; ".join(
                f"{md(r.stage_label)}: {md(r.label)} {_change(r.value, r.previous)}"
                for r in moved.itertuples()
            )
            + ".",
        ]
    if found is not None:
        top = found.top(3)
        lines += [
            "",
            "**Top findings by value at stake** (each counted once; findings of different "
            "dimensions may share customers, so they are not added up):",
            "",
        ]
        if top.empty:
            lines.append(md(found.summary().splitlines()[0]))
        lines += [f"{i}. {md(text)}" for i, text in enumerate(top["text"], start=1)]
    return "\n".join(lines)


def kpi_table_html(kpis: pd.DataFrame, project: Project, money: Money) -> str:
    """Build the stage × KPI table: this month, previous month, change with its test."""
    if kpis.empty:
        raise NotComputableError(
            "the project file declares no stage KPIs (stages.<stage>.kpis): no KPI table."
        )
    rows = []
    for _stage, group in kpis.groupby("stage", sort=False):
        for i, r in enumerate(group.itertuples()):
            fmt = money.plain if r.measure == "value" else fmt_num
            prev = "–" if pd.isna(r.previous) else fmt(r.previous)
            change = "–" if pd.isna(r.change) else f"{r.change:+.1%}"
            mark = ("▲ " if r.change > 0 else "▼ ") if r.significant else ""
            p = "" if pd.isna(r.p_value) else f"{r.p_value:.3f}" if r.p_value >= 0.001 else "<0.001"
            rows.append(
                "<tr>"
                + (
                    f'<th rowspan="{len(group)}" scope="rowgroup">{html(r.stage_label)}</th>'
                    if i == 0
                    else ""
                )
                + f"<td>{html(str(r.label))}</td><td class='n'>{html(fmt(r.value))}</td>"
                f"<td class='n'>{html(prev)}</td><td class='n'>{mark}{html(change)}</td>"
                f"<td class='n'>{p}</td></tr>"
            )
    return (
        "<table class='kpis'><thead><tr><th>Stage</th><th>KPI</th><th>This month</th><th>Previous month</th>"
        "<th>Change</th><th>p</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def reach_note(events: pd.DataFrame, project: Project, month: str) -> str:
    """Say why a later stage can reach more people than an earlier one (people enter at any stage)."""
    start, end = _month(month)
    frame = month_rows(events, start, end, ("user_id", "event"))
    stage = project.stage_map.assign(frame)
    reach = (
        frame.groupby(stage, observed=True)["user_id"]
        .nunique()
        .reindex(project.stage_map.names)
        .fillna(0)
    )
    notes = []
    names = project.stage_map.names
    for a, b in zip(names, names[1:], strict=False):
        if reach[b] > reach[a]:
            users_a = pd.unique(frame.loc[stage == a, "user_id"])
            users_b = pd.Series(pd.unique(frame.loc[stage == b, "user_id"]))
            direct = int((~users_b.isin(users_a)).sum())  # in b without an event in a
            notes.append(
                f"{md(project.label(b))} reached {fmt_num(reach[b])} people, more than "
                f"{md(project.label(a))} ({fmt_num(reach[a])}): {fmt_num(direct)} of them had no "
                f"{md(project.label(a).lower())} event this month (they came in directly, or earlier)."
            )
    if not notes:
        return "Each stage reached no more people than the stage before it."
    return " ".join(notes)


def plot_trend(trend: pd.DataFrame, project: Project):
    """Draw small multiples of each KPI over the months of the trend."""
    if not any(stage.kpis for stage in project.stage_map):
        raise NotComputableError(
            "the project file declares no stage KPIs (stages.<stage>.kpis): no trend to draw."
        )
    if trend.empty or trend["month"].nunique() < 2:
        raise NotComputableError("fewer than two months of data: no trend to draw.")
    kpis = list(dict.fromkeys(zip(trend["stage"], trend["kpi"], strict=True)))
    n = len(kpis)
    cols = 4
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(11, 2.2 * rows), squeeze=False)
    labels = {
        (s.name, k.name): project.labels.get(k.name, k.label)
        for s in project.stage_map
        for k in s.kpis
    }
    for ax, key in zip(axes.flat, kpis, strict=False):
        part = trend.loc[(trend["stage"] == key[0]) & (trend["kpi"] == key[1])]
        ax.plot(part["month"], part["value"], marker="o", lw=1.5)
        ax.set_title(f"{project.label(key[0])}: {labels.get(key, key[1])}", fontsize=9, loc="left")
        ax.title.set_parse_math(False)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.yaxis.set_major_formatter(lambda x, _pos: f"{x:,.0f}")
    for ax in axes.flat[n:]:
        ax.set_axis_off()
    fig.suptitle("KPIs by month", x=0.01, ha="left")
    fig.tight_layout()
    return fig


def findings_text(found: Any, money: Money) -> str:
    """List the findings as a ranked Markdown list with their status and q-values."""
    frame = found.to_frame()
    if frame.empty:
        return md(found.summary())
    lines = []
    for row in frame.head(10).itertuples():
        if row.counted:
            tag = ""
        else:
            first = int(frame.loc[frame["id"] == row.overlaps, "rank"].iloc[0])
            tag = f" *(same segment as finding {first}: not counted again)*"
        lines.append(f"{int(row.rank)}. {md(row.text)} q = {row.q_value:.3g}.{tag}")
    notes = [md(n) for n in found.notes[:5]]
    return "\n".join(lines) + ("\n\n" + " ".join(notes) if notes else "")


def findings_history(found: Any, project: Project, month: str):
    """Follow this month's findings back through the ledger of earlier reports (months open, trend)."""
    from journeylab.actions.ledger import finding_history

    if not found.records():
        raise NotComputableError("no findings this month: nothing to follow over time.")
    ledger = _ledger_with(found, project, month)
    if ledger is None or set(ledger["month"]) == {month}:
        raise NotComputableError(
            "no earlier report in this reports folder: each finding is new this month."
        )
    return finding_history(ledger, month, project=project.name, currency=project.currency_sign)


def journey_canvas_figure(ws: Any, month: str, found: Any):
    """Draw the journey map as a diagram: stages as columns with their activity, KPIs, conversion and feeling."""
    from journeylab.maps.canvas import journey_canvas

    project = ws.project
    events = ws.events.frame
    # the canvas reads these columns only: its month windows stay narrow
    read = ("user_id", "timestamp", "event", "value", "channel")
    events = events[[c for c in read if c in events.columns]]
    canvas = journey_canvas(
        events,
        project.stage_map,
        month=month,
        feedback=ws.feedback.frame if ws.feedback is not None else None,
        pains=found.pains(project.stage_map) if found is not None else None,
        labels=project.labels,
        currency=project.currency_sign,
        title=f"{project.name}: the customer journey, {pd.Period(month, freq='M').strftime('%B %Y')}",
    )
    return canvas


def _ledger_with(found: Any, project: Project, month: str) -> pd.DataFrame | None:
    """Return the ledger of earlier reports with this month's findings in place of any earlier run of it."""
    import os

    from journeylab.actions.ledger import read_ledger
    from journeylab.reports.runner import REPORTS_DIR_ENV

    root = os.environ.get(REPORTS_DIR_ENV)
    earlier = read_ledger(root) if root and os.path.isdir(root) else pd.DataFrame()
    now = pd.DataFrame(
        [
            {**r, "month": month, "project": project.name, "run_id": None, "run_time": None}
            for r in found.records()
        ]
    )
    if len(earlier):
        earlier = earlier.loc[(earlier["project"] == project.name) & (earlier["month"] != month)]
    if earlier.empty and now.empty:
        return None
    if earlier.empty:
        return now
    return pd.concat(
        [earlier, now[[c for c in earlier.columns if c in now.columns]]], ignore_index=True
    )


def quality_table_html(ws: Any) -> str:
    """Build one formatted table: per table rows read, kept, dropped, repaired, and what loading did and why."""
    rows = []
    for name, table in ws.tables().items():
        q = table.quality
        steps = q.to_frame()
        steps = steps.loc[steps["rows"] > 0]
        what = (
            "<br>".join(
                html(f"{s.step}: {fmt_num(int(s.rows))} rows {s.action} ({s.reason})")
                for s in steps.itertuples()
            )
            or "nothing to repair"
        )
        rows.append(
            f"<tr><th scope='row'>{html(name)}</th><td class='n'>{fmt_num(q.rows_read)}</td>"
            f"<td class='n'>{fmt_num(q.rows_kept)}</td><td class='n'>{fmt_num(q.rows_dropped)}</td><td>{what}</td></tr>"
        )
    return (
        "<table class='quality'><thead><tr><th>Table</th><th>Rows read</th><th>Kept</th><th>Dropped</th>"
        "<th>What loading did, and why</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )
