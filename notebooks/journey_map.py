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
# # Customer journey map
#
# How people move from first hearing of the business to converting and coming back: what
# each stage of the journey achieves, where the funnel loses people and what they do
# instead, the paths journeys take, the kinds of customers behind them, how the journeys of
# two groups of a segment differ, and which problems cost the most. Stages, conversion,
# funnel, segments and labels come from the project file.

# %% tags=["parameters"]
month: str = "2026-10"  # YYYY-MM: the calendar month analysed
config: str = ""  # the project file (journeylab.yaml); empty means the bundled sample's
data: str = ""  # event data overriding the project file's events path; empty keeps it
seed: int = 0  # seed of a generated sample and of the persona clustering (0: project's)
n_users: int = 0  # users of a generated sample (0: as in the project file)
lookback_days: int = 0  # ignore touches older than this many days at a journey's end (0: project's)
top_n_paths: int = 10  # how many of the most common paths to list
personas_k: int = 0  # number of personas; 0 picks it from the data (silhouette)
fdr_alpha: float = 0.05  # false discovery rate of the differences between two groups of a segment
min_users: int = 0  # segments with fewer users are not reported (0: the project file's, default 30)

# %%
# Validate and derive: nothing below reads a raw parameter.

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

import journeylab as jl
from journeylab.core.results import fmt_pct
from journeylab.core.safe_text import md
from journeylab.core.viz import set_theme
from journeylab.journeys.build import build_journeys
from journeylab.journeys.flows import flow, top_paths, transitions
from journeylab.journeys.funnels import funnel, where_instead
from journeylab.maps.journey_diff import compare_journeys
from journeylab.maps.journey_maps import journey_map
from journeylab.maps.pains import pain_points
from journeylab.maps.personas import journey_personas
from journeylab.reports import runner as reports
from journeylab.reports.prose import Money
from journeylab.reports.workspace import open_report_workspace

month = reports.resolve_month(month)
if seed < 0:
    raise jl.ParameterError(f"seed == {seed}, must be >= 0.")
if n_users != 0 and n_users < 100:
    raise jl.ParameterError(f"n_users == {n_users}, must be 0 (as in the project file) or >= 100.")
if lookback_days < 0:
    raise jl.ParameterError(f"lookback_days == {lookback_days}, must be >= 0.")
if top_n_paths < 1:
    raise jl.ParameterError(f"top_n_paths == {top_n_paths}, must be >= 1.")
if personas_k != 0 and not 2 <= personas_k <= 12:
    raise jl.ParameterError(
        f"personas_k == {personas_k}, must be 0 (chosen from the data) or between 2 and 12."
    )
if not 0 < fdr_alpha < 1:
    raise jl.ParameterError(f"fdr_alpha == {fdr_alpha}, must be > 0 and < 1.")
if min_users < 0:
    raise jl.ParameterError(f"min_users == {min_users}, must be >= 0.")
period = pd.Period(month, freq="M")
set_theme()
plt.rcParams["figure.figsize"] = (9, 4.8)

# %%
ws = open_report_workspace(config, data, n_users=n_users, seed=seed)
project = ws.project
seed = seed or ws.seed or 2026
min_users = min_users or project.min_users
money = Money(project.currency_sign)
stage_map = project.stage_map
conversion = list(project.conversion)
lookback = f"{lookback_days}D" if lookback_days else project.lookback
events = ws.events.frame
if project.value_per_conversion is not None:
    # conversions without a value are worth the project's value per conversion
    events = events.copy()
    if "value" not in events.columns:
        events["value"] = float("nan")
    events.loc[events["event"].isin(conversion) & events["value"].isna(), "value"] = (
        project.value_per_conversion
    )
ws.month_events(month)  # a clear error when the data holds nothing in the month
in_month = events[
    (events["timestamp"] >= period.start_time.tz_localize("UTC"))
    & (events["timestamp"] < (period + 1).start_time.tz_localize("UTC"))
]
# the funnel's steps (the project's funnel, else the conversion alone) and the first
# project segment the events carry, with its two largest groups compared below
funnel_steps = list(project.funnel) or conversion
segment = next((s for s in project.segments if s in in_month.columns), None)
# the two largest groups of the month (a segment's names are categories: those without
# a row this month count zero and are left out)
counts = in_month[segment].value_counts() if segment else pd.Series(dtype=int)
groups = list(counts[counts > 0].index[:2])

# Journeys that end in the month (with their touches up to the lookback earlier).
journeys = build_journeys(
    events, conversion=conversion, lookback=lookback, month=month, stage_map=stage_map
)
month_journeys = journeys.journeys

# %% [markdown]
# ## The month at a glance

# %%
visitors = int(in_month.loc[in_month["event"] == funnel_steps[0], "user_id"].nunique())
conversions = int(in_month["event"].isin(conversion).sum())
revenue = float(in_month.loc[in_month["event"].isin(conversion), "value"].sum())
conversion_names = " or ".join(md(project.label(c)) for c in conversion)
display(
    Markdown(
        f"In **{period.strftime('%B %Y')}** {in_month['user_id'].nunique():,} people touched "
        f"{md(project.name)}, {visitors:,} reached the funnel's first step ({md(project.label(funnel_steps[0]))}) "
        f"and {conversions:,} conversions ({conversion_names}) were made, worth {money(revenue)}. "
        f"{len(month_journeys):,} journeys ended in the month, "
        f"{fmt_pct(month_journeys['converted'].mean() if len(month_journeys) else float('nan'))}"
        " of them in a conversion; "
        f"{int(month_journeys['censored'].sum()):,} were still open at the end of the month (no conversion yet)."
    )
)

