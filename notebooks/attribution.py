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
# # Marketing attribution
#
# Which marketing channels earned the month's conversions? Attribution shares each
# conversion among the channels the customer passed through before converting. There is no
# single right way to share it, so this report compares six models side by side, shows how
# sure each one is (bootstrap intervals), which sequences of channels matter, and what each
# channel cost per conversion and returned per unit of spend. The conversion, the stages
# and the labels come from the project file. Attribution credit describes the paths
# customers took; it is not proof that a channel *caused* a conversion.

# %% tags=["parameters"]
month: str = "2026-10"  # YYYY-MM: journeys that ended in this calendar month are credited
config: str = ""  # the project file (journeylab.yaml); empty means the bundled sample's
data: str = ""  # event data overriding the project file's events path; empty keeps it
seed: int = 0  # seed of a generated sample and of the bootstrap (0: as in the project file)
n_users: int = 0  # users of a generated sample (0: as in the project file)
n_boot: int = 200  # bootstrap replicates for the intervals (0 switches them off)
markov_order: int = 1  # how many past touches the Markov chain remembers (1 to 4)
lookback_days: int = 0  # ignore touches older than this many days at a journey's end (0: project's)
include_censored: bool = False  # True: journeys open at the month's end count as not converted
credit_value: bool = False  # credit conversion value instead of the number of conversions
top_n_paths: int = 15  # rows of the path table shown

# %%
# Validate and derive: nothing below reads a raw parameter.

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

import journeylab as jl
from journeylab.attribution import attribute
from journeylab.attribution.economics import ASSUMPTION
from journeylab.core.results import fmt_num, fmt_pct
from journeylab.core.safe_text import md
from journeylab.core.timeparse import parse_duration
from journeylab.core.viz import PALETTE, set_theme
from journeylab.journeys.build import build_journeys, path_table
from journeylab.reports import runner as reports
from journeylab.reports.prose import Money
from journeylab.reports.workspace import open_report_workspace

month = reports.resolve_month(month)
if seed < 0:
    raise jl.ParameterError(f"seed == {seed}, must be >= 0.")
if n_users != 0 and n_users < 100:
    raise jl.ParameterError(f"n_users == {n_users}, must be 0 (as in the project file) or >= 100.")
if n_boot < 0:
    raise jl.ParameterError(f"n_boot == {n_boot}, must be >= 0.")
if not 1 <= markov_order <= 4:
    raise jl.ParameterError(f"markov_order == {markov_order}, must be between 1 and 4.")
if lookback_days < 0:
    raise jl.ParameterError(f"lookback_days == {lookback_days}, must be >= 0.")
if top_n_paths < 1:
    raise jl.ParameterError(f"top_n_paths == {top_n_paths}, must be >= 1.")
period = pd.Period(month, freq="M")
MODELS = ["first_touch", "last_touch", "linear", "position", "markov", "shapley"]
MODEL_NAMES = {
    "first_touch": "first touch",
    "last_touch": "last touch",
    "linear": "linear",
    "position": "position-based",
    "markov": "Markov",
    "shapley": "Shapley",
}
what = "conversion value" if credit_value else "conversions"
set_theme()
plt.rcParams["figure.figsize"] = (9, 4.8)

# %%
ws = open_report_workspace(config, data, n_users=n_users, seed=seed)
project = ws.project
seed = seed or ws.seed or 2026
money = Money(project.currency_sign)
lookback = f"{lookback_days}D" if lookback_days else project.lookback
lookback_days = int(parse_duration(lookback) / pd.Timedelta(days=1))
events = ws.events.frame
ws.month_events(month)  # a clear error when the data holds nothing in the month
if project.value_per_conversion is not None:
    # conversions without a value are worth the project's value per conversion
    events = events.copy()
    if "value" not in events.columns:
        events["value"] = float("nan")
    converted = events["event"].isin(project.conversion) & events["value"].isna()
    events.loc[converted, "value"] = project.value_per_conversion

# Journeys that end in the month, with their touches up to `lookback_days` earlier. The path
# table is built by the same function, with the same defaults, as `path_table(events,
# month=..., lookback=...)`; its attrs say how many journeys were still open and whether
# they were left out.
journeys = build_journeys(
    events,
    conversion=list(project.conversion),
    lookback=lookback,
    month=month,
    stage_map=project.stage_map,
)
paths = path_table(journeys, include_censored=include_censored)
censoring = paths.attrs["censoring"]
if paths["conversions"].sum() == 0:
    raise jl.NotComputableError(
        f"No conversions in journeys that ended in {month}: there is nothing to credit."
    )

spend = None
if ws.spend is not None:
    spend = ws.spend.frame
    spend = spend[(spend["date"] >= period.start_time) & (spend["date"] < (period + 1).start_time)]
    spend = spend if len(spend) else None

# %% [markdown]
# ## Journeys and paths this month
#
# A *path* is the sequence of marketing channels one journey passed through before it
# converted (or before it stopped), with repeated channels merged. The table lists the most
# common paths.

