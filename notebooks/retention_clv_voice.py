# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Retention, customer lifetime value and the voice of the customer
#
# Do customers come back after their first conversion, how much are they worth over the
# next year, which acquisition channels bring the most valuable customers for what they
# cost, and how do customers *feel* at each stage of the journey, in their own words
# (survey comments in every language of the data)? The last section estimates who is
# likely to convert next month. Conversions, stages and labels come from the project file.

# %% tags=["parameters"]
month: str = "2026-10"  # YYYY-MM: the report month; everything is measured as of its last day
config: str = ""  # the project file (journeylab.yaml); empty means the bundled sample's
data: str = ""  # event data overriding the project file's events path; empty keeps it
seed: int = 0  # seed of a generated sample (0: as in the project file)
n_users: int = 0  # users of a generated sample (0: as in the project file)
inactivity_days: int = 90  # a customer without a purchase for this many days counts as churned
clv_months: int = 12  # months of future value in the predicted customer lifetime value
discount_rate: float = 0.01  # monthly discount rate of future value
clv_time_unit: str = "day"  # time unit of the purchase models: "day" or "week"
holdout_months: int = 3  # last months held out to check the purchase models; 0 skips the check
voice_months: int = 3  # months of survey answers, up to the report month, in the voice section
propensity: bool = True  # fit the next-month conversion propensity model
min_customers: int = 30  # channels with fewer customers are flagged as anecdotal

# %%
# Validate and derive: nothing below reads a raw parameter.
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

import journeylab as jl
from journeylab.clv import BetaGeo, GammaGamma, clv_by_channel, customer_lifetime_value, rfm_summary
from journeylab.clv.holdout import calibration_and_holdout
from journeylab.core.model_checks import NotComputableResult, computable_or_reason
from journeylab.core.results import fmt_pct
from journeylab.core.safe_text import md
from journeylab.core.viz import set_theme
from journeylab.customers.cohorts import cohort_retention
from journeylab.customers.rates import repeat_purchase_rate
from journeylab.customers.retention import churn, lifecycle_states
from journeylab.reports import runner as reports
from journeylab.reports.prose import Money
from journeylab.reports.prose import say as show_markdown
from journeylab.reports.workspace import open_report_workspace
from journeylab.voice import csat, emotion_curve, nps, sentiment, themes

month = reports.resolve_month(month)
if seed < 0:
    raise jl.ParameterError(f"seed == {seed}, must be >= 0.")
if n_users != 0 and n_users < 100:
    raise jl.ParameterError(f"n_users == {n_users}, must be 0 (as in the project file) or >= 100.")
if inactivity_days < 1:
    raise jl.ParameterError(f"inactivity_days == {inactivity_days}, must be >= 1.")
if not 1 <= clv_months <= 120:
    raise jl.ParameterError(f"clv_months == {clv_months}, must be between 1 and 120.")
if not 0 <= discount_rate < 1:
    raise jl.ParameterError(f"discount_rate == {discount_rate}, must be >= 0 and < 1.")
if voice_months < 1:
    raise jl.ParameterError(f"voice_months == {voice_months}, must be >= 1.")
if min_customers < 1:
    raise jl.ParameterError(f"min_customers == {min_customers}, must be >= 1.")
time_units = {"day": "D", "week": "W"}
if clv_time_unit not in time_units:
    raise jl.ParameterError(f"clv_time_unit == {clv_time_unit!r}, must be 'day' or 'week'.")
clv_freq = time_units[clv_time_unit]
if not 0 <= holdout_months <= 24:
    raise jl.ParameterError(f"holdout_months == {holdout_months}, must be between 0 and 24.")
period = pd.Period(month, freq="M")
month_end = (period + 1).start_time.tz_localize("UTC")
voice_start = (period - (voice_months - 1)).start_time.tz_localize("UTC")
as_of = month_end.strftime("%Y-%m-%d")


def say(text: str) -> None:
    """Show plain text (a result's summary) as Markdown: one paragraph per line, each escaped."""
    show_markdown("\n\n".join(md(line) for line in text.splitlines()))


set_theme()
plt.rcParams["figure.figsize"] = (9, 4.8)

