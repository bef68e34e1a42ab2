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
# # Explore the customer journey
#
# Four interactive explorers over one company's event data. Change a control and the
# table and figure below it update; every view is also available as plain numbers
# (`explorer.data()`), so anything you find here can be copied into an analysis.
#
# - **Funnel explorer** — how many users get through the project's funnel to a conversion,
#   by segment and month.
# - **Path explorer** — the most common journeys and what follows each touch.
# - **Attribution comparer** — which channels earn the conversions under different models.
# - **Experiment calculator** — how many users a test needs, and what a finished test says.
#
# Without a widget runtime (an exported HTML report, a notebook viewer) each explorer shows
# a static picture of its starting state.

# %% tags=["parameters"]
month: str = "2026-10"  # YYYY-MM: the month the funnel explorer opens on
config: str = ""  # the project file (journeylab.yaml); empty means the bundled sample's
data: str = ""  # event data overriding the project file's events path; empty keeps it
seed: int = 0  # seed of a generated sample (0: as in the project file)
n_users: int = 5000  # users of a generated sample; small keeps the explorers quick (0: project's)
n_boot: int = 200  # bootstrap replicates when attribution intervals are switched on

# %%
# Validate and derive: nothing below reads a raw parameter.
import matplotlib.pyplot as plt
from IPython.display import display

import journeylab as jl
from journeylab.core.viz import set_theme
from journeylab.experiments import user_metrics
from journeylab.journeys.build import path_table
from journeylab.reports import runner as reports
from journeylab.reports.widgets import (
    AttributionComparer,
    ExperimentCalculator,
    FunnelExplorer,
    PathExplorer,
)
from journeylab.reports.workspace import open_report_workspace

month = reports.resolve_month(month)
if seed < 0:
    raise jl.ParameterError(f"seed == {seed}, must be >= 0.")
if n_users != 0 and n_users < 100:
    raise jl.ParameterError(f"n_users == {n_users}, must be 0 (as in the project file) or >= 100.")
if n_boot < 0:
    raise jl.ParameterError(f"n_boot == {n_boot}, must be >= 0.")
set_theme()
plt.rcParams["figure.figsize"] = (9, 4.8)

# %%
ws = open_report_workspace(config, data, n_users=n_users, seed=seed)
project = ws.project
seed = seed or ws.seed or 2026
conversion = list(project.conversion)
display(ws)

# %% [markdown]
# ## Funnel explorer
#
# Users through the project's funnel. Pick a **segment** to compare the project's
# segments side by side, filter to one value of each, choose the **month** users entered in,
# the **window** they had to finish, and whether the steps must happen in **order**. Bars
# show the share of entrants reaching each step, with 95% Wilson intervals.

# %%
funnel_explorer = FunnelExplorer(
    ws.events, list(project.funnel) or conversion, users=ws.users, project=project
)
months = funnel_explorer.controls["period"].options
if month not in months:
    raise jl.DataError(
        f"No events in {month}.",
        source=ws.source,
        column="timestamp",
        hint=f"the data covers {months[1]} to {months[-1]}; choose a month inside it.",
    )
display(funnel_explorer.set(period=month))

# %% [markdown]
# ## Path explorer
#
# The most common journeys up to a conversion (or to the last touch, when none came) and how
# often each converts. Switch the **level** between marketing channels, individual events
# and journey stages; **collapse repeats** merges runs of the same step. The heatmap shows,
# for each touch, where journeys went next.

# %%
path_explorer = PathExplorer(
    ws.events, stage_map=project.stage_map, conversion=conversion, lookback=project.lookback
)
display(path_explorer)

# %% [markdown]
# ## Attribution comparer
#
# How the conversions are credited to channels by different models: rule-based (first, last,
# linear, position-based) and data-driven (Markov removal effects, Shapley values). Choose
# the **models**, the Markov **order** (how many past touches the chain remembers), credit
# **conversions or value**, and switch on **bootstrap** intervals to see which differences
# are real. With spend data the summary adds cost per conversion and return on spend.

# %%
paths = path_table(
    ws.events.frame, stage_map=project.stage_map, conversion=conversion, lookback=project.lookback
)
attribution = AttributionComparer(paths, spend=ws.spend, n_boot=n_boot, seed=seed)
display(attribution)

# %% [markdown]
# ## Experiment calculator
#
# **Design**: how many users per variant a test needs to detect a change (or the power a
# given size has, or the smallest change it can detect), with R's `power.prop.test`
# formulas. It opens on this month's conversion rate and a 10% relative lift.
#
# **Readout**: type in the conversions and users of each arm for the lift, its interval,
# the p-value, the probability that the treatment is better and a check that the split of
# users matches the design. It opens on the experiment in the data, when there is one.

# %%
funnel_numbers = funnel_explorer.data()
conversion_rate = float(funnel_numbers["conversion_from_first"].iloc[-1])
counts = {}
if ws.assignments is not None:
    assigned = ws.assignments.frame
    if "experiment" in assigned.columns and assigned["experiment"].nunique() == 1:
        assigned = assigned.drop(columns="experiment")
    per_user = user_metrics(assigned, ws.events.frame, {"converted": conversion}, window="14D")
    arms = per_user.groupby("variant")["converted"].agg(["sum", "count"])
    arms.index = arms.index.astype(str)
    control = "control" if "control" in arms.index else (arms.index[0] if len(arms) else None)
    treatment = [v for v in arms.index if v != control]
    if "experiment" not in assigned.columns and control is not None and len(treatment) == 1:
        counts = {
            "conversions_control": int(arms.loc[control, "sum"]),
            "users_control": int(arms.loc[control, "count"]),
            "conversions_treatment": int(arms.loc[treatment[0], "sum"]),
            "users_treatment": int(arms.loc[treatment[0], "count"]),
        }
calculator = ExperimentCalculator(
    baseline=round(conversion_rate, 4), mde=0.10, relative=True, **counts
)
display(calculator)

# %%
top_paths = path_explorer.data()["top_paths"]
design = calculator.design()  # an error instead of a design when the rate is 0 or 1
credit = attribution.data()
reports.finish(
    {
        "month": month,
        "funnel_entrants": int(funnel_numbers["entrants"].iloc[0]),
        "conversion_rate": conversion_rate,
        "top_path": " > ".join(top_paths["path"].iloc[0]),
        # None when Markov is not identifiable on the table (too few non-converting journeys)
        "top_channel_markov": str(credit["markov"].idxmax())
        if credit["markov"].notna().any()
        else None,
        "users_per_variant": None
        if isinstance(design, Exception)
        else design.n_total // design.variants,
    },
    row_counts=ws.row_counts(),
    seed=ws.seed,
)
