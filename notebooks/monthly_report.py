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
# # Monthly customer-journey report
#
# Where customers come from, where they stall and drop off, what it costs, and what
# changed since last month. Figures are computed from the validated event log; every row
# the loaders dropped or repaired is counted in the data-quality section at the end.

# %% tags=["parameters"]
month: str = "2026-10"  # YYYY-MM: the calendar month reported on
data: str = ""  # event data: a folder of tables or one events file; empty means the bundled sample
seed: int = 2026  # seed of the bundled sample (ignored when data is given)
n_users: int = 20000  # users in the bundled sample (ignored when data is given)
min_users: int = 30  # segments with fewer users are not reported (privacy and noise)
pseudonymize: bool = False  # replace user ids by keyed HMAC-SHA256 pseudonyms while loading
pseudonym_key: str = ""  # the HMAC key; empty means the JOURNEYLAB_PSEUDONYM_KEY environment variable

# %%
# Validate and derive: nothing below reads a raw parameter.
import os

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

import journeylab as jl
from journeylab.core.results import fmt_money, fmt_num, fmt_pct
from journeylab.core.viz import set_theme
from journeylab.io.privacy import KEY_ENV
from journeylab.journeys.funnels import funnel
from journeylab.maps.journey_maps import journey_map
from journeylab.maps.pains import pain_points, response_speed
from journeylab.reports import runner as reports
from journeylab.reports.workspace import open_workspace

month = reports.resolve_month(month)
if n_users < 100:
    raise jl.ParameterError(f"n_users == {n_users}, must be >= 100.")
if min_users < 1:
    raise jl.ParameterError(f"min_users == {min_users}, must be >= 1.")
if pseudonym_key:
    # handed to the loaders through the environment, never printed
    os.environ[KEY_ENV] = pseudonym_key
period = pd.Period(month, freq="M")
set_theme()
plt.rcParams["figure.figsize"] = (9, 4.8)

# %%
ws = open_workspace(data or None, seed=seed, n_users=n_users, pseudonymize=pseudonymize)
events = ws.events.frame
in_month = ws.month_events(month)

jmap = journey_map(events, ws.stage_map, month=month, users=ws.users)
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
booking = funnel(
    in_month,
    ["site_visit", "booking_started", "booking_completed"],
    window="7D",
    segment="device",
    min_users=min_users,
    stage_map=ws.stage_map,
)

users_in_month = int(in_month["user_id"].nunique())
conversions = int((in_month["event"] == "booking_completed").sum())
revenue = float(in_month.loc[in_month["event"].isin(["booking_completed", "repeat_booking"]), "value"].sum())
visitors = int(in_month.loc[in_month["event"] == "site_visit", "user_id"].nunique())
metrics = {
    "month": month,
    "users": users_in_month,
    "visitors": visitors,
    "bookings": conversions,
    "booking_rate": conversions / visitors if visitors else None,
    "revenue": revenue,
}
previous = reports.previous_metrics("monthly_report", month)

# %% [markdown]
# ## Executive summary

# %%
def _change(key: str, kind: str = "num") -> str:
    if not previous or previous.get(key) in (None, 0) or metrics.get(key) is None:
        return "no previous report"
    delta = metrics[key] - previous[key]
    if kind == "pct":
        return f"{delta * 100:+.1f} pp vs {previous['month']}"
    return f"{delta / previous[key]:+.1%} vs {previous['month']}"


top = pains.to_frame().head(3)
lines = [
    f"**{period.strftime('%B %Y')}** — {fmt_num(users_in_month)} people touched the business "
    f"({fmt_num(visitors)} site visitors).",
    "",
    "| KPI | this month | change |",
    "| --- | ---: | --- |",
    f"| Site visitors | {fmt_num(visitors)} | {_change('visitors')} |",
    f"| Bookings | {fmt_num(conversions)} | {_change('bookings')} |",
    f"| Booking rate (bookings per visitor) | {fmt_pct(metrics['booking_rate'])} | {_change('booking_rate', 'pct')} |",
    f"| Revenue | {fmt_money(revenue)} | {_change('revenue')} |",
    "",
    "**Top pain points by value at stake**",
    "",
]
lines += [f"{i + 1}. {text}" for i, text in enumerate(pains.findings(3))]
# "$" would start inline maths in Markdown: escape the currency sign
display(Markdown("\n".join(lines).replace("$", r"\$")))

# %% [markdown]
# ## Journey map
#
# Stage-by-stage KPIs for the month, the share of people who move on to the next stage
# (95 % Wilson intervals) and the change against the previous month; then the same
# stage-to-stage conversion by device.

# %%
jmap

# %%
by_device = journey_map(
    events, ws.stage_map, month=month, users=ws.users, segment="device", compare=None, min_users=min_users
)
ax = by_device.plot(kind="conversion")
plt.show()

# %% [markdown]
# ## Booking funnel by device

# %%
booking

# %%
ax = booking.plot()
plt.show()

# %% [markdown]
# ## Pain points ranked by value at stake
#
# Value at stake = people reaching the step × the gap to the best comparable segment ×
# the value of a booking, with a 95 % interval.

# %%
pains

# %%
ax = pains.plot()
plt.show()

# %% [markdown]
# ## Data quality
#
# Every row the loaders dropped, de-duplicated or repaired, with the reason.

# %%
display(ws)
for table in ws.tables().values():
    display(table.quality)

# %%
metrics["top_pain_points"] = [
    {"finding": text, "value_at_stake": float(v)}
    for text, v in zip(pains.findings(3), top["value_at_stake"], strict=False)
]
metrics["data_quality"] = ws.to_frame().set_index("table")[["rows_read", "rows_kept", "rows_dropped"]].to_dict("index")
reports.finish(metrics, row_counts=ws.row_counts(), seed=ws.seed)
