"""The customer sections of the monthly report: experiments, retention and value, the voice of the customer.

Like every section (see :mod:`journeylab.reports.sections`), each raises
:class:`~journeylab.core.errors.NotComputableError` with the reason when its data is absent.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from journeylab.core.errors import NotComputableError
from journeylab.core.results import fmt_num
from journeylab.core.safe_text import md
from journeylab.reports.prose import Money
from journeylab.reports.sections import Say, _ledger_with, _month

__all__ = ["experiments_section", "retention_section", "voice_section"]


def experiments_section(ws: Any, month: str, *, say: Say, found: Any = None, window: str = "14D"):
    """Read out every experiment with users assigned by the month's end, with its trust checks.

    An experiment that the project file links to a finding (``experiments: {name:
    {addresses: <finding id>}}``) is shown beside that finding's rate before,
    during and after it ran, from the ledger of earlier reports.
    """
    from journeylab.experiments import analyze, user_metrics

    if ws.assignments is None:
        raise NotComputableError("no assignments table: no experiment to read out.")
    project = ws.project
    assignments = ws.assignments.frame
    _, end = _month(month)
    running = (
        assignments.loc[assignments["assigned_at"] < end]
        if "assigned_at" in assignments
        else assignments
    )
    if running.empty:
        raise NotComputableError(f"no experiment had users assigned by the end of {month}.")
    if "experiment" in running.columns:
        experiments = list(running.groupby("experiment"))
    else:
        # one experiment per assignments table: its name comes from the project file when it names one
        only = list(project.experiments)[0] if len(project.experiments) == 1 else "experiment"
        experiments = [(only, running)]
    for name, group in experiments:
        variants = sorted(group["variant"].dropna().astype(str).unique())
        control = "control" if "control" in variants else variants[0]
        users = user_metrics(
            group, ws.events.frame, {"converted": list(project.conversion)[0]}, window=window
        )
        readout = analyze(users, "variant", control, ["converted"])
        say(
            f"**{md(project.label(name))}** ({', '.join(md(v) for v in variants)}; conversion within "
            f"{md(window)} of assignment):\n\n" + md(readout.summary())
        )
        readout.plot()
        plt.show()
        target = project.experiments.get(str(name), {}).get("addresses")
        if target and found is not None:
            _fix_timeline(
                ws,
                month,
                found,
                str(name),
                target=str(target),
                readout=readout,
                group=group,
                say=say,
            )


def _fix_timeline(
    ws: Any, month: str, found: Any, name: str, *, target: str, readout: Any, group, say: Say
) -> None:
    from journeylab.actions.ledger import fix_timeline

    project = ws.project
    ledger = _ledger_with(found, project, month)
    if ledger is None or target not in set(ledger["id"].dropna()):
        say(
            f"*{md(project.label(name))} addresses the finding {md(target)}, which no report of this folder "
            "has found yet: no before and after to show.*"
        )
        return
    timeline = fix_timeline(
        ledger,
        target,
        readout,
        assignments=group,
        experiment=name,
        project=project.name,
        currency=project.currency_sign,
    )
    say(md(timeline.summary()))
    timeline.plot()
    plt.show()


def _purchases(ws: Any, end: pd.Timestamp) -> pd.DataFrame:
    if ws.transactions is not None:
        tx = ws.transactions.frame
    else:
        ev = ws.events.frame
        tx = ev.loc[ev["event"].isin(ws.project.conversion), ["user_id", "timestamp", "value"]]
    return tx.loc[tx["timestamp"] < end]


def retention_section(ws: Any, month: str, *, money: Money, say: Say):
    """Show cohorts, repeat rate, churn and CLV as of the month's end, with the models' caveats."""
    from journeylab.clv import BetaGeo, GammaGamma, customer_lifetime_value, rfm_summary
    from journeylab.customers import churn, cohort_retention, repeat_purchase_rate

    _, end = _month(month)
    tx = _purchases(ws, end)
    if tx.empty:
        raise NotComputableError(f"no purchases before the end of {month}: no retention to show.")
    cohorts = cohort_retention(tx, end=end)
    say(md(cohorts.summary()))
    cohorts.plot()
    plt.show()
    try:
        repeat = repeat_purchase_rate(tx, within="90D", as_of=end)
    except NotComputableError as exc:  # e.g. a purchase history shorter than 90 days
        say(f"*Repeat-purchase rate not shown: {md(str(exc).splitlines()[0])}*")
    else:
        say(md(repeat.summary()))
    say(md(churn(tx, "90D", as_of=end).summary()))
    rfm = rfm_summary(tx, observation_period_end=end)
    if int((rfm["frequency"] > 0).sum()) < 20:
        raise NotComputableError("fewer than 20 repeat customers: the CLV models cannot be fitted.")
    import warnings

    from journeylab.core.errors import ModelWarning

    with warnings.catch_warnings():  # the status is said below, in the report, not as a log line
        warnings.simplefilter("ignore", ModelWarning)
        purchases_model = BetaGeo().fit(rfm)
        spend_model = GammaGamma().fit(rfm)
    say(md(purchases_model.summary().splitlines()[0]))
    caveat = purchases_model.withheld("total_value") or spend_model.withheld("total_value")
    if caveat:
        # a total that rests on a parameter the data cannot pin down is not shown
        say(f"*Customer lifetime value {md(caveat)}*")
        return
    clv = customer_lifetime_value(purchases_model, spend_model, rfm, months=12, discount_rate=0.01)
    say(
        f"Predicted value over the next 12 months: {money(float(clv.mean()))} per customer on average, "
        f"median {money(float(clv.median()))} ({fmt_num(len(clv))} customers; BG/NBD status "
        f"{md(purchases_model.status)}, Gamma-Gamma status {md(spend_model.status)})."
    )


def voice_section(ws: Any, month: str, *, say: Say, months: int = 3):
    """Show NPS and CSAT per stage, sentiment and themes of comments, the emotion curve beside the funnel."""
    from journeylab.voice import csat, emotion_curve, nps, sentiment, themes

    if ws.feedback is None:
        raise NotComputableError("no feedback table: no survey answers to show.")
    start, end = _month(month)
    first = (pd.Period(month, freq="M") - (months - 1)).start_time.tz_localize("UTC")
    fb = ws.feedback.frame
    fb = fb.loc[(fb["timestamp"] >= first) & (fb["timestamp"] < end)]
    if fb.empty:
        raise NotComputableError(f"no survey answers between {first:%B %Y} and {month}.")
    stage_map = ws.project.stage_map
    say(f"{fmt_num(len(fb))} survey answers over the {months} months to {md(month)}.")
    scores = nps(fb, stage_map=stage_map)
    say(md(scores.summary()))
    scores.plot()
    plt.show()
    say(md(csat(fb, stage_map=stage_map).summary()))
    if "text" in fb.columns:
        comments = fb.loc[fb["text"].notna() & (fb["text"].astype(str).str.strip() != "")]
        if len(comments):
            say(md(sentiment(comments["text"]).summary()))
            topics = themes(comments, by="language")
            say(md(topics.summary()))
            topics.plot()
            plt.show()
    events = ws.events.frame
    window = events.loc[(events["timestamp"] >= first) & (events["timestamp"] < end)]
    curve = emotion_curve(fb, stage_map, funnel=window)
    say(md(curve.summary()))
    curve.plot()
