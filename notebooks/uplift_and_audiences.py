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
# # Uplift and audiences: whom does the campaign actually move?
#
# A propensity model finds people who will convert anyway; a campaign only pays for the
# people it *changes*. From a randomised test with a holdout that got nothing, this report
# estimates each person's incremental effect with two uplift models, checks the ranking on
# people the models never saw (Qini and uplift curves, uplift by decile), says whom to
# send to, and builds the audience file for the next send (pseudonymised ids, opt-outs
# removed, small groups suppressed) with a manifest of how it was made. The response,
# features, opt-out column and suppression threshold come from the project file.

# %% tags=["parameters"]
month: str = "2026-10"  # YYYY-MM: the month the report is filed under
config: str = ""  # the project file (journeylab.yaml); empty means the bundled sample's
data: str = ""  # event data overriding the project file's events path, or one per-person experiment file (CSV/Parquet)
seed: int = 0  # seed of a generated sample, the train/test split and the bootstrap (0: as in the project file)
n_users: int = 0  # users of a generated sample (0: as in the project file)
variant: str = "variant"  # arm column of a per-person experiment file
control: str = ""  # label of the holdout arm that got nothing; empty means 'control' if present, else the first arm
treatment: str = ""  # comma-separated labels of the treated arms; empty means every other arm
outcome: str = ""  # the response: an event (empty: the project's conversion) or a 0/1 column of a per-person file
features: str = ""  # comma-separated features known before the campaign; empty means the project's segments found
test_size: float = 0.3  # share of each arm held out to evaluate the models
top_share: float = 0.3  # share of people the recommendation targets
n_boot: int = 500  # bootstrap resamples of the Qini coefficient's interval
min_users: int = 0  # smaller segments and audiences are not shown or written (0: project's)
top_deciles: int = 3  # the audience keeps people in uplift deciles 1 to top_deciles
write_audience: bool = False  # keep the audience file and manifest in the report folder
pseudonym_key: str = ""  # the HMAC key; empty: the JOURNEYLAB_PSEUDONYM_KEY variable

# %%
# Validate and derive: nothing below reads a raw parameter.
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

import journeylab as jl
from journeylab.actions import audiences
from journeylab.core.project import load_project
from journeylab.core.results import fmt_num, fmt_pct, fmt_pp, suppression_note
from journeylab.core.safe_text import md
from journeylab.core.viz import set_theme
from journeylab.customers.uplift import fit_uplift
from journeylab.customers.uplift_models import MODELS
from journeylab.io.privacy import KEY_ENV, KEY_FILE_ENV
from journeylab.reports import audience_inputs
from journeylab.reports import runner as reports
from journeylab.reports.workspace import open_report_workspace

month = reports.resolve_month(month)
if seed < 0:
    raise jl.ParameterError(f"seed == {seed}, must be >= 0.")
if n_users != 0 and n_users < 100:
    raise jl.ParameterError(f"n_users == {n_users}, must be 0 (as in the project file) or >= 100.")
if not 0 < test_size < 1:
    raise jl.ParameterError(f"test_size == {test_size}, must be > 0 and < 1.")
if not 0 < top_share <= 1:
    raise jl.ParameterError(f"top_share == {top_share}, must be > 0 and <= 1.")
if n_boot < 10:
    raise jl.ParameterError(f"n_boot == {n_boot}, must be >= 10.")
if min_users < 0:
    raise jl.ParameterError(f"min_users == {min_users}, must be >= 0.")
if not 1 <= top_deciles <= 10:
    raise jl.ParameterError(f"top_deciles == {top_deciles}, must be between 1 and 10.")
treated_labels = [t.strip() for t in treatment.split(",") if t.strip()] or None
if pseudonym_key:
    # handed to the pseudonymiser through the environment, never printed
    os.environ[KEY_ENV] = pseudonym_key
has_key = bool(os.environ.get(KEY_ENV) or os.environ.get(KEY_FILE_ENV))
set_theme()
plt.rcParams["figure.figsize"] = (9, 4.8)


def say(text: str) -> None:
    display(Markdown(text))


# %%


def per_person_file(path: str) -> bool:
    """Whether ``path`` is one file of one row per person with the arm column (not an event log)."""
    if not path or not Path(path).is_file():
        return False
    header = (
        pd.read_parquet(path).columns
        if path.endswith(".parquet")
        else pd.read_csv(path, nrows=0).columns
    )
    return variant in header