# %%
n_journeys = int(paths["conversions"].sum() + paths["non_conversions"].sum())
n_conversions = int(paths["conversions"].sum())
converted_value = float(paths["value"].sum())
open_journeys = censoring["open_journeys"]
conversion_names = " or ".join(md(project.label(c)) for c in project.conversion)
counted = "journeys" if include_censored else "closed journeys"
display(
    Markdown(
        f"**{n_journeys:,} {counted}** ended in {period.strftime('%B %Y')} over **{len(paths):,} distinct paths**; "
        f"**{n_conversions:,}** ended in a conversion ({conversion_names}) worth {money(converted_value)} in total "
        f"({fmt_pct(n_conversions / n_journeys)} of them). {md(censoring['message'])} Touches more than "
        f"{lookback_days} days before a journey's end are left out."
    )
)
shown = paths.head(top_n_paths)
journeys_per_path = shown["conversions"] + shown["non_conversions"]
display(
    pd.DataFrame(
        {
            "path": [" > ".join(project.label(c) for c in p) for p in shown["path"]],
            "journeys": journeys_per_path.map("{:,}".format),
            "conversions": shown["conversions"].map("{:,}".format),
            "conversion rate": [
                fmt_pct(c / n) for c, n in zip(shown["conversions"], journeys_per_path, strict=True)
            ],
            "conversion value": shown["value"].map(money.plain),
        }
    ).style.hide(axis="index")
)

# %% [markdown]
# ## Model comparison
#
# Six ways of sharing the credit:
#
# - **first touch** and **last touch** give each conversion to the first or the last channel;
# - **linear** splits it equally over the channels of the path, **position-based** gives
#   40 % to the first, 40 % to the last and shares 20 % among the middle ones;
# - **Markov** credits each channel with the conversions lost if it were removed from the
#   customers' paths (removal effect), **Shapley** shares conversions fairly among the channel
#   combinations that produce them.
#
# Intervals are 95 % bootstrap intervals (journeys resampled). Where the summary says the
# order of two channels is *not distinguishable*, do not rank one above the other. Markov
# and Shapley learn from the journeys that did *not* convert as well; when too few of them are
# left (journeys still open at the month's end are left out unless `include_censored`),
# they are marked *not identifiable* and give no credit.

# %%
attr = attribute(
    paths,
    MODELS,
    order=markov_order,
    value=credit_value,
    n_boot=n_boot,
    seed=seed,
    spend=spend,
    currency=project.currency_sign,
)
attr

# %%
ax = attr.plot()
plt.show()

# %% [markdown]
# ### How sure is the Markov ranking?
#
# The probability that each channel holds each rank under the Markov model, across the
# bootstrap replicates.

# %%
if "markov" not in attr.identified_models:
    display(Markdown(f"Markov is {attr.status['markov']}: no ranking."))
elif n_boot > 0:
    ranks = attr.rank_probabilities("markov").loc[
        attr.to_frame()["markov"].sort_values(ascending=False).index
    ]
    ranks.columns = [f"rank {c}" for c in ranks.columns]
    ranks.index = [project.label(c) for c in ranks.index]
    ranks.index.name = "channel"
    display(ranks.map(lambda p: fmt_pct(p, 0) if p >= 0.01 else ""))
else:
    display(Markdown("Bootstrap switched off (`n_boot` = 0): no ranking probabilities."))

# %% [markdown]
# ## Sequence credit: which transitions matter
#
# Under the Markov model, the share of conversions lost if customers could no longer move
# from one channel straight to the next. A high value means the *sequence*, not only the
# channel, carries conversions.

# %%
if attr.transitions is not None and len(attr.transitions):
    col = "value_removal_effect" if credit_value else "removal_effect"
    seq = attr.transitions.sort_values(col, ascending=False)
    display(
        pd.DataFrame(
            {
                "transition": seq["transition"],
                f"share of {what} lost without it": seq[col].map(fmt_pct),
            }
        ).style.hide(axis="index")
    )
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(seq) + 1.2))
    ax.barh(seq["transition"][::-1], seq[col][::-1] * 100, color=PALETTE[0])
    ax.set_xlabel(f"share of {what} lost if the transition is removed (%)")
    ax.set_title("Sequence credit (Markov removal effect of each transition)")
    plt.show()
elif "markov" not in attr.identified_models:
    display(Markdown(f"Markov is {attr.status['markov']}: no sequence credit."))
else:
    display(Markdown("No transitions to credit: every converting path has a single channel."))

# %% [markdown]
# ## Cost per conversion and return on spend
#
# The month's spend per paid channel against the credit each model gives it: **CPA** is
# spend per credited conversion, **ROAS** credited conversion value per unit of spend.
# Channels without spend are not listed. In the chart, the dashed line marks a ROAS of 1:
# below it a channel's credited conversions are worth less than they cost.