# %%
ws = open_report_workspace(config, data, n_users=n_users, seed=seed)
project = ws.project
money = Money(project.currency_sign)
events = ws.events.frame
if ws.transactions is not None:
    transactions = ws.transactions.frame
else:
    # Without a transactions table, the project's conversion events are the purchases, each
    # worth the project's value per conversion where the event log carries no value.
    transactions = events.loc[events["event"].isin(project.conversion)].copy()
    if "value" not in transactions.columns:
        transactions["value"] = float("nan")
    transactions = transactions[["user_id", "timestamp", "value"]]
    if project.value_per_conversion is not None:
        transactions["value"] = transactions["value"].fillna(project.value_per_conversion)
transactions = transactions[transactions["timestamp"] < month_end]
if transactions.empty:
    raise jl.DataError(
        f"No purchases before the end of {month}.",
        source=ws.source,
        column="timestamp",
        hint="choose a later month, or add a transactions table to the data folder.",
    )
feedback = None
if ws.feedback is not None:
    fb = ws.feedback.frame
    feedback = fb[(fb["timestamp"] >= voice_start) & (fb["timestamp"] < month_end)]
    feedback = feedback if len(feedback) else None
show_markdown(
    f"{md(project.name)}, measured as of **{period.end_time:%d %B %Y}**: {transactions['user_id'].nunique():,} "
    f"customers made {len(transactions):,} purchases worth {money(float(transactions['value'].sum()))} since "
    f"{transactions['timestamp'].min():%B %Y}."
)

# %% [markdown]
# ## Retention
#
# ### Cohorts
#
# Customers grouped by the month of their first purchase (rows); each cell is the share of
# the group that purchased again in the *n*-th month after it. Blank cells are not
# observed yet.

# %%
cohorts = cohort_retention(transactions, end=month_end)
cohorts

# %%
ax = cohorts.plot()
plt.show()

# %% [markdown]
# ### Repeat purchases and churn
#
# The share of customers who bought again within the inactivity window after their first
# purchase, and the share who have not purchased for longer than that (churned by the
# inactivity rule), with 95 % intervals.

# %%
repeat = repeat_purchase_rate(transactions, within=f"{inactivity_days}D", as_of=month_end)
say(repeat.summary())

# %%
churned = churn(transactions, f"{inactivity_days}D", as_of=month_end)
say(churned.summary())

# %% [markdown]
# ### Lifecycle states
#
# Each month, every known customer is *new*, *active*, *reactivated*, *at risk* or
# *lapsed* (rules in the summary).

# %%
lifecycle = lifecycle_states(transactions)
lifecycle

# %%
ax = lifecycle.plot()
plt.show()

# %% [markdown]
# ## Customer lifetime value
#
# ### Purchase and spend models
#
# A BG/NBD model describes how often customers buy and when they quietly stop; a
# Gamma-Gamma model how much they spend per purchase. Together they predict each
# customer's value over the next months, discounted to today. The first line of each
# model says whether its fit can be trusted; numbers that rest on a parameter the data
# cannot pin down are not shown, with the reason.

# %%
rfm = rfm_summary(transactions, observation_period_end=month_end, freq=clv_freq)
purchases_model = BetaGeo().fit(rfm)
spend_model = GammaGamma(currency=project.currency).fit(rfm)
purchases_model

# %%
spend_model

# %%
ax = purchases_model.plot()
plt.show()

# %%
clv = customer_lifetime_value(
    purchases_model, spend_model, rfm, months=clv_months, discount_rate=discount_rate
)
clv_caveat = purchases_model.withheld("total_value") or spend_model.withheld("total_value")
quantiles = clv.quantile([0.25, 0.5, 0.75, 0.9])
if clv_caveat:
    show_markdown(
        f"**Predicted value over the next {clv_months} months: not to be trusted as is.** The average per "
        f"customer and the total expected value of the {len(clv):,} customers are {md(clv_caveat)} "
        "The histogram below only shows how the model ranks customers; the holdout check in the next "
        "section shows how far its predictions are off."
    )
