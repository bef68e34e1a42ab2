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
# # Monthly customer-journey report
#
# The whole journey for one month — awareness, consideration, purchase, retention,
# advocacy — against the month before: where customers stall and what it costs, which
# channels earn the conversions, how experiments did, who comes back and what they are
# worth, and what customers say. Every figure comes from the validated data; what the
# loaders dropped or repaired is counted in the last section.

# %% tags=["parameters"]
month: str = "2026-10"  # YYYY-MM: the calendar month reported on
config: str = ""  # the project file (journeylab.yaml); empty means the bundled sample's
data: str = ""  # event data overriding the project file's events path; empty keeps it
seed: int = 0  # seed of a generated sample (0: as in the project file)
n_users: int = 0  # users of a generated sample (0: as in the project file)
min_users: int = 0  # segments with fewer users are not reported (0: the project file's, default 30)
n_boot: int = 100  # bootstrap replicates of the attribution intervals (0 switches them off)
trend_months: int = 6  # months of KPI trend shown, where the data has them
pseudonymize: bool = False  # replace user ids by keyed HMAC-SHA256 pseudonyms while loading
pseudonym_key: str = ""  # the HMAC key; empty: the JOURNEYLAB_PSEUDONYM_KEY variable

# %%
# Validate and derive: nothing below reads a raw parameter.
import os

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import HTML, display

import journeylab as jl
from journeylab.core.viz import set_theme
from journeylab.io.privacy import KEY_ENV
from journeylab.reports import customer_sections, journey_sections, monthly, sections
from journeylab.reports import runner as reports
from journeylab.reports.prose import Money, md, say
from journeylab.reports.workspace import open_report_workspace

month = reports.resolve_month(month)
for name, value, low in (
    ("seed", seed, 0),
    ("n_users", n_users, 0),
    ("min_users", min_users, 0),
    ("n_boot", n_boot, 0),
    ("trend_months", trend_months, 1),
):
    if value < low:
        raise jl.ParameterError(f"{name} == {value}, must be >= {low}.")
if pseudonym_key:
    # handed to the loaders through the environment, never printed
    os.environ[KEY_ENV] = pseudonym_key
period = pd.Period(month, freq="M")
set_theme()
plt.rcParams["figure.figsize"] = (9, 4.8)

ws = open_report_workspace(config, data, n_users=n_users, seed=seed, pseudonymize=pseudonymize)
project = ws.project
min_users = min_users or project.min_users
events = ws.events.frame
money = Money(project.currency_sign)
# fails closed: no events in the month (naming the months the data covers), no users,
# no conversions, no funnel entrants; the month's rows are taken again where a section
# needs them, so no copy of them is held through the report
checks = sections.month_checks(ws.month_events(month), project, month)
statuses: dict[str, str] = {}

# %% [markdown]
# ## Contents
#
# 1. [Executive summary](#Executive-summary)
# 2. [Journey map](#Journey-map)
# 3. [Stage KPIs](#Stage-KPIs)
# 4. [Findings](#Findings)
# 5. [Journey and funnel](#Journey-and-funnel)
# 6. [Channels](#Channels)
# 7. [Experiments](#Experiments)
# 8. [Retention and value](#Retention-and-value)
# 9. [Voice of the customer](#Voice-of-the-customer)
# 10. [Data quality](#Data-quality)

# %%
kpis = monthly.stage_kpis(events, project, month)
found = sections.month_findings(ws, month, min_users=min_users)
headline = sections.headline(events, project, month)

# %% [markdown]
# ## Executive summary

# %%
say(sections.executive_summary(project, month, headline, kpis, found, checks, money))

# %% [markdown]
# ## Journey map
#
# The stages customers go through, what they do there, the channels that bring them,
# each stage's KPIs and their change since last month, how many move on to the next
# stage beside how they feel about it, and the largest pain points with their value.

# %%
with sections.section(statuses, "journey_map", say):
    canvas = sections.journey_canvas_figure(ws, month, found)
    display(canvas)

# %% [markdown]
# ## Stage KPIs
#
# Each KPI of the project's stage map for the month beside the previous month. A change
# is tested as the difference of two totals over customers (a z-test that allows for
# heavy users; for counts of customers it is the Poisson test); ▲/▼ marks a change
# significant at 5 %.

# %%
with sections.section(statuses, "stage_kpis", say):
    display(HTML(sections.kpi_table_html(kpis, project, money)))
    say(sections.reach_note(events, project, month))

# %%
with sections.section(statuses, "trend", say):
    trend = monthly.kpi_trend(events, project, month, months=trend_months)
    sections.plot_trend(trend, project)
    plt.show()

# %% [markdown]
# ## Findings
#
# A search over every funnel step and stage transition, by every segment dimension of the
# project file, the hour and day of the step's entry, and against the previous month. Gaps
# are ranked by the value at stake per month (95 % intervals); q-values control the false
# discovery rate over the whole search. A finding seen at two steps for the same segment is
# one finding: its money is counted once.

# %%
with sections.section(statuses, "findings", say):
    say(sections.findings_text(found, money))
    found.plot()
    plt.show()

# %% [markdown]
# ### Findings over time
#
# Each finding followed through the earlier reports of this folder: since when it has been
# open and how its value at stake moved (growing or shrinking when this month's value lies
# outside last month's interval).

# %%
with sections.section(statuses, "findings_over_time", say):
    history = sections.findings_history(found, project, month)
    say(md(history.summary()))
    history.plot()
    plt.show()

# %% [markdown]
# ## Journey and funnel

# %%
with sections.section(statuses, "funnel", say):
    in_month = ws.month_events(month)
    funnel_result = journey_sections.funnel_section(in_month, project, min_users=min_users, say=say)
    del in_month
    plt.show()

# %% [markdown]
# ## Channels
#
# Which channels earn the conversions: rule-based, Markov and Shapley credit with
# bootstrap intervals, then spend, cost per conversion and return on spend. Credit
# describes the paths customers took; it is not proof that a channel caused a conversion.

# %%
with sections.section(statuses, "channels", say):
    channels = journey_sections.channels_section(
        ws, month, n_boot=n_boot, seed=seed or 2026, money=money, say=say
    )
    plt.show()

# %% [markdown]
# ## Experiments

# %%
with sections.section(statuses, "experiments", say):
    customer_sections.experiments_section(ws, month, say=say, found=found)
    plt.show()

# %% [markdown]
# ## Retention and value

# %%
with sections.section(statuses, "retention", say):
    customer_sections.retention_section(ws, month, money=money, say=say)
    plt.show()

# %% [markdown]
# ## Voice of the customer

# %%
with sections.section(statuses, "voice", say):
    customer_sections.voice_section(ws, month, say=say)
    plt.show()

# %% [markdown]
# ## Data quality
#
# Every row the loaders dropped, de-duplicated or repaired, with the reason.

# %%
display(HTML(sections.quality_table_html(ws)))

# %%
document = monthly.metrics_document(
    month=month,
    project=project,
    headline=headline,
    kpis=kpis,
    findings=found.records() if found is not None else [],
    sections=statuses,
)
reports.finish(document, row_counts=ws.row_counts(), seed=ws.seed)
