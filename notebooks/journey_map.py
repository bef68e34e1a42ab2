# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Customer journey map
#
# How people move from first hearing of the business to booking a job and coming back:
# what each stage of the journey achieves, where the booking funnel loses people and what
# they do instead, the paths journeys take, the kinds of customers behind them, how phone
# and computer journeys differ, and which problems cost the most.

# %% tags=["parameters"]
month: str = "2026-10"  # YYYY-MM: the calendar month analysed
data: str = ""  # event data: a folder of tables or one events file; empty means the bundled sample
seed: int = 2026  # seed of the bundled sample and of the persona clustering
n_users: int = 20000  # users in the bundled sample (ignored when data is given)
lookback_days: int = 30  # touches older than this many days before a journey ends are left out
top_n_paths: int = 10  # how many of the most common paths to list
personas_k: int = 0  # number of personas; 0 picks it from the data (silhouette)
fdr_alpha: float = 0.05  # false discovery rate for the mobile vs desktop differences
min_users: int = 30  # segments with fewer users are not reported (privacy and noise)

# %%
# Validate and derive: nothing below reads a raw parameter.

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

import journeylab as jl
from journeylab.core.results import fmt_money, fmt_pct
from journeylab.core.viz import set_theme
from journeylab.journeys.build import build_journeys
from journeylab.journeys.flows import flow, top_paths, transitions
from journeylab.journeys.funnels import funnel, where_instead
from journeylab.maps.journey_diff import compare_journeys
from journeylab.maps.journey_maps import journey_map
from journeylab.maps.pains import pain_points, response_speed
from journeylab.maps.segments import journey_personas
from journeylab.reports import runner as reports
from journeylab.reports.workspace import open_workspace

month = reports.resolve_month(month)
if n_users < 100:
    raise jl.ParameterError(f"n_users == {n_users}, must be >= 100.")
if lookback_days < 1:
    raise jl.ParameterError(f"lookback_days == {lookback_days}, must be >= 1.")
if top_n_paths < 1:
    raise jl.ParameterError(f"top_n_paths == {top_n_paths}, must be >= 1.")
if personas_k != 0 and not 2 <= personas_k <= 12:
    raise jl.ParameterError(f"personas_k == {personas_k}, must be 0 (chosen from the data) or between 2 and 12.")
if not 0 < fdr_alpha < 1:
    raise jl.ParameterError(f"fdr_alpha == {fdr_alpha}, must be > 0 and < 1.")
if min_users < 1:
    raise jl.ParameterError(f"min_users == {min_users}, must be >= 1.")
period = pd.Period(month, freq="M")
set_theme()
plt.rcParams["figure.figsize"] = (9, 4.8)

# %%
ws = open_workspace(data or None, seed=seed, n_users=n_users)
events = ws.events.frame
in_month = ws.month_events(month)

# Journeys that end in the month (with their touches up to `lookback_days` earlier).
journeys = build_journeys(events, lookback=f"{lookback_days}D", month=month, stage_map=ws.stage_map)
month_journeys = journeys.journeys

# %% [markdown]
# ## The month at a glance