# %%
if attr.economics is not None:
    econ = attr.economics
    shown = attr.identified_models  # a model that is not identifiable has no credit to price
    cost = econ.drop_duplicates("channel").set_index("channel")["cost"]
    cpa = econ.pivot(index="channel", columns="model", values="cpa")[shown]
    roas = econ.pivot(index="channel", columns="model", values="roas")[shown]
    table = pd.DataFrame({"spend": cost.map(money.plain)})
    for m in shown:
        table[f"CPA ({MODEL_NAMES[m]})"] = cpa[m].map(
            lambda v: money.plain(v) if np.isfinite(v) else "no conversions"
        )
    for m in ("last_touch", "markov"):
        if m in shown:
            table[f"ROAS ({MODEL_NAMES[m]})"] = roas[m].map(fmt_num)
    table.index = [project.label(c) for c in table.index]
    table.index.name = "channel"
    display(table)

    fig, ax = plt.subplots(figsize=(9, 4.8))
    order = roas["markov" if "markov" in shown else shown[0]].sort_values(ascending=False).index
    width = 0.8 / len(shown)
    x = np.arange(len(order))
    for k, m in enumerate(shown):
        ax.bar(
            x + (k - (len(shown) - 1) / 2) * width,
            roas.loc[order, m],
            width * 0.95,
            color=PALETTE[k % len(PALETTE)],
            label=MODEL_NAMES[m],
        )
    ax.axhline(1, color="0.3", lw=1, ls="--")
    ax.set_xticks(x, [project.label(c) for c in order])
    ax.set_ylabel("credited conversion value per unit of spend")
    ax.set_title(f"Return on ad spend (ROAS) by channel and model, {month}")
    ax.legend(ncols=3, fontsize=9, frameon=False)
    plt.show()
else:
    display(
        Markdown(
            "No spend data for the month: cost per conversion and return on spend cannot be shown."
        )
    )

# %% [markdown]
# ## Budget reallocation
#
# At the margin, where would the next unit of spend earn most, and where least? One row
# per model. Read it with the caveats below: where the models disagree, the data do not
# settle the question.

# %%
realloc = attr.reallocation()
if realloc is not None and len(realloc):
    unit = "value per unit of spend" if credit_value else "conversions per 1,000 of spend"
    display(
        pd.DataFrame(
            {
                "model": realloc["model"].map(MODEL_NAMES),
                "grow": realloc["grow"].map(project.label),
                f"grow: {unit}": realloc["grow_return"].map(fmt_num),
                "trim": realloc["trim"].map(project.label),
                f"trim: {unit}": realloc["trim_return"].map(fmt_num),
            }
        ).style.hide(axis="index")
    )
    votes = realloc["grow"].value_counts()
    if len(votes) == 1:
        verdict = (
            f"**All {len(realloc)} models point the same way**: the next unit of spend earns most in "
            f"{md(project.label(votes.index[0]))}."
        )
    else:
        others = realloc.loc[realloc["grow"] != votes.index[0]]
        verdict = (
            f"**{votes.iloc[0]} of {len(realloc)} models** point to {md(project.label(votes.index[0]))} as the channel "
            "to grow; "
            + "; ".join(
                f"{MODEL_NAMES[m]} points to {md(project.label(g))}"
                for m, g in zip(others["model"], others["grow"], strict=True)
            )
            + ". Where the models disagree, the data alone do not justify a move."
        )
    display(
        Markdown(
            verdict
            + "\n\n**Caveats.** "
            + ASSUMPTION
            + " Spend here is the month's spend; credit comes from journeys that ended in the month, so "
            "touches late in the previous month are credited against this month's budget."
        )
    )
else:
    display(Markdown("No reallocation view: it needs spend on at least two channels."))

# %%
frame = attr.to_frame()
identified = attr.identified_models
metrics = {
    "month": month,
    "journeys": n_journeys,
    "conversions": n_conversions,
    "distinct_paths": int(len(paths)),
    "credited": "value" if credit_value else "conversions",
    "open_journeys": int(censoring["open_journeys"]),
    "open_journeys_left_out": int(censoring["left_out"]),
    "model_status": dict(attr.status),
    "top_channel": {m: str(frame[m].idxmax()) for m in identified},
    "n_boot": n_boot,
    "lookback_days": lookback_days,
}
if "markov" in identified:
    metrics["markov_credit"] = {ch: float(v) for ch, v in frame["markov"].items()}
if n_boot > 0 and "markov" in identified:
    metrics["markov_credit_interval"] = {
        ch: [float(frame.at[ch, "markov_ci_low"]), float(frame.at[ch, "markov_ci_high"])]
        for ch in frame.index
    }
if attr.economics is not None:
    metrics["spend"] = float(attr.economics.drop_duplicates("channel")["cost"].sum())
if attr.economics is not None and "markov" in identified:
    markov_econ = attr.economics[attr.economics["model"] == "markov"].set_index("channel")
    metrics["roas_markov"] = {ch: float(v) for ch, v in markov_econ["roas"].items()}
    metrics["cpa_markov"] = {
        ch: (float(v) if np.isfinite(v) else None) for ch, v in markov_econ["cpa"].items()
    }
if realloc is not None and len(realloc):
    metrics["reallocation"] = realloc[["model", "grow", "trim"]].to_dict("records")
reports.finish(metrics, row_counts=ws.row_counts(), seed=ws.seed)