if per_person_file(data):
    # one row per person: the experiment itself, its outcome a 0/1 column
    if not outcome:
        raise jl.ParameterError("Name the outcome: the 0/1 response column of the per-person file.")
    from journeylab.datasets import sample_project

    project = load_project(config) if config else sample_project()
    seed = seed or 2026
    inputs = audience_inputs.open_inputs(data, outcome=outcome, variant=variant, seed=seed)
else:
    ws = open_report_workspace(config, data, n_users=n_users, seed=seed)
    project = ws.project
    seed = seed or ws.seed or 2026
    inputs = audience_inputs.inputs_from_workspace(ws, outcome or project.conversion[0])
min_users = min_users or project.min_users
if inputs.experiment is None:
    raise jl.DataError(
        "The data hold no experiment: uplift needs a randomised test with a holdout.",
        source=inputs.source,
        hint="give a per-person file with the arm column (variant=...) and a 0/1 outcome column, or a data folder "
        "with an assignments table.",
    )
experiment = inputs.experiment
arms = experiment["variant"].astype(str).value_counts().sort_index()
if not control:
    control = "control" if "control" in arms.index else str(arms.index[0])
if features:
    feature_list = [f.strip() for f in features.split(",") if f.strip()]
else:
    # the project's segments that are columns of the people, and where they came from
    feature_list = [s for s in project.segments if s in experiment.columns]
    feature_list += [
        c for c in ("acquisition_channel",) if c in experiment.columns and c not in feature_list
    ]
if not feature_list:
    raise jl.ParameterError(
        "No features: name at least one column known before the campaign (features=...); "
        f"the people's columns are {', '.join(c for c in experiment.columns if c != 'user_id')}."
    )
say(
    f"**{len(experiment):,} people** in the test ({md(inputs.source)}): "
    + ", ".join(f"{md(project.label(label))} {n:,}" for label, n in arms.items())
    + f"; holdout: {md(project.label(control))}. Response: **{md(project.label(inputs.outcome))}**; features: "
    + ", ".join(md(project.label(f)) for f in feature_list)
    + "."
)

# %% [markdown]
# ## Uplift models
#
# Two ways to estimate each person's incremental effect, both fitted on the same
# randomly chosen 70 % of each arm and judged on the rest:
#
# - **two-model (T-learner)**: one logistic regression for the treated, one for the
#   holdout; a person's uplift is the difference of the two predicted probabilities;
# - **class transformation**: one logistic regression of "treated and responded, or held
#   out and did not" (weighted so both arms count equally), whose probability maps
#   straight onto the uplift.
#
# The **Qini coefficient** measures how much better than random targeting the ranking is
# (0 = no better); its interval comes from resampling the held-out people.

# %%
result = fit_uplift(
    experiment,
    outcome=inputs.outcome,
    features=feature_list,
    control=control,
    treatment=treated_labels,
    test_size=test_size,
    top_share=top_share,
    n_boot=n_boot,
    seed=seed,
)
result

# %% [markdown]
# ## Qini and uplift curves
#
# People are ranked by predicted uplift, highest first. The Qini curve counts the extra
# responses gained by targeting the first share of them; the dashed line is what random
# targeting of the same share gains. The further the curve bows above the line, the
# better the ranking. The uplift curve is the same idea with the two arms' response
# rates compared directly.

# %%
fig, axes = plt.subplots(1, 2, figsize=(15, 5))
result.plot(ax=axes[0])
result.plot_uplift_curve(ax=axes[1])
plt.show()

# %% [markdown]
# ## Uplift by decile
#
# Held-out people in ten equal groups by predicted uplift (1 = highest). Bars are the
# observed difference in response rate between the treated and the holdout in
# each group, with 95 % intervals; dots are what the model predicted. A good model's
# bars fall from left to right.

# %%
fig, axes = plt.subplots(1, len(result.models), figsize=(7.5 * len(result.models), 4.6))
for ax, name in zip([axes] if len(result.models) == 1 else axes, result.models, strict=True):
    result.plot_deciles(ax=ax, model=name)
plt.show()

# %% [markdown]
# ## Who is moved: uplift by segment
#
# Observed uplift among held-out people per level of each categorical feature, beside
# each model's average prediction for that level. Levels with fewer than the minimum
# number of people in either arm are not shown.