# %%
visitors = int(in_month.loc[in_month["event"] == "site_visit", "user_id"].nunique())
bookings = int((in_month["event"] == "booking_completed").sum())
revenue = float(in_month.loc[in_month["event"].isin(["booking_completed", "repeat_booking"]), "value"].sum())
revenue_text = fmt_money(revenue).replace("$", r"\$")  # a literal dollar sign, not Markdown maths
display(
    Markdown(
        f"In **{period.strftime('%B %Y')}** {in_month['user_id'].nunique():,} people touched the business, "
        f"{visitors:,} visited the website and {bookings:,} bookings were completed "
        f"({revenue_text} of bookings and repeat bookings). "
        f"{len(month_journeys):,} journeys ended in the month, "
        f"{fmt_pct(month_journeys['converted'].mean() if len(month_journeys) else float('nan'))} of them in a booking; "
        f"{int(month_journeys['censored'].sum()):,} were still open at the end of the month (no booking yet)."
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
jmap = journey_map(events, ws.stage_map, month=month, users=ws.users)
jmap

# %%
ax = jmap.plot()
plt.show()

# %% [markdown]
# ## Booking funnel
#
# People who visited the website, started the booking form and completed it within 7
# days, by device, with 95 % intervals.

# %%
booking_steps = ["site_visit", "booking_started", "booking_completed"]
booking = funnel(in_month, booking_steps, window="7D", segment="device", stage_map=ws.stage_map)
booking

# %%
ax = booking.plot()
plt.show()

# %% [markdown]
# ### Where did they go instead?
#
# What people who started the booking form but did not complete it did next.

# %%
instead = where_instead(in_month, booking_steps, after_step=2, window="7D", stage_map=ws.stage_map)
instead

# %%
ax = instead.plot()
plt.show()

# %% [markdown]
# ## Paths and flows
#
# The marketing channels a journey passed through (repeats merged), for the journeys that
# ended this month: the most common paths and how often each ended in a booking. Journeys
# still open at the end of the month count as not booked (yet).

# %%
paths = top_paths(journeys, n=top_n_paths, include_censored=True)
paths

# %%
ax = paths.plot()
plt.show()

# %% [markdown]
# ### Transition matrix
#
# For each channel, where journeys went next: another channel, a booking
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
# whether they booked, channel mix and device), found by clustering. Each row describes a
# persona by its average member; in the picture, blue cells lie above the average of all
# users and red cells below it.

# %%
personas = journey_personas(
    events, k=personas_k or None, seed=seed, month=month, users=ws.users,
    conversion="booking_completed", segments=["device"],
)
personas

# %%
ax = personas.plot()
plt.show()

# %% [markdown]
# ## Mobile vs desktop journeys
#
# Which step-to-step moves happen more or less often on a phone than on a computer. Each
# difference is tested and the tests are corrected for their number (Benjamini–Hochberg
# false discovery rate), so only differences marked significant should be acted on.

# %%
device_diff = compare_journeys(
    events, ws.stage_map, by="device", a="mobile", b="desktop", month=month, users=ws.users, alpha=fdr_alpha
)
device_diff

# %%
ax = device_diff.plot()
plt.show()

# %% [markdown]
# ## Pain points ranked by value at stake
#
# Value at stake = people reaching the step × the gap to the best comparable segment ×
# the value of a booking, with a 95 % interval.

# %%
# The sample's vocabulary, named here (the library has no default): the key steps of a
# home-services journey and how a finding words them, and call-back speed of phone leads.
key_steps = [
    ("booking_started", "booking_completed", "at the booking form"),
    ("phone_call", "booking_completed", "between phone call and booking"),
    ("quote_request", "booking_completed", "between quote request and booking"),
    ("site_visit", "booking_started", "between site visit and booking form"),
]
callback_speed = response_speed(
    in_month, request_event="phone_call", response_event="callback", minutes_column="response_minutes",
    name="callback_speed",
)
pains = pain_points(
    events, ws.stage_map, conversion="booking_completed", month=month, users=ws.users, min_users=min_users,
    steps=[*zip(ws.stage_map.names, ws.stage_map.names[1:], strict=False), *key_steps],
    segments=["device", "touchpoint", callback_speed],
)
pains

# %%
ax = pains.plot()
plt.show()

# %%
funnel_frame = booking.to_frame()
top_pain = pains.to_frame().head(3)
metrics = {
    "month": month,
    "visitors": visitors,
    "bookings": bookings,
    "revenue": revenue,
    "journeys": int(len(month_journeys)),
    "journey_conversion_rate": float(month_journeys["converted"].mean()) if len(month_journeys) else None,
    "top_path": " > ".join(paths.to_frame()["path"].iloc[0]) if len(paths.to_frame()) else None,
    "personas": int(len(personas.to_frame())),
    "significant_device_differences": int(len(device_diff.significant())),
    "top_pain_points": [
        {"finding": text, "value_at_stake": float(v)}
        for text, v in zip(pains.findings(3), top_pain["value_at_stake"], strict=False)
    ],
}
reports.finish(metrics, row_counts=ws.row_counts(), seed=ws.seed)