else:
    show_markdown(
        f"Predicted value over the next {clv_months} months (discounted at {fmt_pct(discount_rate)} a month): "
        f"**{money(float(clv.mean()))} per customer on average**, median {money(float(quantiles[0.5]))}; "
        f"half of the customers lie between {money(float(quantiles[0.25]))} and {money(float(quantiles[0.75]))}, "
        f"and the top 10 % are worth more than {money(float(quantiles[0.9]))} each. "
        f"Together the {len(clv):,} customers are expected to be worth {money(float(clv.sum()))}."
    )
fig, ax = plt.subplots(figsize=(9, 4))
upper = float(clv.quantile(0.99))
ax.hist(clv.clip(upper=upper), bins=40, color="#0173b2")
if clv_caveat:
    # the caveat sits on the figure itself, so it travels with any copy of it
    ax.text(
        0.98,
        0.95,
        "NOT TO BE TRUSTED AS IS:\n"
        + "\n".join(textwrap.wrap(clv_caveat.removeprefix("not shown: "), 60)),
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize=8,
        color="#b00020",
        bbox={"facecolor": "white", "edgecolor": "#b00020", "alpha": 0.9},
    )
    ax.set_title("Predicted customer lifetime value (model at its boundary: ranking only)")
else:
    ax.axvline(float(clv.mean()), color="0.2", ls="--", lw=1)
    ax.annotate(
        f"mean {money.plain(float(clv.mean()))}",
        (float(clv.mean()), ax.get_ylim()[1] * 0.9),
        xytext=(4, 0),
        textcoords="offset points",
    )
    ax.set_title("Predicted customer lifetime value")
ax.set_xlabel(
    f"predicted value over the next {clv_months} months per customer (top 1% shown at the cap)"
)
ax.set_ylabel("customers")
ax.xaxis.set_major_formatter(lambda x, _pos: money.plain(x).split(".")[0])
plt.show()
if clv_caveat:
    say(f"Caveat for the figure above: {clv_caveat.removeprefix('not shown: ')}")

# %% [markdown]
# ### Does the purchase model predict months it has not seen?
#
# The standard check of these models: refit them on the history up to the last
# `holdout_months` months, predict each customer's purchases in those months, and compare
# with what happened, grouped by how often customers bought before (Fader, Hardie & Lee
# 2005). Three models are compared: BG/NBD; MBG/NBD, which also lets customers leave right
# after their first purchase (the usual remedy when the BG/NBD finds no dropout); and
# Pareto/NBD, where customers can leave at any time. The table ranks them by the mean
# absolute error per group; the figure shows the groups.

# %%
holdout_check = None
if holdout_months > 0:
    calibration_end = (period - holdout_months).end_time.normalize()
    if transactions["timestamp"].min() > calibration_end.tz_localize("UTC"):
        say(
            f"Too little history for a holdout check: the data start after {calibration_end:%Y-%m-%d}."
        )
    else:
        holdout_check = computable_or_reason(
            calibration_and_holdout,
            transactions,
            calibration_period_end=calibration_end,
            observation_period_end=period.end_time,
            freq=clv_freq,
            title="Calibration/holdout check of the purchase models",
        )
        display(holdout_check)
        if not isinstance(holdout_check, NotComputableResult):
            ax = holdout_check.plot()
            plt.show()
else:
    say("Holdout check switched off (`holdout_months` = 0).")

# %% [markdown]
# ### Value by acquisition channel, and CLV:CAC
#
# Predicted value per customer by the channel that first brought them, and, for paid
# channels, the ratio of value (to date plus predicted) to the acquisition cost per new
# customer (CLV:CAC). A ratio below about 3 usually means the channel does not pay for
# itself once margins and overheads are counted.

# %%
spend = ws.spend.frame[ws.spend.frame["date"] < period.end_time] if ws.spend is not None else None
if ws.users is not None and "acquisition_channel" in ws.users.columns:
    channel_source = ws.users
elif "channel" in transactions.columns:
    channel_source = "channel"
else:
    channel_source = None
if channel_source is not None:
    by_channel = clv_by_channel(
        transactions,
        channel_source,
        model=purchases_model,
        spend_model=spend_model,
        spend=spend,
        horizon=clv_months,
        discount_rate=discount_rate,
        freq=clv_freq,
        observation_period_end=month_end,
        currency=project.currency,
    )
    display(by_channel)
    ax = by_channel.plot()
    plt.show()