# %%
categorical = [f for f in feature_list if not pd.api.types.is_numeric_dtype(experiment[f])][:3]
suppressed_segments = 0
for column in categorical:
    seg = result.segment_uplift(column)
    small = (seg["n_treated"] < min_users) | (seg["n_control"] < min_users)
    suppressed_segments += int(small.sum())
    seg = seg[~small]
    if seg.empty:
        continue
    table = pd.DataFrame(
        {
            project.label(column): seg[column].map(project.label),
            "treated / holdout": [
                f"{a:,} / {b:,}" for a, b in zip(seg["n_treated"], seg["n_control"], strict=True)
            ],
            "observed uplift": [
                f"{fmt_pp(u)} [{fmt_pp(lo)}, {fmt_pp(hi)}]"
                for u, lo, hi in zip(seg["uplift"], seg["ci_low"], seg["ci_high"], strict=True)
            ],
            **{f"{MODELS[m]}": seg[f"{m}_uplift"].map(fmt_pp) for m in result.models},
        }
    )
    display(table.style.hide(axis="index"))
if suppressed_segments:
    say(suppression_note(suppressed_segments, min_users))
if not categorical:
    say("No categorical feature to break the uplift down by.")

# %% [markdown]
# ## Recommendation

# %%
qini = result.qini_frame().set_index("model")
say(
    "\n\n".join(
        f"**{MODELS[m]}**: Qini coefficient {fmt_num(r['qini'])} [{fmt_num(r['qini_ci_low'])}, "
        f"{fmt_num(r['qini_ci_high'])}]; top {fmt_pct(top_share, 0)}: {1000 * r['top_uplift']:+.1f} extra responses "
        f"per 1,000 sent, everyone: {1000 * r['all_uplift']:+.1f}."
        for m, r in qini.iterrows()
    )
)
say("**" + result.recommendation() + "**")

# %% [markdown]
# ## Audience for the next send
#
# The people to contact next time: those in the top uplift deciles by the better model,
# with every action column the data allow (lifecycle state, value tier, propensities,
# next best touch). Ids are keyed pseudonyms, people who opted out never appear, and
# groups smaller than the minimum are suppressed. The manifest records how each column
# was made; no row of the file is shown here.

# %%
audience = None
if has_key:
    run_dir = os.environ.get(reports.RUN_DIR_ENV)
    if write_audience:
        folder = Path(run_dir) / "audience" if run_dir else Path("audiences")
    else:
        folder = Path(tempfile.mkdtemp(prefix="audience-"))
    opt_out_column = project.opt_out if project.opt_out in inputs.people.columns else None
    opt_out_column = opt_out_column or next(
        (
            c
            for c in ("opt_out", "opted_out", "unsubscribed", "marketing_opt_out")
            if c in inputs.people.columns
        ),
        None,
    )
    audience = audiences.build(
        inputs.people,
        out=folder,
        name="uplift_top_deciles",
        date=pd.Timestamp.now(tz="UTC").date(),
        events=inputs.events,
        stage_map=inputs.stage_map,
        conversion=list(project.conversion),
        transactions=inputs.transactions,
        uplift=result,
        top_deciles=top_deciles,
        opt_out=opt_out_column,
        min_users=min_users,
        seed=seed,
    )
    say("\n\n".join(md(line) for line in audience.summary().splitlines()))
    display(audience.to_frame().style.hide(axis="index"))
    ax = audience.plot()
    plt.show()
    if not write_audience:
        say(
            "The files were written to a temporary folder only (set `write_audience` to keep them with the report)."
        )
else:
    say(
        f"No pseudonymisation key is set, so no audience file is built: set ${KEY_ENV} (or the "
        "`pseudonym_key` parameter) to a secret of at least 16 characters."
    )

# %%
metrics = {
    "month": month,
    "source": inputs.source,
    "control": control,
    "features": feature_list,
    "outcome": inputs.outcome,
    "people": int(len(experiment)),
    "best_model": result.best,
    "qini": {m: float(r["qini"]) for m, r in qini.iterrows()},
    "qini_ci": {m: [float(r["qini_ci_low"]), float(r["qini_ci_high"])] for m, r in qini.iterrows()},
    "top_share": float(top_share),
    "top_uplift_per_1000": {m: 1000 * float(r["top_uplift"]) for m, r in qini.iterrows()},
    "all_uplift_per_1000": 1000 * float(qini["all_uplift"].iloc[0]),
    "audience_counts": audience.counts if audience is not None else None,
    "audience_columns": list(audience.manifest["columns"]) if audience is not None else None,
}
reports.finish(
    metrics, row_counts={"people": len(inputs.people), "experiment": len(experiment)}, seed=seed
)