# %% [markdown]
# ## Journey map: stages and their KPIs
#
# One row per stage of the journey: how many people reached it this month, the share who
# moved on to the next stage (with a 95 % Wilson interval) and the change against the
# previous month. The heatmap sets each KPI of this month beside last month's; colours are
# scaled within each row (darker = the higher of the two), because KPIs differ in units.

# %%
jmap = journey_map(events, stage_map, month=month, users=ws.users)
jmap

# %%
ax = jmap.plot()
plt.show()

# %% [markdown]
# ## Conversion funnel
#
# People through the project's funnel steps within 7 days, by the first project segment
# the events carry, with 95 % intervals.

# %%
steps_funnel = funnel(
    in_month, funnel_steps, window="7D", segment=segment, stage_map=stage_map
).with_labels(project)  # steps shown by the project's labels
steps_funnel

# %%
ax = steps_funnel.plot()
plt.show()

# %% [markdown]
# ### Where did they go instead?
#
# What people who reached the funnel's last step but one and did not convert did next.

# %%
instead = where_instead(
    in_month,
    funnel_steps,
    after_step=max(len(funnel_steps) - 1, 1),
    window="7D",
    stage_map=stage_map,
)
instead

# %%
ax = instead.plot()
plt.show()

# %% [markdown]
# ## Paths and flows
#
# The marketing channels a journey passed through (repeats merged), for the journeys that
# ended this month: the most common paths and how often each ended in a conversion.
# Journeys still open at the end of the month count as not converted (yet).

# %%
paths = top_paths(journeys, n=top_n_paths, include_censored=True)
paths

# %%
ax = paths.plot()
plt.show()

# %% [markdown]
# ### Transition matrix
#
# For each channel, where journeys went next: another channel, a conversion
# (**CONVERSION**), nothing more for at least the lookback period (**NULL**), or nothing
# more *yet*, because the journey was still open at the end of the month (**END**).

# %%
moves = transitions(journeys, level="channel", include_censored=True)
moves

# %%
ax = moves.plot()
plt.show()

# %% [markdown]
# ### Journey flow (Sankey)
#
# The first four channels of the month's journeys and how they ended (CONVERSION, NULL or
# END as above); band width is the number of journeys, and the smaller channels at each
# step are merged into *other*.

# %%
sankey = flow(journeys, steps=4, top=6, level="channel", include_censored=True)
ax = sankey.plot()
plt.show()

# %% [markdown]
# ## Personas
#
# Groups of people with similar journeys (number of touches and sessions, journey length,
# whether they converted, channel mix and the first project segment), found by clustering. Each row describes a
# persona by its average member; in the picture, blue cells lie above the average of all
# users and red cells below it.

# %%
personas = journey_personas(
    events,
    k=personas_k or None,
    seed=seed,
    month=month,
    users=ws.users,
    conversion=conversion,
    segments=[segment] if segment else [],
    labels=project.labels,
)
personas

# %%
ax = personas.plot()
plt.show()

# %% [markdown]
# ## Journeys of two groups compared
#
# Which step-to-step moves happen more or less often in the largest group of the first
# project segment than in the second largest. Each
# difference is tested and the tests are corrected for their number (Benjamini–Hochberg
# false discovery rate), so only differences marked significant should be acted on.

# %%
segment_diff = None
if len(groups) == 2:
    display(
        Markdown(
            f"{md(project.label(segment))}: **{md(project.label(groups[0]))}** vs **{md(project.label(groups[1]))}**."
        )
    )
    segment_diff = compare_journeys(
        events,
        stage_map,
        by=segment,
        a=groups[0],
        b=groups[1],
        month=month,
        users=ws.users,
        alpha=fdr_alpha,
    )
    display(segment_diff)
    ax = segment_diff.plot()
    plt.show()
else:
    display(Markdown("No project segment with two groups in the events: no comparison."))

# %% [markdown]
# ## Pain points ranked by value at stake
#
# Value at stake = people reaching the step × the gap to the best comparable segment ×
# the value of a conversion, with a 95 % interval. Steps: every pair of consecutive
# stages, the funnel's consecutive steps and the project's extra steps; segments: the
# project's and the touchpoint that brought people to the step.

# %%
pains = pain_points(events, project=project, month=month, users=ws.users, min_users=min_users)
pains

# %%
ax = pains.plot()
plt.show()

# %%
top_pain = pains.to_frame().head(3)
metrics = {
    "month": month,
    "visitors": visitors,
    "conversions": conversions,
    "revenue": revenue,
    "journeys": int(len(month_journeys)),
    "journey_conversion_rate": float(month_journeys["converted"].mean())
    if len(month_journeys)
    else None,
    "top_path": " > ".join(paths.to_frame()["path"].iloc[0]) if len(paths.to_frame()) else None,
    "personas": int(len(personas.to_frame())),
    "segment_compared": [segment, *groups] if segment_diff is not None else None,
    "significant_segment_differences": int(len(segment_diff.significant()))
    if segment_diff is not None
    else None,
    "top_pain_points": [
        {"finding": text, "value_at_stake": float(v)}
        for text, v in zip(pains.findings(3), top_pain["value_at_stake"], strict=False)
    ],
}
reports.finish(metrics, row_counts=ws.row_counts(), seed=ws.seed)