else:
    by_channel = None
    display(
        Markdown(
            "No acquisition channel per customer in the data: value by channel cannot be shown."
        )
    )

# %% [markdown]
# ## Voice of the customer
#
# Survey answers from the report month and the months before it. **NPS** (0–10, "would you recommend
# us?") is the share of promoters (9–10) minus the share of detractors (0–6), from −100
# to +100; **CSAT** (1–5) is the share of satisfied answers (4–5). Intervals are 95 %.

# %%
if feedback is not None:
    languages = {"en": "English", "ko": "Korean", "nl": "Dutch", "de": "German"}
    counts = (
        feedback["language"].value_counts()
        if "language" in feedback.columns
        else pd.Series(dtype=int)
    )
    show_markdown(
        f"{len(feedback):,} survey answers between {voice_start:%B %Y} and {period.strftime('%B %Y')}"
        + (
            ": " + ", ".join(f"{v:,} in {md(languages.get(k, k))}" for k, v in counts.items())
            if len(counts)
            else ""
        )
        + "."
    )
    nps_by_stage = nps(feedback, stage_map=project.stage_map)
    display(nps_by_stage)
else:
    nps_by_stage = None
    display(
        Markdown(
            "No survey answers (feedback table) for the period: the voice-of-the-customer section is empty."
        )
    )

# %%
if feedback is not None:
    ax = nps_by_stage.plot()
    plt.show()
    csat_by_stage = csat(feedback, stage_map=project.stage_map)
    display(csat_by_stage)
    ax = csat_by_stage.plot()
    plt.show()

# %% [markdown]
# ### Sentiment and themes, by language
#
# Each comment is scored from −1 (very negative) to +1 (very positive): English with the
# VADER lexicon, Korean with journeylab's own lexicon. Themes are topics found with a
# bilingual dictionary, so comments about the same thing in either language count
# together.

# %%
if feedback is not None:
    comments = feedback[feedback["text"].notna() & (feedback["text"].astype(str).str.strip() != "")]
    mood = sentiment(comments["text"])
    say(mood.summary())
    ax = mood.plot()
    plt.show()

# %%
if feedback is not None:
    topics_by_language = themes(comments, by="language")
    say(topics_by_language.summary())
    ax = topics_by_language.plot()
    plt.show()

# %%
if feedback is not None:
    topics_by_stage = themes(comments, by="stage", stage_map=project.stage_map)
    say(topics_by_stage.summary())
    ax = topics_by_stage.plot()
    plt.show()

# %% [markdown]
# ### Emotion curve beside the funnel
#
# How customers feel at each stage (comment sentiment and NPS, top) next to how many of
# them reach it (bottom). A stage that feels bad *and* loses many customers is the first
# place to look.

# %%
if feedback is not None:
    journey_events = events[events["timestamp"] < month_end]
    journey_events = journey_events[journey_events["timestamp"] >= voice_start]
    emotions = emotion_curve(feedback, project.stage_map, funnel=journey_events)
    display(emotions)
    ax = emotions.plot()
    plt.show()
else:
    emotions = None

# %% [markdown]
# ## Who is likely to convert next month?
#
# A logistic model of the chance that someone who has been in touch but has not converted
# yet converts within the next 30 days, from their journey so far (touches per channel,
# sessions, the steps taken, recency). It is trained on earlier months and
# tested on the latest one it can check; the summary gives its accuracy (AUC: 0.5 is
# guessing, 1 is perfect) and the strongest drivers. Drivers are associations, not causes.

