"""The journey sections of the monthly report: the funnel with its reconciliation, and the channels' credit.

Like every section (see :mod:`journeylab.reports.sections`), each raises
:class:`~journeylab.core.errors.NotComputableError` with the reason when its data is absent.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from journeylab.core.errors import NotComputableError
from journeylab.core.project import Project
from journeylab.core.results import fmt_num
from journeylab.core.safe_text import md
from journeylab.reports.prose import Money
from journeylab.reports.sections import Say, _month

__all__ = ["funnel_section", "channels_section"]


def funnel_section(in_month: pd.DataFrame, project: Project, *, min_users: int, say: Say):
    """Show the funnel by the project's main segment, with the reconciliation of its completions."""
    from journeylab.journeys.funnels import funnel

    if len(project.funnel) < 2:
        raise NotComputableError("the project file defines no funnel (funnel: [step, step, ...]).")
    segment = next((s for s in project.segments if s in in_month.columns), None)
    steps = {project.label(s): s for s in project.funnel}
    result = funnel(in_month, steps, window="7D", segment=segment, min_users=min_users)
    say(md(result.summary()).replace("\\\n", "\n"))
    frame = result.to_frame()
    total_conv = int(in_month["event"].isin(project.conversion).sum())
    last = project.funnel[-1]
    if last in project.conversion:
        completions = (
            int(frame.loc[frame["step"] == frame["step"].iloc[-1], "reached"].sum())
            if "reached" in frame
            else None
        )
        entered = set(in_month.loc[in_month["event"] == project.funnel[0], "user_id"])
        conv_rows = in_month.loc[in_month["event"].isin(project.conversion)]
        via = int(conv_rows["user_id"].isin(entered).sum())
        say(
            f"Of the month's {fmt_num(total_conv)} conversions, {fmt_num(via)} were by customers who entered the "
            f"funnel ({md(project.label(project.funnel[0]))}) this month and {fmt_num(total_conv - via)} by "
            f"customers who came another way (e.g. by phone, or after an earlier month's visit); the funnel counts "
            f"customers who completed within 7 days of entering"
            + (f" ({fmt_num(completions)})." if completions is not None else ".")
        )
    result.plot()
    return result


def channels_section(ws: Any, month: str, *, n_boot: int, seed: int, money: Money, say: Say):
    """Show attribution with intervals, spend, CPA and ROAS for the month."""
    from journeylab.attribution import attribute
    from journeylab.journeys.build import path_table

    project = ws.project
    events = ws.events.frame
    if "channel" not in events.columns or events["channel"].notna().sum() == 0:
        raise NotComputableError("the events carry no channel: no attribution.")
    # The month's last journeys are still open at its end; leaving them all out would leave
    # (almost) no non-converting journeys and no data-driven credit. They count as not
    # converted so far, and the report says so. Only the path table is needed: it is cut
    # from the events in one pass, without building the journeys' own tables, and handed
    # to the models as codes.
    paths = path_table(
        events,
        coded=True,
        include_censored=True,
        lookback=project.lookback,
        month=month,
        stage_map=project.stage_map,
        conversion=list(project.conversion),
    )
    if paths.conversions.sum() == 0:
        raise NotComputableError(
            f"no conversions in journeys that ended in {month}: nothing to credit."
        )
    censoring = paths.attrs.get("censoring", {})
    if censoring.get("open_journeys"):
        say(
            f"{fmt_num(censoring['open_journeys'])} journeys were still open at the end of the month; they count "
            "as not converted so far, which understates channels whose customers convert late."
        )
    start, end = _month(month)
    spend = None
    if ws.spend is not None:
        frame = ws.spend.frame
        dates = pd.to_datetime(frame["date"])
        dates = dates.dt.tz_localize("UTC") if dates.dt.tz is None else dates
        spend = frame.loc[(dates >= start) & (dates < end)]
        spend = spend if len(spend) else None
    models = ["first_touch", "last_touch", "linear", "position", "markov", "shapley"]
    attr = attribute(
        paths, models, n_boot=n_boot, seed=seed, spend=spend, currency=project.currency_sign
    )
    say(md(attr.summary()))
    attr.plot()
    if attr.economics is not None:
        econ = attr.economics
        say(
            "Spend, cost per credited conversion (CPA) and return on spend (ROAS) under the Markov model: "
            + "; ".join(
                f"{md(project.label(r.channel))}: spend {money(r.cost)}, CPA {money(r.cpa)}, ROAS {fmt_num(r.roas)}"
                for r in econ.loc[econ["model"] == "markov"].itertuples()
                if pd.notna(r.cost)
            )
            + "."
        )
    elif ws.spend is None:
        say("*No spend table: cost per conversion and return on spend are not shown.*")
    return attr