# %%
propensity_result = None
if propensity:
    from journeylab.customers.propensity import fit_propensity
    from journeylab.customers.snapshots import propensity_features

    # Snapshots on the first of each month whose 30-day label window ends by the data's end.
    data_end = min(month_end, events["timestamp"].max())
    last = data_end - pd.Timedelta(days=30)
    snapshots = [d for d in pd.date_range(events["timestamp"].min().ceil("D"), last, freq="MS")]
    if len(snapshots) >= 2:

        def next_month_propensity():
            """Features at the last five snapshots, then the model on a time holdout."""
            features = propensity_features(
                events[events["timestamp"] < month_end],
                as_of=[str(d.date()) for d in snapshots[-5:]],
                horizon_days=30,
                users=ws.users,
                observed_until=data_end,
                # the conversion, segments and banded columns of the project file; touches and
                # counted steps are read off the data (propensity_features documents the rule)
                project=project,
            )
            return fit_propensity(features, "converted", holdout="time", seed=seed)

        # data that cannot support the model (no one at risk, one outcome only) give the
        # reason here instead of failing the report; errors in the data still raise
        propensity_result = computable_or_reason(next_month_propensity, title="Propensity model")
        display(propensity_result)
        if not isinstance(propensity_result, NotComputableResult):
            # A Wilson lower bound of a decile with no events can come out a hair above 0
            # (1e-18), which matplotlib refuses as a negative error bar: clip it to the observed rate.
            cal = propensity_result.calibration
            cal["observed_ci_low"] = cal[["observed_ci_low", "observed"]].min(axis=1)
            ax = propensity_result.plot()
            plt.show()
            ax = propensity_result.plot_drivers()
            plt.show()
    else:
        display(
            Markdown("Too little history for a propensity model (it needs two monthly snapshots).")
        )
else:
    display(Markdown("Propensity switched off (`propensity` = false)."))

# %%
churn_frame = churned.to_frame()
metrics = {
    "month": month,
    "customers": int(transactions["user_id"].nunique()),
    "purchases": int(len(transactions)),
    "repeat_rate": float(repeat.to_frame()["repeat_rate"].iloc[0]),
    "churn_rate": float(churn_frame["churned_rate"].iloc[0]),
    # withheld (None) when the fit cannot support them; the reason is in clv_withheld
    "clv_mean": None if clv_caveat else float(clv.mean()),
    "clv_median": None if clv_caveat else float(clv.median()),
    "clv_withheld": clv_caveat,
    "clv_time_unit": clv_time_unit,
    "bgnbd": {k: float(v) for k, v in purchases_model.params_.items()},
    "bgnbd_status": purchases_model.status,
    "bgnbd_warnings": purchases_model.warnings,
    "gamma_gamma": {k: float(v) for k, v in spend_model.params_.items()},
    "gamma_gamma_status": spend_model.status,
}
if holdout_check is not None and not isinstance(holdout_check, NotComputableResult):
    metrics["holdout"] = {
        "calibration_end": f"{calibration_end:%Y-%m-%d}",
        "best": holdout_check.best,
        "tied": holdout_check.tied,
        "models": {
            name: {k: (v if isinstance(v, str) else float(v)) for k, v in row.items()}
            for name, row in holdout_check.errors.to_dict(orient="index").items()
        },
    }
if by_channel is not None:
    ch = by_channel.to_frame().set_index("acquisition_channel")
    metrics["clv_by_channel"] = {c: float(v) for c, v in ch["predicted_clv"].items()}
    metrics["clv_to_cac"] = {c: float(v) for c, v in ch["clv_to_cac"].dropna().items()}
if nps_by_stage is not None:
    metrics["nps_by_stage"] = {
        str(k): float(v) for k, v in nps_by_stage.to_frame().set_index("stage")["nps"].items()
    }
    metrics["csat_by_stage"] = {
        str(k): float(v)
        for k, v in csat_by_stage.to_frame().set_index("stage")["satisfied_share"].items()
    }
    metrics["survey_answers"] = int(len(feedback))
    metrics["mean_sentiment"] = float(np.mean(mood.scores))
if emotions is not None:
    metrics["worst_stage"] = emotions.worst_stage
    metrics["leakiest_stage"] = emotions.leakiest_stage
if propensity_result is not None:
    metrics["propensity_status"] = propensity_result.status
    if isinstance(propensity_result, NotComputableResult):
        metrics["propensity_reason"] = propensity_result.reason
    else:
        metrics["propensity_auc"] = float(propensity_result.auc)
reports.finish(metrics, row_counts=ws.row_counts(), seed=ws.seed)
